"""Forms of the manager's pages."""

import uuid

from django import forms

from approvals import inputs, permissions, services, text
from approvals.identity import tokens
from approvals.models import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    MAX_COMMENT,
    MAX_EMAIL,
    MAX_NOTE,
    Outcome,
    Status,
)
from approvals.templatetags.approvals_display import money
from approvals.web import inbox


def characters(problem):
    """A form validator for one of `approvals.text`'s rules (one line, or free text)."""

    def validate(value):
        found = problem(value)
        if found:
            raise forms.ValidationError(found)

    return validate


class DecisionForm(forms.Form):
    """Approve, reject or send back, with a comment that a rejection or a send back requires
    (whether this request may be sent back is `services.outcome_problem`'s to say), and the
    request's inputs.

    The inputs become fields named `input_<name>`; only those the chosen decision asks for are
    read, checked by `approvals.inputs.clean`, and kept in `values` (what the decision stores).
    """

    outcome = forms.ChoiceField(choices=Outcome.choices)
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=MAX_COMMENT,
        validators=[characters(text.multi_line_problem)],
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Required when you reject or send back; the workflow receives it.",
    )

    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, approval=None, only=None, **kwargs):
        """`only`: the one decision the form can take (the e-mail's link), whose inputs alone
        it shows."""
        super().__init__(*args, **kwargs)
        self.specs = approval.inputs if approval is not None else []
        if only is not None:
            self.specs = inputs.asked(self.specs, only)
        self.values: dict = {}
        for spec in self.specs:
            self.fields[INPUT_PREFIX + spec["name"]] = input_field(spec, approval)

    def clean(self):
        cleaned = super().clean()
        comment = cleaned.get("comment", "")
        outcome = cleaned.get("outcome")
        problem = services.comment_problem(outcome, comment)
        if problem:
            self.add_error("comment", problem)
        if outcome:
            self._clean_inputs(cleaned, outcome)
        return cleaned

    def _clean_inputs(self, cleaned: dict, outcome: str) -> None:
        given = {
            spec["name"]: cleaned.get(INPUT_PREFIX + spec["name"])
            for spec in inputs.asked(self.specs, outcome)
        }
        try:
            self.values = inputs.clean(self.specs, outcome, given)
        except inputs.InvalidInputs as invalid:
            for name, problems in invalid.errors.items():
                if INPUT_PREFIX + name not in self.errors:  # a field's own check said why
                    self.add_error(INPUT_PREFIX + name, problems)

    def input_fields(self) -> list:
        """The inputs' bound fields, each with `spec` (what the template says of it)."""
        shown = []
        for spec in self.specs:
            bound = self[INPUT_PREFIX + spec["name"]]
            bound.spec = spec
            bound.asked_for = ", ".join(ASKED_WORDS.get(w, w) for w in spec["when"])
            shown.append(bound)
        return shown

    def given(self) -> list[tuple[str, str, str, object]]:
        """What the confirmation shows and carries: (label, value in words, field, raw value)."""
        rows = []
        for spec in self.specs:
            if spec["name"] not in self.values:
                continue
            value = self.values[spec["name"]]
            # Values are strings, booleans or None (`inputs.clean`).
            words = (
                value if isinstance(value, str) else {True: "Yes", False: "No", None: "—"}[value]
            )
            raw = "on" if value is True else ("" if value in (None, False) else value)
            rows.append((self.fields[INPUT_PREFIX + spec["name"]].label, words, spec["name"], raw))
        return rows


INPUT_PREFIX = "input_"
ASKED_WORDS = {"approved": "approve", "rejected": "reject", "changes_requested": "send back"}


def input_field(spec: dict, approval) -> forms.Field:
    """The form field for one input: its widget by type; its checks are `inputs.clean`'s."""
    label = spec["label"]
    if inputs.is_partial_approval(spec, approval.amount):
        # The partial-approval case: the most that may be approved is what was asked.
        label = f"{label} (of {money(approval.amount)} {approval.currency} asked)"
    kind = spec["type"]
    if kind == "boolean":
        return forms.BooleanField(label=label, required=False)
    if kind == "choice":
        choices = [("", "—"), *((choice, choice) for choice in spec["choices"])]
        return forms.ChoiceField(label=label, required=False, choices=choices)
    attrs = {"type": "date"} if kind == "date" else {}
    if kind == "number":
        attrs = {"type": "number", "step": "any"}
        attrs.update({k: spec[k] for k in ("min", "max") if spec[k] is not None})
    return forms.CharField(
        label=label, required=False, strip=False, widget=forms.TextInput(attrs=attrs)
    )


class ReassignForm(forms.Form):
    """Hand a request to another approver: their e-mail and an optional note. Whether it may go
    to them is `services.reassign`'s to say (under the row lock), at the `to` field."""

    to = forms.CharField(
        label="Reassign to",
        max_length=MAX_EMAIL,
        validators=[characters(text.one_line_problem)],
        # Plain text, not type=email: the browser's check refuses addresses the app accepts
        # (quoted local parts, non-ASCII domains: `approvals.emails`).
        widget=forms.TextInput(attrs={"autocomplete": "email", "inputmode": "email"}),
        help_text="The e-mail of an approver who decides it in your place.",
        error_messages={"required": "Enter the e-mail address of the person to hand it to."},
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=MAX_NOTE,
        validators=[characters(text.one_line_problem)],
        help_text="Optional, for them and the history: why you hand it on.",
    )


class InboxForm(forms.Form):
    """The inbox's tab, search, filters, sort and page, from the query string."""

    tab = forms.ChoiceField(choices=list(inbox.TABS.items()), required=False)
    q = forms.CharField(label="Search", required=False, max_length=200)
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *Status.choices]
    )
    requester = forms.EmailField(label="Requester", required=False)
    amount_min = forms.DecimalField(
        label="Amount from",
        required=False,
        min_value=0,
        max_digits=AMOUNT_MAX_DIGITS,
        decimal_places=AMOUNT_DECIMAL_PLACES,
    )
    amount_max = forms.DecimalField(
        label="Amount to",
        required=False,
        min_value=0,
        max_digits=AMOUNT_MAX_DIGITS,
        decimal_places=AMOUNT_DECIMAL_PLACES,
    )
    expiring = forms.BooleanField(label="Expiring within a day", required=False)
    sort = forms.ChoiceField(
        label="Sort",
        required=False,
        choices=[(key, label) for key, (label, _order) in inbox.SORTS.items()],
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("amount_min"), cleaned.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", "Must not be below “Amount from”.")
        return cleaned

    def filters(self) -> inbox.Filters:
        data = self.cleaned_data if self.is_valid() else {}
        return inbox.Filters(
            query=data.get("q") or "",
            status=data.get("status") or "",
            requester=data.get("requester") or "",
            amount_min=data.get("amount_min"),
            amount_max=data.get("amount_max"),
            expiring=bool(data.get("expiring")),
            sort=data.get("sort") or "oldest",
        )


# Bulk decisions approve or reject: a send back says what to change in each request on its own.
BULK_OUTCOMES = [(Outcome.APPROVED, "Approve"), (Outcome.REJECTED, "Reject")]


class BulkDecisionForm(forms.Form):
    """Several waiting requests decided at once, each on its own."""

    outcome = forms.ChoiceField(choices=BULK_OUTCOMES)
    selected = forms.TypedMultipleChoiceField(coerce=uuid.UUID, choices=[], required=True)
    comment = forms.CharField(
        label="Comment for all selected",
        required=False,
        max_length=MAX_COMMENT,
        validators=[characters(text.multi_line_problem)],
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any well-formed id is accepted here; what may be decided is the service's to say.
        self.fields["selected"].valid_value = lambda value: True
        self.fields["selected"].error_messages["required"] = "Select at least one request."

    def clean(self):
        cleaned = super().clean()
        comment = cleaned.get("comment", "")
        problem = services.comment_problem(cleaned.get("outcome"), comment, several=True)
        if problem:
            self.add_error("comment", problem)
        return cleaned


class DateTimeLocalInput(forms.DateTimeInput):
    """The browser's date-and-time picker; its value has no zone, so it is read in the project's
    TIME_ZONE (Django's current time zone), which the page names."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%dT%H:%M")


class DelegationForm(forms.Form):
    """Name a delegate for a period ("out of office").

    It reads the inputs and finds the account behind the e-mail; whether that person may stand
    in, and whether the period is acceptable, is `services.delegate`'s to say.
    """

    delegate = forms.EmailField(
        label="Delegate's e-mail",
        max_length=MAX_EMAIL,
        help_text="An approver who decides for you while you are away.",
        error_messages={"required": "Give the e-mail of the person who stands in for you."},
    )
    starts_at = forms.DateTimeField(
        label="From",
        required=False,
        widget=DateTimeLocalInput(),
        help_text="Empty or past: from now.",
        error_messages={"invalid": "Enter a date and time, such as 2030-06-30 17:00."},
    )
    ends_at = forms.DateTimeField(
        label="Until",
        widget=DateTimeLocalInput(),
        help_text="At most a year from now.",
        error_messages={
            "required": "Say when the delegation ends.",
            "invalid": "Enter a date and time, such as 2030-06-30 17:00.",
        },
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=MAX_NOTE,
        validators=[characters(text.one_line_problem)],
        help_text="Optional, for your delegate: why, or what to watch for.",
    )

    def clean_delegate(self):
        """The active account with this e-mail (the same mailbox, `approvals.emails`)."""
        accounts = permissions.accounts_with_email(self.cleaned_data["delegate"])
        if not accounts:
            raise forms.ValidationError("Nobody with an active account uses this e-mail address.")
        approvers = [account for account in accounts if permissions.may_approve_at_all(account)]
        if len(approvers) > 1:
            raise forms.ValidationError(
                "Several accounts use this e-mail address; ask an administrator."
            )
        # A non-approver is passed on, so that the service says why they cannot stand in.
        return approvers[0] if approvers else accounts[0]


class PersonalTokenForm(forms.Form):
    """Name a new personal access token and choose its lifetime; `identity.tokens.issue` has the
    last word on both."""

    name = forms.CharField(
        label="Name",
        max_length=tokens.MAX_NAME,
        validators=[characters(text.one_line_problem)],
        help_text="What it is for, such as “expense bot”: the list shows it.",
        error_messages={"required": "Give the token a name, to know it again in the list."},
    )
    days = forms.TypedChoiceField(
        label="Expires after",
        coerce=int,
        choices=[(7, "7 days"), (30, "30 days"), (90, "90 days"), (366, "1 year")],
        initial=tokens.DEFAULT_DAYS,
    )
