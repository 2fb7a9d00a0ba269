"""`docs/benchmarks.md` from a run's figures: the words in `bench/templates/benchmarks.md`.

This module only formats figures and judges the goals; the template holds the prose. The
hand-written history below the marker in `docs/benchmarks.md` is kept as it is.
"""

from pathlib import Path

from django.template import Context, Engine

TEMPLATES = Path(__file__).resolve().parent / "templates"
GOAL_RATIO = 0.6
# Everything from this line on in docs/benchmarks.md is hand-written, and `make bench` keeps it.
HISTORY_MARKER = "<!-- History: hand-written below this line; make bench keeps it. -->"


def fmt(value, digits=1):
    """A figure as the report prints it: `n/a` when the run could not measure it."""
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def verdict(holds):
    """A goal's word in the report."""
    return "holds" if holds else "missed"


def ratio(numerator, denominator):
    """A quotient that is `None` where either side was not measured."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def report(config, info, reg, memory, decisions, inbox_results, started_at):
    """The generated part of docs/benchmarks.md, and which goals held."""
    http_cbs, cbs = decisions
    goals = {
        "ratio": reg["ratio"] >= GOAL_RATIO,
        "certs": reg["certs_fetches"] <= 1,
        "tokens": cbs["token_fetches"] <= 1 and http_cbs["token_fetches"] <= 1,
    }
    context = {
        "started_at": f"{started_at:%Y-%m-%d %H:%M}",
        "info": info,
        "config": run_context(config),
        "endpoints": table(endpoint_rows(reg)),
        "ratio": f"{reg['ratio']:.2f}",
        "goal_ratio": GOAL_RATIO,
        "goals": {name: verdict(holds) for name, holds in goals.items()},
        "notices": notices_context(reg["notices"]),
        "traffic": table(traffic_rows(reg, http_cbs, cbs)),
        "memory": [(label, f"{kib / 1024:.1f} MiB") for label, kib in memory],
        "http": http_context(http_cbs),
        "in_process": in_process_context(cbs),
        "inbox": inbox_context(config["inbox_rows"], inbox_results) if inbox_results else None,
    }
    engine = Engine(dirs=[str(TEMPLATES)], autoescape=False)
    text = engine.get_template("benchmarks.md").render(Context(context, autoescape=False))
    return text, goals


def with_history(text, path):
    """The new generated part with the hand-written history of the page at `path` after it."""
    old = path.read_text(encoding="utf-8")
    if HISTORY_MARKER not in old:
        raise RuntimeError(f"{path} has no history marker; refusing to drop its history")
    return text + "\n" + old[old.index(HISTORY_MARKER) :]


def table(rows):
    """Rows of cells as text, for the template's `join`."""
    return [[str(cell) for cell in row] for row in rows]


def run_context(config):
    """The load's settings, as the table of the machine and run prints them."""
    return {
        **config,
        "warmup": f"{config['warmup']:g}",
        "seconds": f"{config['seconds']:g}",
    }


def endpoint_rows(reg):
    """The registration table: the baseline, then the API."""
    rows = []
    for name, label in (
        ("baseline", "baseline `/bench/baseline`"),
        ("api", "`POST /api/approvals`"),
    ):
        r = reg[name]
        rounds = ", ".join(str(x) for x in r["rounds"])
        rows.append([label, fmt(r["rps"]), fmt(r["p50_ms"]), fmt(r["p99_ms"]), rounds])
        rows[-1] += [f"{r['ok']:,}", r["errors"]]
    return rows


def notices_context(notices):
    """The e-mail pass after the registrations."""
    return {
        "requests": f"{notices['requests']:,}",
        "seconds": fmt(notices["seconds"]),
        "per_s": fmt(notices["per_s"]),
    }


def traffic_rows(reg, http_cbs, cbs):
    """The token and certs table: fetches against what one fetch per call would cost."""
    registrations = f"{reg['registrations']:,}"
    return [
        (
            "certs URL, over the registration run (1 gunicorn worker)",
            f"{registrations} registrations (+ warm-up)",
            reg["certs_fetches"],
            f"{registrations}+",
            verdict(reg["certs_fetches"] <= 1),
        ),
        (
            "metadata token endpoint, over the registration run",
            f"{registrations} registrations",
            reg["token_fetches"],
            "0 (no callbacks)",
            verdict(reg["token_fetches"] <= 1),
        ),
        decision_traffic("over the decision POSTs (1 gunicorn worker)", http_cbs),
        decision_traffic("over the in-process decisions (the driver)", cbs),
    ]


def decision_traffic(where, result):
    """One row of token fetches for a run of decisions."""
    return (
        f"metadata token endpoint, {where}",
        f"{result['decisions']:,} decisions, {result['delivered']:,} callbacks",
        result["token_fetches"],
        f"{result['decisions']:,}",
        verdict(result["token_fetches"] <= 1),
    )


def http_context(http_cbs):
    """The decisions over HTTP, formatted."""
    statuses = ", ".join(f"{count:,} × {status}" for status, count in http_cbs["statuses"].items())
    return {
        "decisions": f"{http_cbs['decisions']:,}",
        "delivered": f"{http_cbs['delivered']:,}",
        "statuses": statuses,
        **{
            key: fmt(http_cbs[key], 2) for key in ("p50_ms", "p99_ms", "post_p50_ms", "post_p99_ms")
        },
    }


def in_process_context(cbs):
    """The decisions in the driver's process, formatted."""
    outside = cbs["outside_share"]
    return {
        "decisions": f"{cbs['decisions']:,}",
        "delivered": f"{cbs['delivered']:,}",
        "p50_ms": fmt(cbs["p50_ms"], 2),
        "p99_ms": fmt(cbs["p99_ms"], 2),
        "outside": fmt(outside * 100 if outside is not None else None),
    }


def inbox_context(sizes, inbox_results):
    """The inbox table, and its goals where both sizes and the admin page were measured."""
    names = ("inbox page 1", "inbox page 50", "admin page 1", "admin page 50")
    rows = []
    for name in names:
        cells = [name]
        for size in sizes:
            cells += inbox_cells(inbox_results.get((name, size)))
        rows.append(cells)
    return {
        "sizes": [f"{size:,}" for size in sizes],
        "small": f"{sizes[0]:,}",
        "large": f"{sizes[-1]:,}",
        "rows": rows,
        "goals": inbox_goals(sizes, inbox_results),
    }


def inbox_cells(r):
    """One page at one size: in process (queries), over HTTP, rows shown."""
    if r is None:
        return ["—", "—", "—"]
    in_process = f"{fmt(r['ms'])} ({r['queries']})"
    if r["status"] != 200:
        in_process += f" HTTP {r['status']}"
    over_http = fmt(r["http_ms"])
    if r["http_status"] not in (200, None):
        over_http += f" HTTP {r['http_status']}"
    shown = "n/a" if r["rows"] is None else f"{r['rows']}"
    if r["rows"] != r["rows_in_process"]:
        shown += f" (in process {r['rows_in_process']})"
    return [in_process, over_http, shown]


def inbox_goals(sizes, inbox_results):
    """The inbox's goals: growth with the rows, against the admin, queries that stay put."""
    small, large = sizes[0], sizes[-1]
    inbox_small = inbox_results.get(("inbox page 1", small))
    inbox_large = inbox_results.get(("inbox page 1", large))
    admin_large = inbox_results.get(("admin page 1", large))
    if not (inbox_small and inbox_large and admin_large):
        return None
    full = all(
        r["rows"] == 25 and r["rows_in_process"] == 25 and r["status"] == 200
        for r in (inbox_small, inbox_large)
    )
    growth = {
        "in process": inbox_large["ms"] / inbox_small["ms"],
        "over HTTP": ratio(inbox_large["http_ms"], inbox_small["http_ms"]),
    }
    versus = {
        "in process": inbox_large["ms"] / admin_large["ms"],
        "over HTTP": ratio(inbox_large["http_ms"], admin_large["http_ms"]),
    }
    inbox_pages = [(key, r) for key, r in inbox_results.items() if key[0].startswith("inbox")]
    return {
        "full": full,
        "growth": goal_words(growth, full, lambda value: value <= 1.5),
        "versus": goal_words(versus, full, lambda value: value < 1),
        "rows_small": inbox_small["rows"],
        "rows_large": inbox_large["rows"],
        "queries": ", ".join(f"{r['queries']} for {n} at {s:,} rows" for (n, s), r in inbox_pages),
        "steady": verdict(queries_steady(inbox_pages)),
    }


def goal_words(values, full, holds):
    """`in process **1.10** (**holds**), over HTTP …`: a goal judged on both measures."""
    return ", ".join(
        f"{how} **{fmt(value, 2)}** (**{verdict(value is not None and full and holds(value))}**)"
        for how, value in values.items()
    )


def queries_steady(inbox_pages):
    """Whether the inbox's queries per page stay at most what the smallest size needed."""
    by_size = [r["queries"] for _key, r in sorted(inbox_pages, key=lambda item: item[0][1])]
    return bool(by_size) and max(by_size) <= by_size[0]
