"""How a request's data is shown to people: details as tables, amounts, delivery states.

Everything a caller sent is escaped here (format_html); only http and https values become links.
"""

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()

MAX_DEPTH = 6


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
        items = format_html_join("", "<li>{}</li>", ((_value(item, depth + 1),) for item in value))
        return format_html('<ul class="plain">{}</ul>', items)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if isinstance(value, str) and text.startswith(("https://", "http://")) and " " not in text:
        return format_html('<a href="{}" rel="noopener noreferrer nofollow">{}</a>', text, text)
    return text


@register.filter
def money(amount):
    """12345.5 -> 12,345.50 (at least two decimals, more when given)."""
    if amount is None:
        return ""
    normalized = amount.normalize()
    places = max(2, -normalized.as_tuple().exponent)
    return intcomma(f"{amount:.{places}f}")
