"""The registration load from wrk (an outside load generator), in the shape of `bench/load.py`.

`tools/ensure-wrk` finds or installs wrk; without it the driver keeps `bench/load.py` and the
report says so. wrk keeps `threads` keep-alive connections busy from two threads of its own
(`bench/register.lua` writes each body) and reports the rate, the latency percentiles and the
answers that were not 2xx or 3xx.
"""

import re
import subprocess
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(ms|s|m)")
NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def find():
    """wrk's path, installing it where tools/ensure-wrk can; None without it."""
    found = subprocess.run(  # noqa: S603 - our own script
        [str(ROOT / "tools" / "ensure-wrk")], capture_output=True, text=True, check=False
    )
    lines = found.stdout.strip().splitlines()
    return lines[-1] if found.returncode == 0 and lines else None


def run(wrk, port, path, token, callback_prefix, seconds, threads):
    """One wrk run against gunicorn: the same figures `bench/load.py` prints."""
    env = {
        "BENCH_PATH": path,
        "BENCH_TOKEN": token or "",
        "BENCH_PREFIX": callback_prefix,
        "BENCH_RUN": uuid.uuid4().hex[:8],
    }
    command = [
        wrk,
        "--threads",
        str(min(2, threads)),
        "--connections",
        str(threads),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "--latency",
        "--script",
        str(ROOT / "bench" / "register.lua"),
        f"http://127.0.0.1:{port}{path}",
    ]
    done = subprocess.run(  # noqa: S603 - our own command line
        command, capture_output=True, text=True, check=True, env=env, timeout=seconds + 60
    )
    return parse(done.stdout)


def parse(text):
    """wrk's summary as `bench/load.py`'s figures (ok, errors, rps, p50 and p99 in ms)."""
    total, elapsed, unit = TOTAL.search(text).groups()
    seconds = float(elapsed) * UNIT_MS[unit] / 1000
    non_2xx = int(m.group(1)) if (m := NON_2XX.search(text)) else 0
    socket = sum(map(int, m.groups())) if (m := SOCKET_ERRORS.search(text)) else 0
    ok = int(total) - non_2xx
    latency = {share: float(value) * UNIT_MS[u] for share, value, u in LATENCY.findall(text)}
    return {
        "ok": ok,
        "errors": non_2xx + socket,
        "statuses": {"non-2xx": non_2xx, "socket errors": socket},
        "seconds": seconds,
        "rps": ok / seconds if seconds else 0.0,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
    }
