"""gunicorn's settings for the container (the Dockerfile's CMD), read from the environment.

Cloud Run sets PORT and expects the server on 0.0.0.0. The defaults follow Google's Django sample
for Cloud Run: one worker process with eight threads, and no worker timeout (0), which leaves
request timeouts to Cloud Run. On SIGTERM (Cloud Run sends it before stopping an instance, and
SIGKILL 10 s later) gunicorn stops accepting connections, lets the requests in flight finish for
up to GUNICORN_GRACEFUL_TIMEOUT seconds and exits 0; the default of 8 s ends before the SIGKILL.
approvals/tests/test_container.py starts exactly this and checks it.
"""

import os


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


wsgi_app = "approver_site.wsgi:application"
bind = [f"0.0.0.0:{_env_int('PORT', 8080)}"]  # Cloud Run's container contract: all interfaces
workers = _env_int("GUNICORN_WORKERS", 1)
threads = _env_int("GUNICORN_THREADS", 8)
timeout = _env_int("GUNICORN_TIMEOUT", 0)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 8)
# gunicorn 25+ opens a control socket under $HOME for `gunicornc`; nobody can reach it in a
# container, and the app's user has no home directory.
control_socket_disable = True
