"""Which characters the text the app keeps may hold: one-line fields, multi-line fields, any text.

A line break inside a title puts a line of the caller's choosing on its own in the plain-text
e-mail (a fake "Approve:" link, say); a tab inside a callback URL is dropped by `urlsplit` but
sent by `requests` as `%09`; a right-to-left override makes a title read backwards. So one-line
fields refuse every control character, line and paragraph separator, and bidirectional
embedding, override or isolate; multi-line fields keep line breaks and tabs and refuse the other
control characters. NUL and lone surrogates are refused everywhere: PostgreSQL cannot store them.
"""

import re

# C0 and C1 controls and DEL (Unicode category Cc), U+2028 and U+2029 (line and paragraph
# separators), and the bidirectional embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069; the marks U+200E and U+200F stay allowed, right-to-left text needs them).
NOT_IN_A_LINE = "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
NOT_IN_A_LINE_RE = re.compile(NOT_IN_A_LINE)
NOT_IN_A_LINE_RUN_RE = re.compile(NOT_IN_A_LINE + "+")
# The same controls less tab, line feed and carriage return.
NOT_IN_TEXT_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def storable_problem(text: str) -> str | None:
    """Why `text` cannot be stored (a NUL character, a lone surrogate), or None."""
    if "\x00" in text:
        return "Must not contain NUL characters."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Must be valid Unicode (no lone surrogates)."
    return None


def one_line_problem(text: str) -> str | None:
    """Why `text` is not acceptable as a one-line field (title, e-mail, name...), or None."""
    return storable_problem(text) or _found(NOT_IN_A_LINE_RE.search(text), "one line")


def multi_line_problem(text: str) -> str | None:
    """Why `text` is not acceptable as free text (a description, a comment), or None."""
    return storable_problem(text) or _found(NOT_IN_TEXT_RE.search(text), "text")


def _found(match, kind: str) -> str | None:
    if match is None:
        return None
    allowed = " (line breaks and tabs are allowed)" if kind == "text" else ""
    return f"Must not contain control characters{allowed}: found U+{ord(match.group()):04X}."


def one_line(text: str) -> str:
    """`text` with each run of characters a line may not hold replaced by a space (for text
    stored before the rule, shown where a line break would matter)."""
    return NOT_IN_A_LINE_RUN_RE.sub(" ", text)
