"""What a workflow sends to register an approval: the checks, field by field.

`parse()` turns the decoded JSON body of `POST /api/approvals` into a `Registration`, or raises
`InvalidRegistration` with one message list per field, the shape the API answers with a 400. Every
value a caller can send is either accepted as valid data or refused here, so nothing malformed
reaches the database (PostgreSQL refuses NUL characters, for instance, with a 500 if unchecked).
`check_depth()` runs before the body is parsed at all (see `MAX_DEPTH`).
"""

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from approvals import emails, inputs, nesting, permissions, text
from approvals.callback_urls import callback_url_problem
from approvals.models import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    MAX_CALLBACK_URL,
    MAX_EMAIL,
    MAX_EXTERNAL_ID,
    MAX_GROUP_NAME,
    MAX_TITLE,
)

# The limits of what a caller may send beyond the columns' sizes (those are `approvals.models`').
MAX_DESCRIPTION = 10_000
MAX_DETAILS_BYTES = 64 * 1024
# Levels of objects and lists a field may nest, the field's own value included (details holding
# line items use three). Python's JSON parser and encoder recurse once per level and fail some
# way below a thousand; pages show all of these levels (`approvals.details.SHOWN_DEPTH`).
MAX_DEPTH = 10
MAX_ASSIGNEES = 100
MAX_GROUPS = 20
MAX_REQUIRED_APPROVALS = 20
MIN_ESCALATE_AFTER = 60
MIN_TIMEOUT = 60
MAX_TIMEOUT = 31_536_000
FIELDS = {
    "callback_url",
    "title",
    "requester_email",
    "amount",
    "currency",
    "description",
    "details",
    "assignees",
    "external_id",
    "timeout_seconds",
    # Approval policies (README: "Approval policies"), additions to the contract's fields.
    "assignee_groups",
    "required_approvals",
    "escalate_to",
    "escalate_after_seconds",
    # Richer decisions (contract: "Richer decisions").
    "allow_changes_requested",
    # Approver inputs (contract: "Richer decisions"), checked by `approvals.inputs`.
    "inputs",
    # Richer decisions (the contract's section of that name).
    "notify_requester",
}
REQUIRED = {"callback_url", "title", "requester_email"}
CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
DECIMAL_RE = re.compile(r"[0-9]+(\.[0-9]+)?")


@dataclass
class Registration:
    callback_url: str
    title: str
    requester_email: str
    amount: Decimal | None = None
    currency: str = ""
    description: str = ""
    details: dict = field(default_factory=dict)
    assignees: list[str] = field(default_factory=list)
    external_id: str = ""
    timeout: timedelta = field(default_factory=lambda: timedelta(seconds=86400))
    assignee_groups: list[str] = field(default_factory=list)
    required_approvals: int = 1
    escalate_to_emails: list[str] = field(default_factory=list)
    escalate_to_groups: list[str] = field(default_factory=list)
    escalate_after: timedelta | None = None
    allow_changes_requested: bool = False
    inputs: list[dict] = field(default_factory=list)
    notify_requester: bool = True


class InvalidRegistration(Exception):
    def __init__(
        self, errors: dict[str, list[str]], message: str = "The request body is not valid."
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors


def check_depth(body: str) -> None:
    """Refuse a body whose fields nest deeper than `MAX_DEPTH`, before `json.loads` recurses
    into it; the field is named when the body is an object."""
    try:
        nesting.check(body, MAX_DEPTH + 1)  # the body's own object is one more level
    except nesting.TooDeep as deep:
        message = f"Nested too deeply: at most {MAX_DEPTH} levels of objects and lists."
        raise InvalidRegistration(
            {deep.key: [message]} if deep.key is not None else {},
            "The request body is not valid: " + message[0].lower() + message[1:],
        ) from None


def parse(data) -> Registration:
    """The registration that the decoded JSON body `data` asks for; InvalidRegistration says what
    is wrong with each field that is not valid."""
    if not isinstance(data, dict):
        raise InvalidRegistration({}, "The request body must be a JSON object.")
    errors = {name: ["Unknown field."] for name in sorted(set(data) - FIELDS)}
    fields = _parse_fields(data, errors)
    seconds = fields["timeout_seconds"] or settings.APPROVALS_DEFAULT_TIMEOUT_SECONDS
    timeout = timedelta(seconds=seconds)
    _check_amount_and_currency(fields["amount"], fields["currency"], errors)
    _check_escalation(fields["escalate_to"], fields["escalate_after_seconds"], timeout, errors)
    escalate_emails, escalate_groups = fields["escalate_to"] or ([], [])
    if not errors:
        named = {"assignee_groups": fields["assignee_groups"] or [], "escalate_to": escalate_groups}
        _check_groups_exist(named, errors)
    if not errors and (fields["required_approvals"] or 1) > 1:
        _check_enough_deciders(fields, escalate_emails, escalate_groups, errors)
    if errors:
        raise InvalidRegistration(errors)
    return Registration(
        callback_url=fields["callback_url"],
        title=fields["title"],
        requester_email=fields["requester_email"],
        amount=fields["amount"],
        currency=fields["currency"] or "",
        description=fields["description"] or "",
        details=fields["details"] or {},
        assignees=fields["assignees"] or [],
        external_id=fields["external_id"] or "",
        timeout=timeout,
        assignee_groups=fields["assignee_groups"] or [],
        required_approvals=fields["required_approvals"] or 1,
        escalate_to_emails=escalate_emails,
        escalate_to_groups=escalate_groups,
        escalate_after=fields["escalate_after_seconds"],
        allow_changes_requested=bool(fields["allow_changes_requested"]),
        inputs=fields["inputs"] or [],
        notify_requester=fields["notify_requester"] is not False,
    )


def _parse_fields(data: dict, errors: dict[str, list[str]]) -> dict:
    """Every field's value, each checked on its own: None when it is not sent (a required field
    then has its problem in `errors`) or not valid (its problem is in `errors`)."""
    parsers = {
        "callback_url": _callback_url,
        "title": _text(MAX_TITLE, required=True),
        "requester_email": _email,
        "amount": _amount,
        "currency": _currency,
        "description": _text(MAX_DESCRIPTION, multi_line=True),
        "details": _details,
        "assignees": _assignees,
        "external_id": _text(MAX_EXTERNAL_ID),
        "timeout_seconds": _timeout,
        "assignee_groups": _groups,
        "required_approvals": _required_approvals,
        "escalate_to": _escalate_to,
        "escalate_after_seconds": _escalate_after,
        "allow_changes_requested": _boolean,
        "inputs": inputs.parse_specs,
        "notify_requester": _boolean,
    }
    return {name: _parse_field(data, name, parser, errors) for name, parser in parsers.items()}


def _parse_field(data: dict, name: str, parser, errors: dict[str, list[str]]):
    value = data.get(name)
    if value is None:
        if name in REQUIRED:
            errors[name] = ["This field is required."]
        return None
    try:
        return parser(value)
    except ValueError as error:
        errors[name] = [str(error)]
    except inputs.InvalidInputs as invalid:  # one message per input's key (`inputs[2].name`)
        errors.update(invalid.errors)
    return None


def _check_amount_and_currency(amount, currency, errors) -> None:
    """An amount and its currency come together, or neither."""
    if amount is not None and not currency and "currency" not in errors:
        errors["currency"] = ["A currency is required with an amount."]
    if currency and amount is None and "amount" not in errors:
        errors["amount"] = ["An amount is required with a currency."]


def _check_enough_deciders(fields: dict, escalate_emails, escalate_groups, errors) -> None:
    """Enough different people may decide to give the approvals the request asks for."""
    required = fields["required_approvals"]
    possible = permissions.possible_decider_count(
        fields["requester_email"],
        fields["assignees"] or [],
        fields["assignee_groups"] or [],
        escalate_emails,
        escalate_groups,
    )
    if required > possible:
        errors["required_approvals"] = [
            f"Only {possible} approver(s) could decide this request, so it cannot collect "
            f"{required} approvals. Name more assignees or groups."
        ]


def _check_escalation(escalate_to, escalate_after, timeout, errors) -> None:
    """Escalation needs both its fields, and its time must come before the request expires."""
    if (
        escalate_to is not None
        and escalate_after is None
        and "escalate_after_seconds" not in errors
    ):
        errors["escalate_after_seconds"] = ["Required with escalate_to."]
    if escalate_after is not None and escalate_to is None and "escalate_to" not in errors:
        errors["escalate_to"] = ["Required with escalate_after_seconds."]
    if escalate_after is not None and escalate_after >= timeout and "timeout_seconds" not in errors:
        errors["escalate_after_seconds"] = [
            f"Must be less than the request's timeout ({int(timeout.total_seconds()):,} seconds)."
        ]


def _check_groups_exist(named: dict[str, list[str]], errors) -> None:
    """Every group named must exist: a misspelt group would let nobody decide."""
    wanted = {group for groups in named.values() for group in groups}
    if not wanted:
        return
    known = set(Group.objects.filter(name__in=wanted).values_list("name", flat=True))
    for name, groups in named.items():
        unknown = [group for group in groups if group not in known]
        if unknown:
            errors[name] = ["No such group: " + ", ".join(unknown) + "."]


def _string(value, problem=text.one_line_problem) -> str:
    """A string whose characters `problem` accepts (one line, by default)."""
    if not isinstance(value, str):
        raise ValueError("Must be a string.")
    found = problem(value)
    if found:
        raise ValueError(found)
    return value


def _text(max_length: int, required: bool = False, multi_line: bool = False):
    problem = text.multi_line_problem if multi_line else text.one_line_problem

    def parse_text(value) -> str:
        stripped = _string(value, problem).strip()
        if required and not stripped:
            raise ValueError("Must not be empty.")
        if len(stripped) > max_length:
            raise ValueError(f"At most {max_length:,} characters.")
        return stripped

    return parse_text


def _callback_url(value) -> str:
    url = _string(value, text.storable_problem)
    if len(url) > MAX_CALLBACK_URL or not url.isascii():
        raise ValueError(f"Must be an ASCII URL of at most {MAX_CALLBACK_URL:,} characters.")
    problem = callback_url_problem(url)
    if problem:
        raise ValueError(problem)
    return url


def _boolean(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError("Must be true or false.")
    return value


def _email(value) -> str:
    email = _string(value).strip()
    if len(email) > MAX_EMAIL:
        raise ValueError(f"At most {MAX_EMAIL} characters.")
    try:
        validate_email(email)
        emails.canonical(email)  # the form people are compared in (approvals.emails)
    except (ValidationError, emails.InvalidAddress):
        raise ValueError("Must be an e-mail address.") from None
    return email.lower()


def _amount(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("Must be a number or a string holding one.")
    text = str(value).strip()
    if isinstance(value, str) and not DECIMAL_RE.fullmatch(text):
        raise ValueError("Must be a decimal number such as 12.50.")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError("Must be a decimal number such as 12.50.") from None
    if not amount.is_finite():
        raise ValueError("Must be a finite number.")
    if amount < 0:
        raise ValueError("Must not be negative.")
    _sign, digits, exponent = amount.normalize().as_tuple()
    decimals = max(0, -exponent)
    integer_digits = max(0, len(digits) + exponent)
    if decimals > AMOUNT_DECIMAL_PLACES:
        raise ValueError(f"At most {AMOUNT_DECIMAL_PLACES} decimal places.")
    if integer_digits > AMOUNT_MAX_DIGITS - AMOUNT_DECIMAL_PLACES:
        raise ValueError("Too large.")
    return amount


def _currency(value) -> str:
    currency = _string(value).strip()
    if not CURRENCY_RE.fullmatch(currency):
        raise ValueError("Must be a three-letter ISO 4217 code such as EUR.")
    return currency.upper()


def _details(value) -> dict:
    if not isinstance(value, dict):
        raise ValueError("Must be a JSON object.")
    _check_json(value)
    try:
        serialized = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise ValueError("Must be plain JSON (no NaN or Infinity).") from None
    if len(serialized.encode("utf-8")) > MAX_DETAILS_BYTES:
        raise ValueError(f"At most {MAX_DETAILS_BYTES // 1024} KiB once serialized.")
    return value


def _check_json(value) -> None:
    """Every key and string in a JSON value must be storable, and it nests at most `MAX_DEPTH`
    levels (checked without recursion, before json.dumps would recurse)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            problem = text.storable_problem(item)
            if problem:
                raise ValueError(problem)
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise ValueError(
                    f"Nested too deeply: at most {MAX_DEPTH} levels of objects and lists."
                )
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def _assignees(value) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("Must be a list of e-mail addresses.")
    if len(value) > MAX_ASSIGNEES:
        raise ValueError(f"At most {MAX_ASSIGNEES} assignees.")
    emails = []
    for item in value:
        try:
            email = _email(item)
        except ValueError:
            raise ValueError(f"{str(item)[:100]!r} is not an e-mail address.") from None
        if email not in emails:
            emails.append(email)
    return emails


def _group_name(value) -> str:
    name = _string(value).strip()
    if not name or len(name) > MAX_GROUP_NAME:
        raise ValueError(f"A group name has 1 to {MAX_GROUP_NAME} characters.")
    return name


def _groups(value) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("Must be a list of group names.")
    if len(value) > MAX_GROUPS:
        raise ValueError(f"At most {MAX_GROUPS} groups.")
    names = []
    for item in value:
        name = _group_name(item)
        if name not in names:
            names.append(name)
    return names


def _required_approvals(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("Must be a whole number.")
    if not 1 <= value <= MAX_REQUIRED_APPROVALS:
        raise ValueError(f"Must be between 1 and {MAX_REQUIRED_APPROVALS}.")
    return value


def _escalate_to(value) -> tuple[list[str], list[str]]:
    """E-mails (they hold an @) and group names, each list without repeats."""
    if not isinstance(value, list) or not value:
        raise ValueError("Must be a non-empty list of e-mail addresses and group names.")
    if len(value) > MAX_ASSIGNEES:
        raise ValueError(f"At most {MAX_ASSIGNEES} entries.")
    emails, groups = [], []
    for item in value:
        if isinstance(item, str) and "@" in item:
            try:
                email = _email(item)
            except ValueError:
                raise ValueError(f"{item[:100]!r} is not an e-mail address.") from None
            if email not in emails:
                emails.append(email)
        else:
            name = _group_name(item)
            if name not in groups:
                groups.append(name)
    if len(groups) > MAX_GROUPS:
        raise ValueError(f"At most {MAX_GROUPS} groups.")
    return emails, groups


def _escalate_after(value) -> timedelta:
    seconds = _whole_seconds(value)
    if not MIN_ESCALATE_AFTER <= seconds <= MAX_TIMEOUT:
        raise ValueError(f"Must be between {MIN_ESCALATE_AFTER} and {MAX_TIMEOUT:,} seconds.")
    return timedelta(seconds=seconds)


def _whole_seconds(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("Must be a whole number of seconds.")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("Must be a whole number of seconds.")
    return int(value)


def _timeout(value) -> int:
    seconds = _whole_seconds(value)
    if not MIN_TIMEOUT <= seconds <= MAX_TIMEOUT:
        raise ValueError(f"Must be between {MIN_TIMEOUT} and {MAX_TIMEOUT:,} seconds.")
    return seconds
