"""What the Slack stand-in checks of Block Kit JSON before it takes a message or a modal, as Slack
does: the block and element types, the text objects, the lengths Slack enforces, the ids.

`block_problems()` and `view_problems()` answer Slack's way of naming a problem,
`"<what> [json-pointer:/blocks/0/text]"`, an empty list when all is well. `with_ids()` fills in the
`block_id` and `action_id` Slack generates when the app leaves them out.
`input_state()` is the other half: a modal's `view.state.values` as Slack reports them.
"""

import itertools

BLOCK_TYPES = {"section", "actions", "context", "divider", "header", "input", "image", "rich_text"}
BUTTON_STYLES = {"primary", "danger"}
OPTION_INPUTS = {"static_select", "radio_buttons", "checkboxes"}
TEXT_INPUTS = {"plain_text_input", "number_input", "email_text_input", "url_text_input"}
INPUT_ELEMENTS = TEXT_INPUTS | OPTION_INPUTS | {"datepicker"}
# Per https://docs.slack.dev/reference/block-kit: a button's text 75, action and block ids 255,
# a button's value 2,000, a section's text 3,000, a modal's title 24, private_metadata 3,000.
LIMITS = {"button": 75, "id": 255, "value": 2000, "section": 3000, "title": 24, "metadata": 3000}

_generated = itertools.count(1)


def _text_problem(text, where: str, *, plain: bool = False, limit: int | None = None):
    if not isinstance(text, dict) or text.get("type") not in {"plain_text", "mrkdwn"}:
        return f"must be a text object [json-pointer:{where}]"
    if plain and text["type"] != "plain_text":
        return f"must be plain_text [json-pointer:{where}/type]"
    if not isinstance(text.get("text"), str) or not text["text"]:
        return f"must be a non-empty string [json-pointer:{where}/text]"
    if limit and len(text["text"]) > limit:
        return f"must be less than {limit + 1} characters [json-pointer:{where}/text]"
    return None


def _options_problems(element: dict, where: str) -> list[str]:
    options = element.get("options")
    if not isinstance(options, list) or not options:
        return [f"must provide options [json-pointer:{where}/options]"]
    problems = []
    for index, option in enumerate(options):
        place = f"{where}/options/{index}"
        if not isinstance(option, dict) or not isinstance(option.get("value"), str):
            problems.append(f"must have a string value [json-pointer:{place}]")
        else:
            problems.append(_text_problem(option.get("text"), f"{place}/text", limit=75))
    return problems


def _element_problems(element, where: str, allowed: set[str]) -> list[str]:
    """A button (with its optional confirmation dialog) or an input element."""
    if not isinstance(element, dict) or element.get("type") not in allowed:
        return [f"unsupported element type [json-pointer:{where}/type]"]
    action_id = element.get("action_id", "")
    problems = []
    if not isinstance(action_id, str) or len(action_id) > LIMITS["id"]:
        problems.append(
            f"must be a string of at most 255 characters [json-pointer:{where}/action_id]"
        )
    if element["type"] == "button":
        problems.append(_text_problem(element.get("text"), f"{where}/text", plain=True, limit=75))
        if len(str(element.get("value", ""))) > LIMITS["value"]:
            problems.append(f"must be less than 2001 characters [json-pointer:{where}/value]")
        if element.get("style", "primary") not in BUTTON_STYLES:
            problems.append(f"must be primary or danger [json-pointer:{where}/style]")
        if "confirm" in element:
            confirm = element["confirm"] if isinstance(element["confirm"], dict) else {}
            for part in ("title", "text", "confirm", "deny"):
                plain = part != "text"
                text = confirm.get(part)
                problems.append(_text_problem(text, f"{where}/confirm/{part}", plain=plain))
    elif element["type"] in OPTION_INPUTS:
        problems += _options_problems(element, where)
    return [problem for problem in problems if problem]


def _block_problems(block, where: str, inputs_allowed: bool) -> list[str]:
    kinds = BLOCK_TYPES if inputs_allowed else BLOCK_TYPES - {"input"}
    if not isinstance(block, dict) or block.get("type") not in kinds:
        return [f"unsupported block type [json-pointer:{where}/type]"]
    kind, problems = block["type"], []
    if kind == "section":
        if "text" not in block and "fields" not in block:
            problems.append(f"must provide text or fields [json-pointer:{where}]")
        if "text" in block:
            problems.append(_text_problem(block["text"], f"{where}/text", limit=LIMITS["section"]))
        if "accessory" in block:
            problems += _element_problems(block["accessory"], f"{where}/accessory", {"button"})
    elif kind == "header":
        problems.append(_text_problem(block.get("text"), f"{where}/text", plain=True, limit=150))
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            return [f"must have 1 to 25 elements [json-pointer:{where}/elements]"]
        for index, element in enumerate(elements):
            problems += _element_problems(element, f"{where}/elements/{index}", {"button"})
    elif kind == "input":
        problems.append(_text_problem(block.get("label"), f"{where}/label", plain=True, limit=2000))
        problems += _element_problems(block.get("element"), f"{where}/element", INPUT_ELEMENTS)
    return [problem for problem in problems if problem]


def block_problems(blocks, where: str = "/blocks", inputs_allowed: bool = False) -> list[str]:
    """What Slack would refuse in a message's (or, with `inputs_allowed`, a modal's) blocks."""
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{where}]"]
    if len(blocks) > (100 if inputs_allowed else 50):
        return [f"too many blocks [json-pointer:{where}]"]
    problems, block_ids = [], set()
    for index, block in enumerate(blocks):
        problems += _block_problems(block, f"{where}/{index}", inputs_allowed)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if block_id is not None and (block_id in block_ids or len(str(block_id)) > LIMITS["id"]):
            problems.append(f"duplicate or too long block_id [json-pointer:{where}/{index}]")
        block_ids.add(block_id)
    return problems


def view_problems(view) -> list[str]:
    """What Slack would refuse in a modal given to views.open or views.update."""
    if not isinstance(view, dict) or view.get("type") != "modal":
        return ["must be a modal [json-pointer:/view/type]"]
    problems = [_text_problem(view.get("title"), "/view/title", plain=True, limit=LIMITS["title"])]
    blocks = view.get("blocks")
    problems += block_problems(blocks, "/view/blocks", inputs_allowed=True)
    has_inputs = isinstance(blocks, list) and any(
        isinstance(block, dict) and block.get("type") == "input" for block in blocks
    )
    if has_inputs or "submit" in view:
        problems.append(_text_problem(view.get("submit"), "/view/submit", plain=True, limit=24))
    if "close" in view:
        problems.append(_text_problem(view["close"], "/view/close", plain=True, limit=24))
    if len(str(view.get("private_metadata", ""))) > LIMITS["metadata"]:
        problems.append("must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > LIMITS["id"]:
        problems.append("must be less than 256 characters [json-pointer:/view/callback_id]")
    return [problem for problem in problems if problem]


def with_ids(blocks: list[dict]) -> list[dict]:
    """The blocks as Slack stores them: every block with a block_id, every element an action_id."""

    def generated() -> str:
        return f"gen{next(_generated):05d}"

    stored = []
    for block in blocks:
        block = {**block, "block_id": block.get("block_id") or generated()}
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                block[key] = {**block[key], "action_id": block[key].get("action_id") or generated()}
        if isinstance(block.get("elements"), list) and block["type"] == "actions":
            block["elements"] = [
                {**element, "action_id": element.get("action_id") or generated()}
                for element in block["elements"]
            ]
        stored.append(block)
    return stored


def _input_value(element: dict, given):
    """One input's entry in `view.state.values`, shaped by its element type as Slack shapes it."""
    kind = element["type"]
    if kind in TEXT_INPUTS:
        return {"type": kind, "value": given}
    if kind == "datepicker":
        return {"type": kind, "selected_date": given}
    by_value = {option["value"]: option for option in element["options"]}
    wanted = given if isinstance(given, list) else ([] if given is None else [given])
    unknown = [value for value in wanted if value not in by_value]
    if unknown:
        raise ValueError(f"no option {unknown} in {element['action_id']}: a person cannot pick it")
    chosen = [by_value[value] for value in wanted]
    if kind == "checkboxes":
        return {"type": kind, "selected_options": chosen}
    return {"type": kind, "selected_option": chosen[0] if chosen else None}


def input_state(blocks: list[dict], values: dict) -> dict:
    """`view.state.values` for a modal whose inputs a person filled in with `values` (by block_id;
    inputs left out are reported empty, as Slack does)."""
    inputs = {block["block_id"]: block for block in blocks if block["type"] == "input"}
    unknown = set(values) - set(inputs)
    if unknown:
        raise ValueError(f"the modal has no input block {sorted(unknown)}: a person cannot fill it")
    return {
        block_id: {
            block["element"]["action_id"]: _input_value(block["element"], values.get(block_id))
        }
        for block_id, block in inputs.items()
    }
