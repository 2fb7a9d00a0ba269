"""Approver inputs: what a request asks its deciders to fill in, and the values they give.

The one home of the rules (contract: "Richer decisions"): `parse_specs` checks the registration's
`inputs`; `asked` says which of them a decision asks for; `clean` checks the values a person gives
and turns them into what the decision row, the audit log and the callback keep (numbers as decimal
strings, dates "YYYY-MM-DD", booleans true/false, an optional input left empty null). The request
page, the e-mail's confirmation page, bulk decisions, the API and `services.decide` all call them.
"""

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from approvals import text

MAX_INPUTS = 20
MAX_LABEL = 80
MAX_CHOICES = 50
MAX_CHOICE = 200
MAX_TEXT = 1000  # a text input's value
MAX_DIGITS = 30
NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,39}")
NUMBER_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
TYPES = ("text", "number", "date", "choice", "boolean")
# The decisions an input may be asked for (`changes_requested` comes with "send back").
DECISIONS = ("approved", "rejected", "changes_requested")
SPEC_KEYS = {"name", "label", "type", "required", "choices", "min", "max", "when"}
DEFAULT_WHEN = ["approved"]


class InvalidInputs(Exception):
    """Values, or a registration's specs, that are not valid: one message list per key."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in errors.items()))
        self.errors = errors


def parse_specs(value) -> list[dict]:
    """The registration's `inputs`, each spec with every key filled in; InvalidInputs with keys
    `inputs` or `inputs[i].key` otherwise."""
    if not isinstance(value, list):
        raise InvalidInputs({"inputs": ["Must be a list of inputs."]})
    if len(value) > MAX_INPUTS:
        raise InvalidInputs({"inputs": [f"At most {MAX_INPUTS} inputs."]})
    errors: dict[str, list[str]] = {}
    specs = []
    for index, item in enumerate(value):
        spec = _parse_spec(item, f"inputs[{index}]", errors)
        if spec is None:
            continue
        if any(other["name"] == spec["name"] for other in specs):
            errors[f"inputs[{index}].name"] = [f"Another input is named {spec['name']!r}."]
        specs.append(spec)
    if errors:
        raise InvalidInputs(errors)
    return specs


def _parse_spec(item, key: str, errors: dict) -> dict | None:
    if not isinstance(item, dict):
        errors[key] = ["Must be an object."]
        return None
    found = {f"{key}.{name}": ["Unknown field."] for name in sorted(set(item) - SPEC_KEYS)}
    spec = {}
    for name, parse in (
        ("name", _name),
        ("label", _label),
        ("type", _type),
        ("required", _required),
        ("when", _when),
        ("choices", _choices),
        ("min", _number),
        ("max", _number),
    ):
        try:
            spec[name] = parse(item.get(name)) if name in item else _default(name)
        except ValueError as problem:
            found[f"{key}.{name}"] = [str(problem)]
    if not found:
        _check_kinds(spec, item, key, found)
    errors.update(found)
    return None if found else spec


def _default(name: str):
    """The value of a key the spec leaves out; `name`, `label` and `type` must be given."""
    if name in ("name", "label", "type"):
        raise ValueError("This field is required.")
    return {"required": False, "when": list(DEFAULT_WHEN), "choices": []}.get(name)


def _check_kinds(spec: dict, item: dict, key: str, found: dict) -> None:
    """`choices` only (and always) for a choice, `min` and `max` only for a number."""
    if spec["type"] == "choice" and not spec["choices"]:
        found[f"{key}.choices"] = ["Required for a choice: 1 to 50 strings."]
    if spec["type"] != "choice" and "choices" in item:
        found[f"{key}.choices"] = ["Only for a choice."]
    for bound in ("min", "max"):
        if spec["type"] != "number" and bound in item:
            found[f"{key}.{bound}"] = ["Only for a number."]
    low, high = spec["min"], spec["max"]
    if low is not None and high is not None and Decimal(low) > Decimal(high):
        found[f"{key}.max"] = ["Must not be below min."]


def _name(value) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ValueError("Required: a-z, 0-9 and _, not starting with a digit, at most 40.")
    return value


def _label(value) -> str:
    if not isinstance(value, str):
        raise ValueError("Required: a string of 1 to 80 characters.")
    problem = text.one_line_problem(value)
    if problem:
        raise ValueError(problem)
    if not 1 <= len(value.strip()) <= MAX_LABEL:
        raise ValueError(f"Must have 1 to {MAX_LABEL} characters.")
    return value.strip()


def _type(value) -> str:
    if value not in TYPES:
        raise ValueError("Required: one of " + ", ".join(TYPES) + ".")
    return value


def _required(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError("Must be true or false.")
    return value


def _when(value) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or any(item not in DECISIONS for item in value)
        or len(set(value)) != len(value)
    ):
        raise ValueError("Must be a non-empty list of decisions: " + ", ".join(DECISIONS) + ".")
    return value


def _choices(value) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CHOICES:
        raise ValueError(f"Must be a list of 1 to {MAX_CHOICES} strings.")
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_CHOICE:
            raise ValueError(f"Each choice is a string of 1 to {MAX_CHOICE} characters.")
        problem = text.one_line_problem(item)
        if problem:
            raise ValueError(problem)
    if len(set(value)) != len(value):
        raise ValueError("Each choice once.")
    return value


def _number(value) -> str:
    """A decimal, from a JSON number or a string, as a decimal string."""
    return format(to_decimal(value), "f")


def to_decimal(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("Must be a number.")
    raw = str(value).strip()
    if isinstance(value, str) and not NUMBER_RE.fullmatch(raw):
        raise ValueError("Must be a decimal number such as 12.50.")
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise ValueError("Must be a decimal number such as 12.50.") from None
    if not number.is_finite() or len(number.as_tuple().digits) > MAX_DIGITS:
        raise ValueError(f"Must be a decimal number of at most {MAX_DIGITS} digits.")
    return number


def asked(specs: list[dict], outcome: str) -> list[dict]:
    """The inputs the decision `outcome` asks for, in the registration's order."""
    return [spec for spec in specs if outcome in spec["when"]]


def asks_required(specs: list[dict], outcome: str) -> list[dict]:
    """The inputs `outcome` needs a value for: what a bulk decision cannot give."""
    return [spec for spec in asked(specs, outcome) if spec["required"]]


def bulk_refusal(specs: list[dict], outcome: str) -> str | None:
    """Why a bulk decision cannot take `outcome` on a request with these inputs, or None: one
    decision for several requests cannot give each the values it needs."""
    needed = asks_required(specs, outcome)
    if not needed:
        return None
    labels = ", ".join(f"“{spec['label']}”" for spec in needed)
    return f"it asks for {labels} when deciding: decide it on its own page."


def clean(specs: list[dict], outcome: str, values: dict) -> dict:
    """The values for every input `outcome` asks for, as stored and sent; InvalidInputs keyed by
    input name otherwise. `values` holds a form's cleaned values or the API's JSON ones; a value
    for an input this decision does not ask for is refused."""
    wanted = asked(specs, outcome)
    names = {spec["name"] for spec in wanted}
    errors = {
        name: ["This decision asks for no such input."]
        for name in sorted(set(values) - names)
        if values[name] not in (None, "")
    }
    cleaned = {}
    for spec in wanted:
        try:
            cleaned[spec["name"]] = _value(spec, values.get(spec["name"]))
        except ValueError as problem:
            errors[spec["name"]] = [str(problem)]
    if errors:
        raise InvalidInputs(errors)
    return cleaned


def _value(spec: dict, value):
    kind = spec["type"]
    if kind == "boolean":
        # The form's checkbox gives a bool already; left out, a box is not ticked.
        if value is not None and not isinstance(value, bool):
            raise ValueError("Must be true or false.")
        if spec["required"] and not value:
            raise ValueError("Tick this box to decide.")
        return bool(value)
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        if spec["required"]:
            raise ValueError("This field is required.")
        return None
    return {"text": _text_value, "number": _number_value, "date": _date_value}.get(
        kind, _choice_value
    )(spec, value)


def _text_value(_spec, value) -> str:
    if not isinstance(value, str):
        raise ValueError("Must be a string.")
    problem = text.one_line_problem(value)
    if problem:
        raise ValueError(problem)
    if len(value) > MAX_TEXT:
        raise ValueError(f"At most {MAX_TEXT:,} characters.")
    return value


def _number_value(spec, value) -> str:
    number = to_decimal(value)
    if spec["min"] is not None and number < Decimal(spec["min"]):
        raise ValueError(f"Must be at least {spec['min']}.")
    if spec["max"] is not None and number > Decimal(spec["max"]):
        raise ValueError(f"Must be at most {spec['max']}.")
    return format(number, "f")


def _date_value(_spec, value) -> str:
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError("Must be a date such as 2030-06-30.") from None


def _choice_value(spec, value) -> str:
    if value not in spec["choices"]:
        raise ValueError("Must be one of: " + ", ".join(spec["choices"]) + ".")
    return value


def is_partial_approval(spec: dict, amount) -> bool:
    """A number whose `max` is the request's amount: how much of it is approved."""
    return (
        spec["type"] == "number"
        and spec["max"] is not None
        and amount is not None
        and Decimal(spec["max"]) == amount
    )
