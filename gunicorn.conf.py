"""gunicorn's settings for the container (the Dockerfile's CMD), read from the environment.

Cloud Run sets PORT and expects the server on 0.0.0.0. One worker process, like Google's Django
sample for Cloud Run, and no worker timeout (0), which leaves request timeouts to Cloud Run. On
SIGTERM (Cloud Run sends it before stopping an instance, and SIGKILL 10 s later) gunicorn stops
accepting connections, lets the requests in flight finish for up to GUNICORN_GRACEFUL_TIMEOUT
seconds and exits 0; the default of 8 s ends before the SIGKILL.

Slow clients. gthread gives a connection a thread of its own as soon as its first bytes arrive,
and that thread reads the headers and the body with blocking reads: a client that sends its
request a byte at a time, or part of it and then nothing, holds the thread. Two things keep a
handful of them from taking every thread (README, "Security"; docs/deploy.md, "Slow clients"):
many threads (64; a waiting thread costs little memory and no CPU), more than the requests Cloud
Run sends one instance at once (`--concurrency` in docs/deploy.md), and a limit on how long a
client may stall: a read or write that makes no progress for GUNICORN_CLIENT_TIMEOUT seconds
ends, and gunicorn closes that connection.
approvals/tests/test_container.py starts exactly this and checks it.
"""

import logging
import os
import socket
import struct

from gunicorn.workers.gthread import ThreadWorker


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


CLIENT_TIMEOUT = _env_int("GUNICORN_CLIENT_TIMEOUT", 5)


class _StalledConnectionLine(logging.Filter):
    """Turn gthread's traceback for a connection closed on its stall limit into one line."""

    def filter(self, record):
        if record.exc_info and isinstance(record.exc_info[1], BlockingIOError):
            record.msg = "Closed a connection that made no progress for %d s"
            record.args = (CLIENT_TIMEOUT,)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class StallLimitedThreadWorker(ThreadWorker):
    """gthread whose connections give up a read or a write that stalls for CLIENT_TIMEOUT s."""

    def init_process(self):
        self.log.error_log.addFilter(_StalledConnectionLine())
        super().init_process()

    def enqueue_req(self, conn):
        """Set the kernel's receive and send timeouts before a thread reads the connection.

        gthread makes the socket blocking in the thread, with no timeout of Python's; the
        kernel's SO_RCVTIMEO and SO_SNDTIMEO outlive that, and turn a stalled read or write
        into an OSError, on which gthread closes the connection and frees the thread.
        """
        stall_limit = struct.pack("ll", CLIENT_TIMEOUT, 0)  # struct timeval: seconds, microseconds
        try:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, stall_limit)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, stall_limit)
        except OSError:
            pass  # the client has gone already; the thread will find out and close it
        super().enqueue_req(conn)


wsgi_app = "approver_site.wsgi:application"
bind = [f"0.0.0.0:{_env_int('PORT', 8080)}"]  # Cloud Run's container contract: all interfaces
workers = _env_int("GUNICORN_WORKERS", 1)
worker_class = StallLimitedThreadWorker
threads = _env_int("GUNICORN_THREADS", 64)
timeout = _env_int("GUNICORN_TIMEOUT", 0)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 8)
# gunicorn 25+ opens a control socket under $HOME for `gunicornc`; nobody can reach it in a
# container, and the app's user has no home directory.
control_socket_disable = True
