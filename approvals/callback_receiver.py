"""A local stand-in for the Cloud Workflows callback endpoint, for `make run` and the tests.

It accepts POSTs on Workflows-shaped callback paths, remembers what arrived and answers like the
real endpoint would (200 with a small JSON body). Tests can script other answers per path.
Never deployed: on Google Cloud the callbacks go to workflowexecutions.googleapis.com.
"""

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ReceivedCallback:
    path: str
    headers: Message  # case-insensitive, as HTTP headers are
    body: object


class CallbackReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, echo=None):
        super().__init__((host, port), _Handler)
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
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def callback_url(self, execution: str, callback: str = "approval") -> str:
        return (
            f"{self.base_url}/v1/projects/demo-project/locations/us-central1"
            f"/workflows/expense-approval/executions/{execution}/callbacks/{callback}"
        )

    def start(self) -> "CallbackReceiver":
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def next_answer(self, path: str) -> int | str:
        with self.lock:
            scripted = self.answers.get(path)
            answer = scripted.pop(0) if scripted else 200
            self.attempts.append((path, answer))
            return answer


class _Handler(BaseHTTPRequestHandler):
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
        answer = json.dumps(
            {"executionId": self.path.split("/")[-3]}
            if status < 300
            else {"error": {"code": status, "message": "scripted failure"}}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass
