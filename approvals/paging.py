"""The admin's paginator for large tables: a count that never reads a million rows.

Django's admin counts the rows of every changelist page (`SELECT COUNT(*)`), which on
PostgreSQL reads the whole table or index: seconds at a million requests. This paginator counts
exactly up to `EXACT_UP_TO` rows and, past that on PostgreSQL, takes the planner's estimate for
the same query (`EXPLAIN`), so the page links and "N results" are right for small selections and
about right for large ones; SQLite counts (its tables are the local demo's).
"""

import json
from functools import cached_property

from django.core.paginator import Paginator
from django.db import connections

EXACT_UP_TO = 10_000


class EstimatedCountPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        counted = queryset.order_by()[: EXACT_UP_TO + 1].count()
        if counted <= EXACT_UP_TO:
            return counted
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return super().count
        return max(EXACT_UP_TO + 1, planned_rows(queryset.order_by(), connection))


def planned_rows(queryset, connection) -> int:
    """The rows PostgreSQL's planner expects the query to return (from the table statistics)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
