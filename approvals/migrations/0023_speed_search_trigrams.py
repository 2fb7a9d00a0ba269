"""Trigram indexes for the inbox's search, on PostgreSQL only (issue 17).

The search (`approvals.web.inbox.apply`) matches each word with `icontains` on the title, the
requester's address, the external id and the description, which Django writes on PostgreSQL as
`UPPER(col::text) LIKE UPPER('%word%')`: no B-tree index serves a leading `%`, so every search
read the whole table. A GIN index of `pg_trgm`'s trigrams on exactly that expression does (one
per column, combined by a bitmap OR). SQLite has no such index and searches as before.
"""

from django.db import migrations

COLUMNS = ["title", "requester_email", "external_id", "description"]


def _index(column):
    return f"approvalrequest_{column}_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Trusted since PostgreSQL 13: the database's owner may create it without a superuser.
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {_index(column)} ON approvals_approvalrequest "
            f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS {_index(column)}")


class Migration(migrations.Migration):
    dependencies = [("approvals", "0022_notice_outbox")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
