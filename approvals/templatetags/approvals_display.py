"""How a request's data is shown to people: details as tables, line items, amounts, dates.

Everything a caller sent is escaped here (format_html); only http and https values become links.
"""

import re
from datetime import UTC, date, datetime
from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()

MAX_DEPTH = 6
DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


@register.simple_tag
def details_table(details):
    """Render a details object as a table, nested objects and lists as nested tables."""
    if not details:
        return mark_safe('<p class="muted">No details.</p>')
    return _table(details, 0)


def _table(mapping: dict, depth: int):
    rows = format_html_join(
        "",
        '<tr><th scope="row">{}</th><td>{}</td></tr>',
        ((key, _value(value, depth + 1)) for key, value in mapping.items()),
    )
    return format_html('<table class="details">{}</table>', rows)


def _value(value, depth: int):
    if depth > MAX_DEPTH:
        return format_html("<code>{}</code>", str(value)[:500])
    if isinstance(value, dict):
        return _table(value, depth) if value else "—"
    if isinstance(value, list):
        if not value:
            return "—"
        if all(isinstance(item, dict) and item for item in value):
            return _line_items(value, depth)
        items = format_html_join("", "<li>{}</li>", ((_value(item, depth + 1),) for item in value))
        return format_html('<ul class="plain">{}</ul>', items)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if isinstance(value, str) and text.startswith(("https://", "http://")) and " " not in text:
        return format_html('<a href="{}" rel="noopener noreferrer nofollow">{}</a>', text, text)
    if isinstance(value, str):
        moment = _moment(text)
        if moment is not None:
            return moment
    return text


MONEY_KEYS = ("amount", "total", "price", "cost", "sum", "subtotal")


def _line_items(items: list[dict], depth: int):
    """A list of objects as one table: a column per key, and a total for money columns."""
    columns = list(dict.fromkeys(key for item in items for key in item))
    money_columns = {
        key
        for key in columns
        if any(word in key.lower() for word in MONEY_KEYS)
        and all(_decimal(item.get(key)) is not None for item in items if key in item)
    }
    head = format_html_join(
        "",
        '<th scope="col" class="{}">{}</th>',
        (("num" if key in money_columns else "", key) for key in columns),
    )
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (
                format_html_join(
                    "",
                    '<td class="{}">{}</td>',
                    (
                        (
                            "num" if key in money_columns else "",
                            money(_decimal(item[key]))
                            if key in money_columns and key in item
                            else _value(item.get(key), depth + 1),
                        )
                        for key in columns
                    ),
                ),
            )
            for item in items
        ),
    )
    foot = ""
    if money_columns:
        cells = format_html_join(
            "",
            '<td class="{}">{}</td>',
            (
                (
                    "num" if key in money_columns else "",
                    money(sum(_decimal(i[key]) for i in items if key in i))
                    if key in money_columns
                    else ("Total" if index == 0 else ""),
                )
                for index, key in enumerate(columns)
            ),
        )
        foot = format_html('<tfoot><tr class="total">{}</tr></tfoot>', cells)
    return format_html(
        '<table class="items"><thead><tr>{}</tr></thead><tbody>{}</tbody>{}</table>',
        head,
        body,
        foot,
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
def money(amount):
    """12345.5 -> 12,345.50 (at least two decimals, more when given)."""
    if amount is None:
        return ""
    normalized = amount.normalize()
    places = max(2, -normalized.as_tuple().exponent)
    return intcomma(f"{amount:.{places}f}")
