"""The modal a Slack button opens when its decision needs a comment or inputs, and what the person
filled in, read back from `view.state.values` into what `deciding.decide` takes.

One input block per field: `comment` (required where `services.comment_problem` says), then
`input_<name>` for each input the decision asks for (`approvals.inputs.asked`), as the Block Kit
element of its type. `private_metadata` names the request, the outcome and the message clicked.
"""

import json

from approvals import inputs, services
from approvals.models import MAX_COMMENT
from approvals.notify import chat, slack_layout

CALLBACK_ID = "decide"
COMMENT = "comment"
SLACK_MAX_TEXT = 3000  # a plain_text_input's max_length, at most


def block_id(name: str) -> str:
    return f"input_{name}"


def view(approval, outcome: str, message: dict) -> dict:
    """The modal for deciding `approval` so; `message` (channel, ts) is updated afterwards."""
    label = chat.LABELS[outcome]
    blocks = [slack_layout.section(f"*{slack_layout.escaped(approval.title[:300])}*")]
    blocks.append(
        {
            "type": "input",
            "block_id": COMMENT,
            "optional": services.comment_problem(outcome, "") is None,
            "label": slack_layout.plain("Comment", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": COMMENT,
                "multiline": True,
                "max_length": min(MAX_COMMENT, SLACK_MAX_TEXT),
            },
        }
    )
    blocks += [_input_block(spec) for spec in inputs.asked(approval.inputs, outcome)]
    metadata = {"request": str(approval.pk), "outcome": outcome, **message}
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": slack_layout.plain(label, 24),
        "submit": slack_layout.plain(label, 24),
        "close": slack_layout.plain("Cancel", 24),
        "private_metadata": json.dumps(metadata),
        "blocks": blocks,
    }


def _input_block(spec: dict) -> dict:
    kind, name = spec["type"], spec["name"]
    element: dict = {"action_id": name}
    if kind == "text":
        element.update(type="plain_text_input", max_length=min(inputs.MAX_TEXT, SLACK_MAX_TEXT))
    elif kind == "number":
        element.update(type="number_input", is_decimal_allowed=True)
        element.update({f"{b}_value": spec[b] for b in ("min", "max") if spec[b] is not None})
    elif kind == "date":
        element["type"] = "datepicker"
    elif kind == "choice":
        # An option's value is its index: a choice may be longer than Slack's 150 characters.
        options = [
            {"text": slack_layout.plain(choice), "value": str(index)}
            for index, choice in enumerate(spec["choices"])
        ]
        element.update(type="static_select", options=options)
    else:
        element.update(
            type="checkboxes",
            options=[{"text": slack_layout.plain(spec["label"]), "value": "true"}],
        )
    return {
        "type": "input",
        "block_id": block_id(name),
        "optional": not spec["required"],
        "label": slack_layout.plain(spec["label"], 2000),
        "element": element,
    }


def metadata(view_payload: dict) -> dict | None:
    """The request, outcome and message the modal was opened for; None when it is not ours."""
    if view_payload.get("callback_id") != CALLBACK_ID:
        return None
    try:
        found = json.loads(view_payload.get("private_metadata") or "")
    except (TypeError, ValueError):
        return None
    if not isinstance(found, dict) or not all(
        isinstance(found.get(key), str) for key in ("request", "outcome")
    ):
        return None
    return found


def submitted(approval, outcome: str, state: dict) -> tuple[str, dict]:
    """The comment and the input values from a submitted modal's `view.state.values` (a value
    of the wrong shape is left out, for `inputs.clean` to name)."""
    comment = _entry(state, COMMENT).get("value") or ""
    values = {}
    for spec in inputs.asked(approval.inputs, outcome):
        entry = _entry(state, block_id(spec["name"]))
        values[spec["name"]] = _value(spec, entry)
    return (comment if isinstance(comment, str) else ""), values


def _entry(state: dict, block: str) -> dict:
    """The one element's state in `block` (Slack keys it by block, then action id)."""
    actions = state.get(block) if isinstance(state, dict) else None
    if not isinstance(actions, dict) or len(actions) != 1:
        return {}
    entry = next(iter(actions.values()))
    return entry if isinstance(entry, dict) else {}


def _value(spec: dict, entry: dict):
    kind = spec["type"]
    if kind == "date":
        return entry.get("selected_date")
    if kind == "boolean":
        chosen = entry.get("selected_options")
        return bool(chosen) if isinstance(chosen, list) else None
    if kind == "choice":
        option = entry.get("selected_option")
        index = option.get("value") if isinstance(option, dict) else None
        if isinstance(index, str) and index.isdigit() and int(index) < len(spec["choices"]):
            return spec["choices"][int(index)]
        return None
    return entry.get("value")


def errors(reply_errors: dict[str, list[str]]) -> dict[str, str]:
    """A Reply's errors by input name, as `response_action: errors` names them: by block."""
    return {
        COMMENT if name == COMMENT else block_id(name): " ".join(messages)[:300]
        for name, messages in reply_errors.items()
    }
