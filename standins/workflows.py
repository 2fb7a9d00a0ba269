"""A local stand-in for the Cloud Workflows callback endpoint, for `make run`, tests and bench.

It accepts POSTs on Workflows-shaped callback paths, remembers what arrived and answers like the
real endpoint would (200 with a small JSON body). Tests can script other answers per path.
Never deployed: on Google Cloud the callbacks go to workflowexecutions.googleapis.com.
`python -m standins.workflows --port 8765` serves it and prints what arrives (make run).
"""

import argparse
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from email.message import Message

from .http import QuietHandler, StandinServer, answer


@dataclass
class ReceivedCallback:
    path: str
    headers: Message  # case-insensitive, as HTTP headers are
    body: object


class CallbackReceiver(StandinServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, echo=None):
        super().__init__(_Handler, port, host)
        self.received: list[ReceivedCallback] = []
        # Tests script the answers per path, in turn: a status code, "reset" (close the
        # connection with a TCP reset), "hang" (answer nothing for `hang_seconds`, then close) or
        # "hold" (set `holding`, wait until `release` is set, then answer 200: a slow endpoint
        # the test decides when to let go of). Only callbacks answered 2xx count as received,
        # as with the real endpoint.
        self.answers: dict[str, list[int | str]] = {}
        self.attempts: list[tuple[str, int | str]] = []
        self.hang_seconds = 2.0
        self.holding = threading.Event()
        self.release = threading.Event()
        self.echo = echo  # called with each ReceivedCallback (make run prints it)

    def callback_url(self, execution: str, callback: str = "approval") -> str:
        return (
            f"{self.base_url}/v1/projects/demo-project/locations/us-central1"
            f"/workflows/expense-approval/executions/{execution}/callbacks/{callback}"
        )

    def next_answer(self, path: str) -> int | str:
        with self.lock:
            scripted = self.answers.get(path)
            given = scripted.pop(0) if scripted else 200
            self.attempts.append((path, given))
            return given


class _Handler(QuietHandler):
    server: CallbackReceiver

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        received = ReceivedCallback(self.path, self.headers, body)
        status = self.server.next_answer(self.path)
        if status == "reset":
            # SO_LINGER with a zero timeout makes close() send a RST instead of a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if status == "hang":
            time.sleep(self.server.hang_seconds)
            self.close_connection = True
            return
        if status == "hold":
            self.server.holding.set()
            self.server.release.wait(timeout=60)
            status = 200
        if status < 300:
            with self.server.lock:
                self.server.received.append(received)
            if self.server.echo:
                self.server.echo(received)
        body = (
            {"executionId": self.path.split("/")[-3]}
            if status < 300
            else {"error": {"code": status, "message": "scripted failure"}}
        )
        answer(self, status, body, {"Content-Type": "application/json"})


def main(argv=None) -> None:
    """Serve the stand-in until interrupted and print each callback that arrives (make run)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    port = parser.parse_args(argv).port

    def echo(received: ReceivedCallback) -> None:
        execution = received.path.split("/executions/")[-1].split("/")[0]
        print(
            f"\n[workflow {execution}] callback received:\n"
            + json.dumps(received.body, indent=2)
            + "\n",
            flush=True,
        )

    receiver = CallbackReceiver(port=port, echo=echo)
    print(f"Callback stand-in listening on {receiver.base_url}/v1/...", flush=True)
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.server_close()


if __name__ == "__main__":
    main()
