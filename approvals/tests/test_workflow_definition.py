"""The deployable workflow (contract: "Workflow definitions") keeps its side of the contract.

Cloud Workflows is not available here, so these tests read workflows/expense_approval.yaml as
data and check what must stay true: it registers with the API the way the API authenticates and
validates callers, it waits on a POST callback with a timeout and cancels on timeout, and it
branches on the decision the app sends. Each test fails if the definition loses that property.
"""

import re
from pathlib import Path

import pytest
import yaml

from approvals import registration

WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "expense_approval.yaml"
EXPRESSION = re.compile(r"^\$\{(?P<body>.*)\}$", re.DOTALL)
CALLBACK_URL = (
    "https://workflowexecutions.googleapis.com/v1/projects/demo-project/locations/europe-west1"
    "/workflows/expense-approval/executions/0f1e2d3c-aaaa-bbbb-cccc-123456789abc/callbacks/cb-1"
)


@pytest.fixture(scope="module")
def definition():
    with WORKFLOW.open(encoding="utf-8") as source:
        return yaml.safe_load(source)


def expression(value) -> str:
    """The inside of a `${...}` expression; fails when `value` is not one."""
    assert isinstance(value, str), f"expected a ${{...}} expression, got {value!r}"
    match = EXPRESSION.match(value)
    assert match, f"expected a ${{...}} expression, got {value!r}"
    return match["body"].strip()


def step_lists(node):
    """Every list of steps in the definition: main's, and those nested in try/except/switch."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "steps" and isinstance(value, list):
                yield value
            yield from step_lists(value)
    elif isinstance(node, list):
        for item in node:
            yield from step_lists(item)


def all_steps(definition):
    """(name, body) of every step, at any depth, including the single steps inside `try:`."""
    found = []

    def visit(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "steps" and isinstance(value, list):
                    for step in value:
                        [(name, body)] = step.items()
                        found.append((name, body))
                elif key == "try" and isinstance(value, dict) and "call" in value:
                    found.append(("<try>", value))
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(definition)
    return found


def calls(definition, function):
    return [body for _, body in all_steps(definition) if body.get("call") == function]


def assignments(definition) -> dict[str, str]:
    assigned = {}
    for _, body in all_steps(definition):
        for item in body.get("assign", []):
            assigned.update(item)
    return assigned


def strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def find_try_step(definition, function):
    """The step whose `try:` makes the single call `function`, with its retry/except."""
    matches = [
        body
        for _, body in all_steps(definition)
        if isinstance(body.get("try"), dict) and body["try"].get("call") == function
    ]
    assert len(matches) == 1, f"expected one try-step calling {function}, found {len(matches)}"
    return matches[0]


def registration_call(definition):
    posts = [
        body
        for body in calls(definition, "http.post")
        if expression(body["args"]["url"]).endswith('"/api/approvals"')
    ]
    assert len(posts) == 1, "expected exactly one POST to .../api/approvals"
    return posts[0]


def derives_from_approver_url(definition, variable: str) -> bool:
    """Whether `variable` is computed from sys.get_env("APPROVER_URL"), directly or not."""
    assigned = assignments(definition)
    seen = set()
    pending = [variable]
    while pending:
        name = pending.pop()
        if name in seen or name not in assigned:
            continue
        seen.add(name)
        value = expression(assigned[name])
        if 'sys.get_env("APPROVER_URL")' in value:
            return True
        pending.extend(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", value))
    return False


def raises(steps) -> list:
    """What the steps raise, in step bodies and in switch cases."""
    found = []
    for _, body in all_steps({"steps": steps}):
        found.extend(item["raise"] for item in [body, *body.get("switch", [])] if "raise" in item)
    return found


def await_step(definition):
    return find_try_step(definition, "events.await_callback")


def except_steps(step) -> list:
    handler = step.get("except")
    assert handler, "expected an except branch"
    return handler["steps"]


# --- The definition as a whole ------------------------------------------------------------------


def test_definition_has_a_main_workflow_taking_the_report(definition):
    assert definition["main"]["params"] == ["args"]
    assert definition["main"]["steps"], "main has no steps"


def test_every_step_is_a_single_named_step_and_every_jump_lands(definition):
    for steps in step_lists(definition):
        names = set()
        for step in steps:
            assert isinstance(step, dict) and len(step) == 1, f"malformed step: {step!r}"
            names.update(step)
        for step in steps:
            [body] = step.values()
            targets = [body.get("next")] + [c.get("next") for c in body.get("switch", [])]
            for target in filter(None, targets):
                assert target in names | {"end", "continue", "break"}, f"no step {target!r}"


def test_every_expression_is_whole(definition):
    """A `${` that YAML split or cut short (an unquoted ': ' inside, say) breaks the deploy."""
    for value in strings(definition):
        if "${" in value:
            body = expression(value)
            assert body.count("(") == body.count(")"), value
            assert body.count("[") == body.count("]"), value
            assert body.count('"') % 2 == 0, value


# --- Registration -------------------------------------------------------------------------------


def test_approver_url_comes_from_the_user_defined_environment_variable(definition):
    url = expression(registration_call(definition)["args"]["url"])
    base = url.removesuffix('+ "/api/approvals"').strip()
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", base), f"unexpected registration URL: {url}"
    assert derives_from_approver_url(definition, base)


def test_registration_authenticates_with_an_oidc_token_for_an_explicit_audience(definition):
    post = registration_call(definition)
    auth = post["args"]["auth"]
    assert auth["type"] == "OIDC"
    # Workflows' default audience is the called URL (.../api/approvals); the app expects its own
    # base URL (APPROVALS_OIDC_AUDIENCE), so the audience must be named.
    audience = expression(auth["audience"])
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", audience), audience
    assert derives_from_approver_url(definition, audience)
    assert expression(post["args"]["url"]) == f'{audience} + "/api/approvals"'


def test_registration_is_retried_since_it_is_idempotent(definition):
    post = registration_call(definition)
    [step] = [body for _, body in all_steps(definition) if body.get("try") is post]
    assert expression(step["retry"]) == "http.default_retry"


def test_registration_body_has_only_fields_the_api_accepts(definition):
    body = registration_call(definition)["args"]["body"]
    assert set(body) <= registration.FIELDS, set(body) - registration.FIELDS
    assert {"callback_url", "title", "requester_email"} <= set(body)


def test_registration_sends_the_callback_endpoint_url(definition):
    [endpoint] = calls(definition, "events.create_callback_endpoint")
    body = registration_call(definition)["args"]["body"]
    assert expression(body["callback_url"]) == f"{endpoint['result']}.url"


def test_report_fields_are_read_with_map_get_so_missing_ones_are_sent_as_null(definition):
    body = registration_call(definition)["args"]["body"]
    for field in set(body) - {"callback_url", "timeout_seconds"}:
        assert expression(body[field]) == f'map.get(args, "{field}")', field
    timeout = assignments(definition)[expression(body["timeout_seconds"])]
    assert expression(timeout) == 'default(map.get(args, "timeout_seconds"), 86400)'


def rendered_body(definition, report: dict) -> dict:
    """The registration body the workflow would send for `report` (the expression forms used)."""
    [endpoint] = calls(definition, "events.create_callback_endpoint")
    values = {}
    for field, value in registration_call(definition)["args"]["body"].items():
        inner = expression(value)
        if inner == f"{endpoint['result']}.url":
            values[field] = CALLBACK_URL
        elif match := re.fullmatch(r'map\.get\(args, "(\w+)"\)', inner):
            values[field] = report.get(match[1])
        elif inner == "timeout_seconds":
            values[field] = report.get("timeout_seconds", 86400)
        else:
            pytest.fail(f"teach rendered_body the expression for {field}: {inner}")
    return values


@pytest.mark.parametrize(
    "report",
    [
        {"title": "Trip to Lyon", "requester_email": "ann@example.com"},
        {
            "title": "Trip to Lyon",
            "requester_email": "ann@example.com",
            "amount": "412.50",
            "currency": "EUR",
            "description": "Train and two nights.",
            "details": {"lines": [{"what": "train", "amount": "112.50"}]},
            "assignees": ["boss@example.com"],
            "external_id": "EXP-1042",
            "timeout_seconds": 3600,
        },
    ],
    ids=["minimal", "complete"],
)
def test_the_api_accepts_the_body_the_workflow_sends(definition, report, settings):
    settings.APPROVALS_CALLBACK_URL_PREFIXES = ["https://workflowexecutions.googleapis.com/v1/"]
    parsed = registration.parse(rendered_body(definition, report))
    assert parsed.callback_url == CALLBACK_URL
    assert parsed.external_id == report.get("external_id", "")


# --- Waiting for the decision -------------------------------------------------------------------


def test_callback_endpoint_expects_a_post(definition):
    [endpoint] = calls(definition, "events.create_callback_endpoint")
    assert endpoint["args"]["http_callback_method"] == "POST"


def test_callback_url_is_logged(definition):
    [endpoint] = calls(definition, "events.create_callback_endpoint")
    logged = [
        expression(body["args"][key])
        for body in calls(definition, "sys.log")
        for key in ("text", "data", "json")
        if key in body["args"]
    ]
    assert any(f"{endpoint['result']}.url" in value for value in logged)


def test_await_callback_waits_on_the_endpoint_with_a_timeout(definition):
    [endpoint] = calls(definition, "events.create_callback_endpoint")
    wait = await_step(definition)["try"]
    assert expression(wait["args"]["callback"]) == endpoint["result"]
    timeout = wait["args"].get("timeout")
    assert timeout is not None, "without a timeout the wait defaults to 12 hours"
    assert expression(timeout) == expression(
        registration_call(definition)["args"]["body"]["timeout_seconds"]
    ), "the workflow must wait as long as the app keeps the request open"


def test_timeout_cancels_the_request_and_other_errors_are_reraised(definition):
    step = await_step(definition)
    error = step["except"]["as"]
    handler = except_steps(step)
    conditions = [
        expression(case["condition"])
        for _, body in all_steps({"steps": handler})
        for case in body.get("switch", [])
    ]
    assert any(f'"TimeoutError" in {error}.tags' in c for c in conditions), conditions
    assert f"${{{error}}}" in raises(handler), "errors other than a timeout must be re-raised"

    cancels = [
        body
        for body in calls({"steps": handler}, "http.post")
        if "/cancel" in expression(body["args"]["url"])
    ]
    assert len(cancels) == 1, "the except branch must POST to /api/approvals/<id>/cancel"
    cancel = cancels[0]["args"]
    registered = registration_call(definition)["result"]
    assert expression(cancel["url"]).endswith(
        f'+ "/api/approvals/" + {registered}.body.id + "/cancel"'
    )
    assert cancel["auth"]["type"] == "OIDC"
    assert cancel["auth"]["audience"] == registration_call(definition)["args"]["auth"]["audience"]


def test_a_late_decision_on_cancel_does_not_crash_the_execution(definition):
    handler = except_steps(await_step(definition))
    cancel_step = find_try_step({"steps": handler}, "http.post")
    error = cancel_step["except"]["as"]
    late = except_steps(cancel_step)
    conditions = [
        expression(case["condition"])
        for _, body in all_steps({"steps": late})
        for case in body.get("switch", [])
    ]
    assert any(re.search(rf"{error}\.code\s*(!=|==)\s*409", c) for c in conditions), conditions
    returned = [body["return"] for _, body in all_steps({"steps": handler}) if "return" in body]
    outcomes = {result.get("outcome") for result in returned}
    assert {"timed_out", "decided_too_late"} <= outcomes, outcomes


# --- The decision -------------------------------------------------------------------------------


def decision_switch(definition):
    received = await_step(definition)["try"]["result"]
    decision = f"{received}.http_request.body.decision"
    switches = [
        body["switch"]
        for _, body in all_steps(definition)
        if any(decision in expression(case["condition"]) for case in body.get("switch", []))
    ]
    assert len(switches) == 1, f"expected one switch on {decision}"
    return decision, switches[0]


def test_branches_on_the_decision_the_app_sends(definition):
    decision, cases = decision_switch(definition)
    conditions = {expression(case["condition"]) for case in cases}
    assert f'{decision} == "approved"' in conditions
    assert f'{decision} == "rejected"' in conditions


def test_each_branch_returns_its_outcome_with_the_decider_and_comment(definition):
    _, cases = decision_switch(definition)
    steps = dict(next(iter(step.items())) for step in definition["main"]["steps"])
    received = await_step(definition)["try"]["result"]
    for case in cases:
        outcome = re.search(r'== "(\w+)"', expression(case["condition"]))[1]
        result = steps[case["next"]]["return"]
        assert result["outcome"] == outcome
        for field in ("decided_by", "comment"):
            assert f"{received}.http_request.body" in expression(result[field])
            assert f'"{field}"' in expression(result[field])
