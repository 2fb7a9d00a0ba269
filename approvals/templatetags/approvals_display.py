"""How a request's data is shown to people: details as tables, line items, amounts, dates.

Everything a caller sent is escaped here (format_html); only http and https values become links.
Details are shown within the caps of `approvals.details` (rows, columns, values, depth, length of
text), and each table says what it leaves out.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from approvals import text
from approvals.details import SHOWN_CELLS, SHOWN_COLUMNS, SHOWN_DEPTH, SHOWN_ROWS, SHOWN_TEXT

register = template.Library()

DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


@dataclass
class _Shown:
    """What one request's details may still show, and whether anything was left out."""

    cells: int = SHOWN_CELLS
    left_out: bool = False

    def take(self, cells: int = 1) -> bool:
        if cells > self.cells:
            self.left_out = True
            return False
        self.cells -= cells
        return True


@register.simple_tag
def details_table(details):
    """Render a details object as a table, nested objects and lists as nested tables, as much
    of it as the caps allow; the caller links to the whole JSON next to it."""
    if not details:
        return mark_safe('<p class="muted">No details.</p>')
    shown = _Shown()
    table = _table(details, 1, shown)
    if not shown.left_out:
        return table
    return format_html(
        '{}<p class="muted">Not all of the details are shown here: the JSON holds them whole.</p>',
        table,
    )


def _more(count: int, noun: str) -> str:
    return f"{count:,} more {noun}{'' if count == 1 else 's'} not shown"


def _joined(pieces):
    """Pieces made by format_html, one after the other (they are escaped already)."""
    return format_html_join("", "{}", ((piece,) for piece in pieces))


def _table(mapping: dict, level: int, shown: _Shown):
    rows = []
    for index, (key, value) in enumerate(mapping.items()):
        if index == SHOWN_ROWS or not shown.take():
            shown.left_out = True
            more = _more(len(mapping) - index, "field")
            rows.append(format_html('<tr><td colspan="2" class="muted">{}</td></tr>', more))
            break
        rows.append(
            format_html(
                '<tr><th scope="row">{}</th><td>{}</td></tr>',
                _clipped(key, shown),
                _value(value, level + 1, shown),
            )
        )
    return format_html('<table class="details">{}</table>', _joined(rows))


def _value(value, level: int, shown: _Shown):
    """One value at `level` of the details (the details object itself is level 1)."""
    if isinstance(value, (dict, list)):
        if not value:
            return "—"
        if level > SHOWN_DEPTH:
            shown.left_out = True
            return format_html(
                '<span class="muted">{}</span>', f"nested deeper than {SHOWN_DEPTH} levels"
            )
        if isinstance(value, dict):
            return _table(value, level, shown)
        if level < SHOWN_DEPTH and all(isinstance(item, dict) and item for item in value):
            return _line_items(value, level, shown)
        return _list(value, level, shown)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, str):
        return _clipped(str(value), shown)
    link = value.startswith(("https://", "http://")) and " " not in value
    if link and len(value) <= SHOWN_TEXT:
        return format_html('<a href="{}" rel="noopener noreferrer nofollow">{}</a>', value, value)
    moment = _moment(value)
    return moment if moment is not None else _clipped(value, shown)


def _clipped(value: str, shown: _Shown):
    """At most SHOWN_TEXT characters of `value`, saying how many more there are."""
    if len(value) <= SHOWN_TEXT:
        return value
    shown.left_out = True
    more = _more(len(value) - SHOWN_TEXT, "character")
    return format_html('{}<span class="muted">… ({})</span>', value[:SHOWN_TEXT], more)


def _list(items: list, level: int, shown: _Shown):
    entries = []
    for index, item in enumerate(items):
        if index == SHOWN_ROWS or not shown.take():
            shown.left_out = True
            more = _more(len(items) - index, "item")
            entries.append(format_html('<li class="muted">{}</li>', more))
            break
        entries.append(format_html("<li>{}</li>", _value(item, level + 1, shown)))
    return format_html('<ul class="plain">{}</ul>', _joined(entries))


MONEY_KEYS = ("amount", "total", "price", "cost", "sum", "subtotal")


def _line_items(items: list[dict], level: int, shown: _Shown):
    """A list of objects as one table: a column per key, and a total for money columns (of all
    the items, also those the table leaves out)."""
    every_column = list(dict.fromkeys(key for item in items for key in item))
    columns = every_column[:SHOWN_COLUMNS]
    money_columns = {
        key
        for key in columns
        if any(word in key.lower() for word in MONEY_KEYS)
        and all(_decimal(item.get(key)) is not None for item in items if key in item)
    }
    css = {key: "num" if key in money_columns else "" for key in columns}
    rows = _item_rows(items, columns, money_columns, css, level, shown)
    head = format_html_join(
        "",
        '<th scope="col" class="{}">{}</th>',
        ((css[key], _clipped(key, shown)) for key in columns),
    )
    caption = _items_caption(len(rows), len(items), len(columns), len(every_column), money_columns)
    if caption:
        shown.left_out = True
    return format_html(
        '<table class="items">{}<thead><tr>{}</tr></thead><tbody>{}</tbody>{}</table>',
        caption,
        head,
        _joined(rows),
        _items_total(items, columns, money_columns, css),
    )


def _item_rows(items, columns, money_columns, css, level: int, shown: _Shown) -> list:
    """The table's rows, as many as `shown` still allows."""
    rows = []
    for item in items[:SHOWN_ROWS]:
        if not shown.take(len(columns)):
            break
        cells = (
            (
                css[key],
                money(_decimal(item[key]))
                if key in money_columns and key in item
                else _value(item.get(key), level + 2, shown),
            )
            for key in columns
        )
        rows.append(
            format_html("<tr>{}</tr>", format_html_join("", '<td class="{}">{}</td>', cells))
        )
    return rows


def _items_total(items, columns, money_columns, css):
    """The footer with the money columns' totals over every item, or "" when there are none."""
    if not money_columns:
        return ""
    cells = (
        (
            css[key],
            money(sum(_decimal(i[key]) for i in items if key in i))
            if key in money_columns
            else ("Total" if index == 0 else ""),
        )
        for index, key in enumerate(columns)
    )
    return format_html(
        '<tfoot><tr class="total">{}</tr></tfoot>',
        format_html_join("", '<td class="{}">{}</td>', cells),
    )


def _items_caption(rows: int, items: int, columns: int, every_column: int, money_columns):
    """What a table of line items leaves out, or "" when it shows them all."""
    left_out = []
    if rows < items:
        left_out.append(f"the first {rows:,} of {items:,} rows")
    if columns < every_column:
        left_out.append(f"{columns:,} of {every_column:,} columns")
    if not left_out:
        return ""
    total = " The total counts every row." if money_columns and rows < items else ""
    return format_html(
        '<caption class="muted">Showing {}.{}</caption>', " and ".join(left_out), total
    )


def _decimal(value):
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if isinstance(value, str) and DECIMAL_RE.fullmatch(value.strip()):
        return Decimal(value.strip())
    return None


def _moment(text: str):
    """An ISO 8601 date or date-time as people read it, or None for other text."""
    if not DATE_RE.match(text):
        return None
    try:
        if len(text) == 10:
            return date_format(date.fromisoformat(text), "j M Y")
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if timezone.is_naive(moment):
        return date_format(moment, "j M Y, H:i")
    return date_format(moment.astimezone(UTC), "j M Y, H:i e")


@register.filter
def one_line(value):
    """Text kept on one line: control characters and line breaks (in text stored before the
    API refused them) become spaces, for plain-text mail where a line break would matter."""
    return text.one_line(str(value))


@register.filter
def money(amount):
    """12345.5 -> 12,345.50 (at least two decimals, more when given)."""
    if amount is None:
        return ""
    normalized = amount.normalize()
    places = max(2, -normalized.as_tuple().exponent)
    return intcomma(f"{amount:.{places}f}")
