"""The audit log's tamper evidence: each event's hash chain, its check, and the database triggers.

Each audit event carries a SHA-256 hash over its content and the hash of the event before it of
the same request (`GENESIS` for a request's first event), so the events of one request form a
chain: an edited, removed or inserted event no longer matches its hash or its neighbour's link.
The database refuses UPDATE and DELETE on the table (the triggers below), so the chain only ever
grows; `manage.py verify_audit` and the admin check it. What this proves, and what it does not
(someone who owns the tables can drop the triggers and recompute every hash), is in README,
"Security", and docs/deploy.md, step 13.

The hashed form is frozen: changing it would break every chain already recorded.
"""

import datetime
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

# The link of a request's first event: no event comes before it.
GENESIS = "0" * 64

TABLE = "approvals_auditevent"

POSTGRESQL_TRIGGERS = [
    f"""
    CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'Audit events are append-only: % refused.', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END;
    $$
    """,
    f"""
    CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()
    """,
]
POSTGRESQL_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_append_only()",
]

SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER {TABLE}_no_{verb.lower()} BEFORE {verb} ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'Audit events are append-only: {verb} refused.'); END
    """
    for verb in ("UPDATE", "DELETE")
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {TABLE}_no_{verb}" for verb in ("update", "delete")]

TRIGGERS = {
    "postgresql": (POSTGRESQL_TRIGGERS, POSTGRESQL_DROP),
    "sqlite": (SQLITE_TRIGGERS, SQLITE_DROP),
}


def install_triggers(connection) -> None:
    """Make the database refuse UPDATE and DELETE of audit events (PostgreSQL, SQLite)."""
    _execute(connection, TRIGGERS.get(connection.vendor, ([], []))[0])


def remove_triggers(connection) -> None:
    """Take the refusal away again (reversing the migration)."""
    _execute(connection, TRIGGERS.get(connection.vendor, ([], []))[1])


def _execute(connection, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)  # no parameters: the `%` above is PL/pgSQL's, not ours


def digest(event) -> str:
    """The SHA-256 hash of what `event` records and the link to the event before it."""
    content = {
        "request_id": str(event.request_id),
        "kind": str(event.kind),
        "actor": event.actor,
        "at": event.at.astimezone(datetime.UTC).isoformat(timespec="microseconds"),
        "payload": _plain(event.payload),
        "previous_hash": event.previous_hash,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _plain(value):
    """The payload as it reads back from either database: PostgreSQL's jsonb writes a whole
    float (1e20, -0.0) as an integer, so whole floats are hashed as integers."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class Break:
    """Where a chain stops holding: the event (None: the whole request) and why."""

    request_id: object
    event_id: int | None
    reason: str

    def __str__(self):
        event = f"event {self.event_id} of " if self.event_id is not None else ""
        return f"{event}request {self.request_id}: {self.reason}"


@dataclass(frozen=True)
class Checked:
    """What a check read, and the first break it found (None: every chain holds)."""

    events: int
    requests: int
    broken: Break | None = None


def check(events: Iterable) -> Checked:
    """Walk `events`, ordered by request and then by id, and stop at the first broken link."""
    count = requests = 0
    request_id, previous = None, GENESIS
    for event in events:
        count += 1
        if event.request_id != request_id:
            requests += 1
            request_id, previous = event.request_id, GENESIS
        broken = _link_break(event, previous)
        if broken:
            return Checked(count, requests, Break(event.request_id, event.pk, broken))
        previous = event.hash
    return Checked(count, requests)


def _link_break(event, previous: str) -> str:
    if event.previous_hash != previous:
        return (
            "it does not follow the event before it: an event of this request was removed, "
            "inserted or rewritten"
        )
    if digest(event) != event.hash:
        return "its content does not match its hash: it was changed"
    return ""
