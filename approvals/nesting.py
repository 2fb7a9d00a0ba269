"""How deeply JSON nests, read from its text before Python's recursive parser sees it.

`json.loads` and `json.dumps` recurse once per level of objects and lists, and some way below a
thousand levels (the deeper the call stack already is, the fewer) they raise RecursionError: a
500 for a request body, a page or an admin view. These functions walk the text without
recursion: `check` refuses text nested too deeply, `cut` shortens it to a depth that is safe.
"""

import json
import re

# A string, to its closing quote or to the end of the text when it has none, or a bracket. The
# quantifiers are possessive, so an unterminated string is read once, not again from each quote.
TOKEN_RE = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]', re.DOTALL)
OPENING = ("[", "{")


class TooDeep(ValueError):
    """JSON text nests objects and lists deeper than allowed."""

    def __init__(self, key: str | None):
        super().__init__("nested too deeply")
        self.key = key  # the top-level object's key under which it does, when there is one


def _shallow(text: str, limit: int) -> bool:
    """Whether `text` holds too few brackets to nest more than `limit` levels (C speed)."""
    return text.count("[") + text.count("{") <= limit


def check(text: str, limit: int) -> None:
    """Raise TooDeep when `text` nests objects and lists more than `limit` levels (the outermost
    is level 1). Malformed text passes when it is not too deep: the parser refuses it after."""
    if _shallow(text, limit):
        return
    depth, top_is_object, last_string, key = 0, False, None, None
    for match in TOKEN_RE.finditer(text):
        part = match.group()
        if part[0] == '"':
            if depth == 1:
                last_string = part  # in an object, the key before a value that opens a level
        elif part in OPENING:
            depth += 1
            if depth == 1:
                top_is_object = part == "{"
            elif depth == 2:
                key = _key(last_string) if top_is_object else None
            if depth > limit:
                raise TooDeep(key)
        else:
            depth -= 1


def _key(string: str | None) -> str | None:
    try:
        key = json.loads(string) if string else None
    except ValueError:
        return None
    return key if isinstance(key, str) else None


def cut(text: str, limit: int, placeholder: str) -> str:
    """Well-formed JSON `text` with every object and list deeper than `limit` levels replaced by
    the string `placeholder`, so that it can be parsed whatever its depth."""
    if _shallow(text, limit):
        return text
    pieces, kept_from, depth, cut_from = [], 0, 0, None
    for match in TOKEN_RE.finditer(text):
        part = match.group()
        if part[0] == '"':
            continue
        if part in OPENING:
            depth += 1
            if depth == limit + 1:
                cut_from = match.start()
            continue
        if depth == limit + 1 and cut_from is not None:
            pieces += [text[kept_from:cut_from], json.dumps(placeholder)]
            kept_from, cut_from = match.end(), None
        depth -= 1
    pieces.append(text[kept_from:])
    return "".join(pieces)
