"""The one small threaded HTTP server every stand-in is built on, a free port to put it on, and
`Outgoing`, a request a stand-in platform sends to the app.

Nothing of google-auth here: the tests' conftest picks the metadata stand-in's port with
`free_port` before google.auth may be imported.
"""

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StandinServer(ThreadingHTTPServer):
    """Serves `handler` on a thread of its own, until `stop`; counts the hits per path."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a few dozen clients connecting at once (two
    # delivery jobs of eight threads each) would be reset, as no real endpoint resets them.
    request_queue_size = 128

    def __init__(self, handler, port: int = 0, host: str = "127.0.0.1"):
        super().__init__((host, port), handler)
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()

    def count(self, path: str) -> None:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1

    def start(self):
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that keeps the test output and `make run`'s terminal free of access logs."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def answer(handler: BaseHTTPRequestHandler, status: int, body, headers=None) -> None:
    """Send `body` (bytes as they are, anything else as JSON) with its length."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/text", **(headers or {})}
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@dataclass(frozen=True)
class Outgoing:
    """A request a platform (Slack, Google Chat) sends to the app, as it sends it: the body's
    bytes and the headers. For Django's test client: `client.post(path, request.body,
    content_type=request.content_type, headers=request.headers)`; for a running app:
    `request.send(url)`."""

    body: bytes
    headers: dict[str, str]

    @property
    def content_type(self) -> str:
        return self.headers["Content-Type"]

    def send(self, url: str, timeout: float = 10.0):
        return requests.post(url, data=self.body, headers=self.headers, timeout=timeout)
