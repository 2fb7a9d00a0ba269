"""The baselines of the notice and callback passes, each run by the driver as a process of its own.

`smtp`: the same number of pre-rendered messages over one `smtplib` connection, as fast as the
server takes them. `slack`: the same `chat.postMessage` call, pre-rendered, posted as many times
with one keep-alive `requests.Session`. `callbacks`: the same callback bodies POSTed with one
`requests.Session` from `--concurrency` threads. Each prints one JSON line: how many went, and
the seconds it took.
"""

import argparse
import json
import queue
import smtplib
import sys
import threading
import time

import requests


def smtp(args):
    message = open(args.message, "rb").read()  # noqa: SIM115 - read once, whole
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", args.port) as connection:
        for _ in range(args.count):
            connection.sendmail("approver@localhost", ["manager@example.com"], message)
    return {"sent": args.count, "seconds": time.perf_counter() - started}


def callbacks(args):
    with open(args.callbacks, encoding="utf-8") as lines:
        todo = [json.loads(line) for line in lines]
    session = requests.Session()
    pool = requests.adapters.HTTPAdapter(pool_maxsize=args.concurrency)
    session.mount("http://", pool)
    session.headers["Authorization"] = f"Bearer {args.token}"
    work: queue.SimpleQueue = queue.SimpleQueue()
    for item in todo:
        work.put(item)
    sent = [0] * args.concurrency

    def post(number):
        while True:
            try:
                url, body = work.get_nowait()
            except queue.Empty:
                return
            if session.post(url, json=body, timeout=(3.05, 15)).ok:
                sent[number] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=post, args=(n,)) for n in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"sent": sum(sent), "seconds": time.perf_counter() - started}


def slack(args):
    with open(args.message, encoding="utf-8") as file:
        message = json.load(file)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {args.token}"
    started = time.perf_counter()
    sent = sum(
        session.post(args.url, json=message, timeout=(3.05, 15)).json().get("ok", False)
        for _ in range(args.count)
    )
    return {"sent": sent, "seconds": time.perf_counter() - started}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    mail = sub.add_parser("smtp")
    mail.add_argument("--port", type=int, required=True)
    mail.add_argument("--count", type=int, required=True)
    mail.add_argument("--message", required=True)
    posts = sub.add_parser("callbacks")
    posts.add_argument("--callbacks", required=True, help="JSON lines of [url, body]")
    posts.add_argument("--concurrency", type=int, default=8)
    posts.add_argument("--token", default="bench")
    chat = sub.add_parser("slack")
    chat.add_argument("--url", required=True, help="the stand-in's chat.postMessage URL")
    chat.add_argument("--token", required=True)
    chat.add_argument("--count", type=int, required=True)
    chat.add_argument("--message", required=True, help="a JSON file: channel, text, blocks")
    args = parser.parse_args(argv)
    result = {"smtp": smtp, "callbacks": callbacks, "slack": slack}[args.mode](args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
