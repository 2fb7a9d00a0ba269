"""The load generator, run by `bench/driver.py` as a process of its own.

Keeps `--threads` HTTP/1.1 keep-alive connections busy with `POST --path` for `--seconds`, each
body a fresh registration (a unique callback URL under `--callback-prefix`), and prints one JSON
line: requests, errors, elapsed seconds and the latency percentiles (ms) of the successful ones.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import uuid


def percentile(sorted_values, share):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(share * (len(sorted_values) - 1))))
    return sorted_values[index]


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--callback-prefix", required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)

    latencies: list[float] = []
    statuses: dict[int | str, int] = {}
    lock = threading.Lock()
    run_id = uuid.uuid4().hex[:8]
    deadline = time.monotonic() + args.seconds

    def worker(number):
        own_latencies, own_statuses = [], {}
        connection = http.client.HTTPConnection(args.host, args.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if args.token:
            headers["Authorization"] = f"Bearer {args.token}"
        sequence = 0
        while time.monotonic() < deadline:
            sequence += 1
            body = json.dumps(
                {
                    "callback_url": f"{args.callback_prefix}{run_id}-{number}-{sequence}"
                    "/callbacks/approval",
                    "title": "Bench expense report",
                    "requester_email": "requester@example.com",
                    "amount": "123.45",
                    "currency": "EUR",
                }
            )
            started = time.perf_counter()
            try:
                connection.request("POST", args.path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                status = type(error).__name__
                connection.close()
                connection = http.client.HTTPConnection(args.host, args.port, timeout=30)
            elapsed_ms = (time.perf_counter() - started) * 1000
            own_statuses[status] = own_statuses.get(status, 0) + 1
            if isinstance(status, int) and 200 <= status < 300:
                own_latencies.append(elapsed_ms)
        connection.close()
        with lock:
            latencies.extend(own_latencies)
            for key, value in own_statuses.items():
                statuses[key] = statuses.get(key, 0) + value

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    ok = len(latencies)
    result = {
        "ok": ok,
        "errors": sum(statuses.values()) - ok,
        "statuses": {str(key): value for key, value in statuses.items()},
        "seconds": elapsed,
        "rps": ok / elapsed if elapsed else 0.0,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
