"""When two e-mail addresses are the same mailbox, or the same person: the one canonical form.

Every comparison of people goes through here: requester against decider, assignees, escalation
targets, delegates, the decisions already given, the inbox's filters and the API's callers. The
requests store the canonical forms beside the addresses as given (`requester_key`,
`Assignee.email_key`), so the queries compare canonical to canonical too.

`canonical(address)` is the mailbox:

* NFKC-normalised (a full-width e, U+FF45, is `e`), whitespace around it dropped, the local part
  case-folded (`Ann` is `ann`);
* a quoted local part unquoted when what it quotes is a plain dot-atom (`"ann"` is `ann`);
* the domain in its IDNA 2008 A-label form, through UTS 46 (`Bücher.de` is `xn--bcher-kva.de`,
  a soft hyphen is nothing, `straße.de` and `strasse.de` stay two domains), without the root's
  trailing dot; an address literal (`[192.0.2.1]`) in its standard form.

`person(address)` is the mailbox without its sub-address (`ann+trip@` is `ann@`): the rule "never
your own request" compares people, since one person reads every `+tag` of their mailbox.
Assignees and decisions compare mailboxes: naming `boss+travel@` names that mailbox, not `boss@`.

Text that cannot be put in this form (no domain, an unquoted local part that is no dot-atom, a
domain IDNA refuses, over 254 characters) raises `InvalidAddress`: registration answers 400, and an
account with such an e-mail cannot decide.
"""

import functools
import ipaddress
import re
import unicodedata

import idna

MAX_LENGTH = 254  # RFC 5321's forward path, and the columns' size

# RFC 5322's atext, plus any non-ASCII letter or sign (RFC 6532); checked after NFKC + casefold.
ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~\-]"
DOT_ATOM_RE = re.compile(rf"(?:{ATEXT}|[^\x00-\x7f])+(?:\.(?:{ATEXT}|[^\x00-\x7f])+)*")
QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
# Inside quotes: any printable character but an unescaped quote or backslash.
QUOTED_TEXT_RE = re.compile(r'(?:[^"\\\x00-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*')


class InvalidAddress(ValueError):
    """The text has no canonical form: it is not an e-mail address this app can compare."""


def canonical(address: str) -> str:
    """The canonical form of the mailbox `address` names; raises InvalidAddress."""
    local, domain = _parts(address)
    return _checked_length(_local_part(local) + "@" + domain)


def person(address: str) -> str:
    """The canonical form of `address` without its sub-address (`+tag`); raises InvalidAddress."""
    local, domain = _parts(address)
    base, plus, _tag = local.partition("+")
    return _checked_length(_local_part(base if plus and base else local) + "@" + domain)


def _parts(address: str) -> tuple[str, str]:
    """The local part (folded, unquoted) and the canonical domain of `address`."""
    if not isinstance(address, str):
        raise InvalidAddress("An e-mail address is text.")
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidAddress("An e-mail address holds no lone surrogates.") from None
    local, at, domain = unicodedata.normalize("NFKC", address).strip().rpartition("@")
    if not at or not local or not domain:
        raise InvalidAddress("An e-mail address has a local part, an @ and a domain.")
    folded = unicodedata.normalize("NFKC", local.casefold())
    return _unquoted(folded), _domain(domain)


def _unquoted(local: str) -> str:
    """What a quoted local part quotes, or a dot-atom as it is."""
    if len(local) >= 2 and local[0] == local[-1] == '"':
        inner = local[1:-1]
        if not QUOTED_TEXT_RE.fullmatch(inner):
            raise InvalidAddress("The quoted local part is not well formed.")
        text = QUOTED_PAIR_RE.sub(r"\1", inner)
    elif DOT_ATOM_RE.fullmatch(local):
        text = local
    else:
        raise InvalidAddress("The local part is neither a dot-atom nor quoted.")
    # Invisible and control characters beyond ASCII (a soft hyphen, a zero-width space, a line
    # separator) would make two addresses that look alike compare different.
    if any(ord(c) > 0x7F and unicodedata.category(c)[0] in "CZ" for c in text):
        raise InvalidAddress("The local part holds an invisible or control character.")
    return text


def _local_part(text: str) -> str:
    """`text` written as a local part: bare when it is a dot-atom, quoted otherwise."""
    if DOT_ATOM_RE.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=1024)
def _domain(domain: str) -> str:
    # Kept: a company's few domains come back on every address (IDNA is most of the cost).
    if domain.startswith("[") and domain.endswith("]"):
        return "[" + _address_literal(domain[1:-1]) + "]"
    domain = domain[:-1] if domain.endswith(".") else domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise InvalidAddress(f"The domain is not a valid domain name: {error}") from None


def _address_literal(text: str) -> str:
    try:
        if text.lower().startswith("ipv6:"):
            return "ipv6:" + str(ipaddress.IPv6Address(text[len("ipv6:") :]))
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise InvalidAddress("The address literal is not an IP address.") from None


def _checked_length(address: str) -> str:
    if len(address) > MAX_LENGTH:
        raise InvalidAddress(f"An e-mail address has at most {MAX_LENGTH} characters.")
    return address
