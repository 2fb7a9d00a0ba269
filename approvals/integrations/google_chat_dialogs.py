"""Reading Google Chat's click events, and the dialogs that ask for a comment and the inputs.

A click names its function and parameters (`Click.of`); a dialog holds a text input labelled
`Comment` and one widget per approver input the decision asks for (`approvals.inputs.asked`),
each with its errors above it when a submit was not valid. Its submit button calls `submit`
with the same parameters; what the person typed comes back in `common.formInputs` (`given`).
"""

import datetime
import html
import uuid
from dataclasses import dataclass

from approvals import inputs, permissions, services, text
from approvals.integrations import deciding
from approvals.models import ApprovalRequest
from approvals.notify.channels.google_chat import DECIDE
from approvals.notify.chat import LABELS

SUBMIT = "submit"  # the dialog's button
# What Chat says of a click: a card's button decides ("") or asks for its dialog; a dialog's
# button submits it; closing a dialog cancels it (nothing is decided then).
EXPECTED_DIALOG_TYPES = {
    DECIDE: {"", "REQUEST_DIALOG", "CANCEL_DIALOG"},
    SUBMIT: {"SUBMIT_DIALOG", "CANCEL_DIALOG"},
}
FUNCTIONS = set(EXPECTED_DIALOG_TYPES)
COMMENT = "comment"  # the comment's widget; an input's is "input-<name>" (no name holds "-")
MAX_FORM_INPUTS = 50
ERROR_COLOUR = "#d93025"
MAX_FIELD = 200  # a Chat resource name (`spaces/...`, `users/...`), as ChatAccount keeps it


class BadEvent(Exception):
    """The event is not one Chat would send: the message says what is wrong (a 400)."""


def field(event: dict, *path: str, required: bool = True, limit: int = MAX_FIELD) -> str:
    """The string at `path` in the event, one the database can keep; "" when absent and not
    `required`."""
    value = event
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None and not required:
        return ""
    where = ".".join(path)
    if not isinstance(value, str) or (required and not value):
        raise BadEvent(f"{where}: a string is required.")
    if len(value) > limit or text.storable_problem(value):
        raise BadEvent(f"{where}: at most {limit} characters, no NUL.")
    return value


@dataclass(frozen=True)
class Click:
    """Which button was clicked: its function, the request and outcome it names, and whether
    Chat asks for a dialog (`REQUEST_DIALOG`) or submits one (`SUBMIT_DIALOG`)."""

    function: str
    approval_id: uuid.UUID
    outcome: str
    dialog_type: str

    @classmethod
    def of(cls, event: dict) -> "Click":
        common = event.get("common") if isinstance(event.get("common"), dict) else {}
        function = common.get("invokedFunction") or field(event, "action", "actionMethodName")
        if function not in FUNCTIONS:
            raise BadEvent("common.invokedFunction: not a function of this app's cards.")
        parameters = common.get("parameters")
        if not isinstance(parameters, dict) or not all(
            isinstance(value, str) for value in parameters.values()
        ):
            raise BadEvent("common.parameters: an object of strings is required.")
        approval_id = deciding.request_id(parameters.get("approval"))
        if approval_id is None:
            raise BadEvent("common.parameters.approval: not a request's id.")
        outcome = parameters.get("outcome")
        if outcome not in LABELS:
            raise BadEvent("common.parameters.outcome: not a decision.")
        dialog_type = event.get("dialogEventType") if event.get("isDialogEvent") is True else ""
        if dialog_type not in EXPECTED_DIALOG_TYPES[function]:
            raise BadEvent(f"dialogEventType: not one a {function!r} button causes.")
        return cls(function, approval_id, outcome, dialog_type)

    @property
    def in_dialog(self) -> bool:
        return bool(self.dialog_type)


def said(click: Click, text: str) -> dict:
    """Tell the person `text`: in the dialog's status line, or as a message in their space."""
    if click.in_dialog:
        return status(text, "INVALID_ARGUMENT")
    return {"actionResponse": {"type": "NEW_MESSAGE"}, "text": text}


def status(text: str, code: str) -> dict:
    """Close the dialog (`OK`) or keep it open, showing `text` to the person."""
    return {
        "actionResponse": {
            "type": "DIALOG",
            "dialogAction": {"actionStatus": {"statusCode": code, "userFacingMessage": text}},
        }
    }


def opened(click: Click, person) -> dict:
    """The dialog for `click`, or why the person cannot decide (nothing to fill in then)."""
    approval = ApprovalRequest.objects.filter(pk=click.approval_id).first()
    if approval is None:
        return said(click, deciding.NO_SUCH_REQUEST)
    refusal = permissions.decider_capacity(person, approval).refusal or services.outcome_problem(
        approval, click.outcome
    )
    if refusal:
        return said(click, refusal)
    return dialog(approval, click.outcome)


def submitted(click: Click, reply: deciding.Reply, comment: str, values: dict) -> dict:
    """Close the dialog once decided; else show it again with the errors, or the refusal."""
    if reply.ok:
        return status(reply.text, "OK")
    approval = ApprovalRequest.objects.filter(pk=click.approval_id).first()
    if not reply.errors or approval is None:
        return said(click, reply.text)
    return dialog(approval, click.outcome, reply.errors, comment, values)


def dialog(approval, outcome: str, errors=None, comment: str = "", values=None) -> dict:
    """The dialog asking for the comment and the inputs of deciding `approval` so."""
    errors, values = errors or {}, values or {}
    widgets = [{"textParagraph": {"text": f"<b>{html.escape(approval.title)}</b>"}}]
    for spec in inputs.asked(approval.inputs, outcome):
        widgets += [*_errors(errors.get(spec["name"])), _input(spec, values.get(spec["name"]))]
    comment_box = {"name": COMMENT, "label": "Comment", "type": "MULTIPLE_LINE", "value": comment}
    widgets += [*_errors(errors.get(COMMENT)), {"textInput": comment_box}]
    parameters = [
        {"key": "approval", "value": str(approval.pk)},
        {"key": "outcome", "value": outcome},
    ]
    submit = {"text": LABELS[outcome], "onClick": {"action": {"function": SUBMIT}}}
    submit["onClick"]["action"]["parameters"] = parameters
    widgets.append({"buttonList": {"buttons": [submit]}})
    body = {"header": {"title": f"{LABELS[outcome]}: {approval.title}"[:200]}}
    body["sections"] = [{"widgets": widgets}]
    return {"actionResponse": {"type": "DIALOG", "dialogAction": {"dialog": {"body": body}}}}


def _errors(messages) -> list[dict]:
    return [
        {"textParagraph": {"text": f'<font color="{ERROR_COLOUR}">{html.escape(m)}</font>'}}
        for m in messages or []
    ]


def _input(spec: dict, value) -> dict:
    """The widget of one approver input, showing `value` (what was given before)."""
    name, label = (
        f"input-{spec['name']}",
        spec["label"] + ("" if spec["required"] else " (optional)"),
    )
    if spec["type"] == "boolean":
        item = {"text": spec["label"], "value": "true", "selected": value is True}
        return {
            "selectionInput": {"name": name, "label": label, "type": "CHECK_BOX", "items": [item]}
        }
    if spec["type"] == "choice":
        items = [{"text": c, "value": c, "selected": c == value} for c in spec["choices"]]
        return {
            "selectionInput": {"name": name, "label": label, "type": "DROPDOWN", "items": items}
        }
    if spec["type"] == "date":
        picker = {"name": name, "label": label, "type": "DATE_ONLY"}
        if isinstance(value, str) and len(value) == 10:
            day = datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.UTC)
            picker["valueMsEpoch"] = str(int(day.timestamp() * 1000))
        return {"dateTimePicker": picker}
    return {"textInput": {"name": name, "label": label, "value": "" if value is None else value}}


def given(click: Click, event: dict) -> tuple[str, dict]:
    """The comment and the inputs' values a dialog's submit carries, as `deciding.decide` takes
    them (`inputs.clean` checks the values)."""
    common = event.get("common") if isinstance(event.get("common"), dict) else {}
    form = common.get("formInputs", {})
    if not isinstance(form, dict) or len(form) > MAX_FORM_INPUTS:
        raise BadEvent("common.formInputs: an object of the dialog's inputs is required.")
    read = {name: _form_value(name, value) for name, value in form.items()}
    comment = read.get(COMMENT) or [""]
    if not isinstance(comment, list):
        raise BadEvent("common.formInputs.comment: text is required.")
    approval = ApprovalRequest.objects.filter(pk=click.approval_id).first()
    specs = inputs.asked(approval.inputs, click.outcome) if approval else []
    return comment[0], {
        spec["name"]: _value(spec, read.get(f"input-{spec['name']}")) for spec in specs
    }


def _form_value(name: str, value):
    """One form input: the list of strings typed or chosen, or a date."""
    where = f"common.formInputs.{name}"
    if not isinstance(value, dict):
        raise BadEvent(f"{where}: an object is required.")
    if "dateInput" in value:
        ms = (
            value["dateInput"].get("msSinceEpoch") if isinstance(value["dateInput"], dict) else None
        )
        try:
            return datetime.datetime.fromtimestamp(int(ms) / 1000, datetime.UTC).date()
        except (TypeError, ValueError, OverflowError, OSError):
            raise BadEvent(f"{where}.dateInput.msSinceEpoch: a time is required.") from None
    strings = value.get("stringInputs")
    strings = strings.get("value") if isinstance(strings, dict) else None
    if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
        raise BadEvent(f"{where}.stringInputs.value: a list of strings is required.")
    return strings


def _value(spec: dict, read):
    """An input's value from its form input, in the shape `inputs.clean` takes."""
    if spec["type"] == "boolean":
        return isinstance(read, list) and "true" in read
    if isinstance(read, datetime.date):
        return read.isoformat() if spec["type"] == "date" else str(read)
    if spec["type"] == "date" and read:
        return str(read[0])  # typed as text somehow: `inputs.clean` names what is wrong
    return read[0] if read else None
