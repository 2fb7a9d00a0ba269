"""The deployable workflows (contract: "Workflow definitions") keep their side of the contract.

Cloud Workflows is not available here, so these tests read workflows/expense_approval.yaml and
workflows/expense_approval_two_level.yaml as data and check what must stay true: each registers
with the API the way the API authenticates and validates callers, waits on a POST callback with a
timeout and cancels on timeout, and branches on the decision the app sends. Each test fails if a
definition loses that property. Some tests also run a definition through `execute` below, a small
interpreter of the Workflows subset the definitions use, against stand-ins for Approver and the
callback: the two-level workflow's policy is logic, not a shape.
"""

import json
import re
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from django.contrib.auth.models import Group
from django.utils import timezone

from approvals import delivery, registration, services, wire
from approvals.models import ApprovalRequest, Status
from approvals.tests.conftest import API_TOKEN, INVOKER

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
ONE_LEVEL = WORKFLOWS / "expense_approval.yaml"
TWO_LEVEL = WORKFLOWS / "expense_approval_two_level.yaml"
DEFAULT_TIMEOUT = {ONE_LEVEL.name: 86400, TWO_LEVEL.name: 604800}
# Registration fields the two-level workflow computes (its policy), not copied from the report.
POLICY_FIELDS = {"required_approvals", "escalate_to", "escalate_after_seconds"}
EXPRESSION = re.compile(r"^\$\{(?P<body>.*)\}$", re.DOTALL)
CALLBACK_URL = (
    "https://workflowexecutions.googleapis.com/v1/projects/demo-project/locations/europe-west1"
    "/workflows/expense-approval/executions/0f1e2d3c-aaaa-bbbb-cccc-123456789abc/callbacks/cb-1"
)


def load(path: Path) -> dict:
    with path.open(encoding="utf-8") as source:
        return yaml.safe_load(source)


@pytest.fixture(scope="module", params=[ONE_LEVEL, TWO_LEVEL], ids=lambda path: path.stem)
def workflow_file(request) -> Path:
    return request.param


@pytest.fixture(scope="module")
def definition(workflow_file):
    return load(workflow_file)


@pytest.fixture(scope="module")
def two_level():
    return load(TWO_LEVEL)


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


def test_report_fields_are_read_with_map_get_so_missing_ones_are_sent_as_null(
    definition, workflow_file
):
    body = registration_call(definition)["args"]["body"]
    for field in set(body) - {"callback_url", "timeout_seconds"} - POLICY_FIELDS:
        assert expression(body[field]) == f'map.get(args, "{field}")', field
    timeout = assignments(definition)[expression(body["timeout_seconds"])]
    default = DEFAULT_TIMEOUT[workflow_file.name]
    assert expression(timeout) == f'default(map.get(args, "timeout_seconds"), {default})'


# --- Running a definition -----------------------------------------------------------------------
#
# `execute` runs the subset of Workflows syntax these definitions use: assign, call (standard
# library calls go to a stand-in; subworkflows run), switch, try/except (no retry: one attempt),
# raise, return, next and nested steps. Expressions are evaluated as Python, which reads the same
# for what the definitions use (variables, fields, calls, comparisons, `in`, `not`, literals), with
# Workflows' names and functions bound below, as the reference documents them; a run that
# reaches a function missing here fails, so it cannot pass unnoticed.

APPROVER_URL = "https://approver.example.run.app"
REQUEST_ID = "5f0e8d1c-0000-4000-8000-000000000042"


class WorkflowError(Exception):
    """An error raised in the workflow: a map with its tags, as Workflows raises them."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


class Returned(Exception):
    def __init__(self, value):
        super().__init__(value)
        self.value = value


class Jump(Exception):
    def __init__(self, target):
        super().__init__(target)
        self.target = target


class Registered(Exception):
    """A stand-in ends the run here: the test has what it wanted, the registration body."""


class Value(dict):
    """A Workflows map: fields read as attributes too (`registration.body.id`)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise workflow_error("KeyError", f"key not found: {name}") from None


def wrap(value):
    if isinstance(value, dict):
        return Value({key: wrap(item) for key, item in value.items()})
    if isinstance(value, list):
        return [wrap(item) for item in value]
    return value


def workflow_error(tag: str, message: str, **fields) -> WorkflowError:
    return WorkflowError(wrap({"tags": [tag], "message": message, **fields}))


def _double(value):
    """double(): "Accepts an attribute of type string or integer and returns a double"."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise workflow_error("ValueError", f"not a number: {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise workflow_error("TypeError", f"double() takes a string or an integer: {value!r}")


def _string(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise workflow_error("TypeError", f"string() takes a number or a boolean: {value!r}")
    return str(value)


def _map_get(mapping, key):
    if not isinstance(mapping, dict):
        raise workflow_error("TypeError", f"map.get() takes a map: {mapping!r}")
    return mapping.get(key)


NAMES = {
    "null": None,
    "true": True,
    "false": False,
    "default": lambda value, fallback: fallback if value is None else value,
    "double": _double,
    "string": _string,
    "map": SimpleNamespace(get=_map_get),
    "text": SimpleNamespace(replace_all_regex=lambda text, pattern, by: re.sub(pattern, by, text)),
    "sys": SimpleNamespace(get_env={"APPROVER_URL": APPROVER_URL + "/"}.get),
    "json": SimpleNamespace(encode_to_string=json.dumps),
}


def evaluate(value, scope: dict):
    if isinstance(value, dict):
        return Value({key: evaluate(item, scope) for key, item in value.items()})
    if isinstance(value, list):
        return [evaluate(item, scope) for item in value]
    if not (isinstance(value, str) and EXPRESSION.match(value)):
        return value
    try:
        return wrap(eval(expression(value), {"__builtins__": {}}, {**NAMES, **scope}))  # noqa: S307
    except TypeError as error:  # "a" + 1, None > 1.0: Workflows refuses these too
        raise workflow_error("TypeError", str(error)) from None


def run_steps(definition: dict, steps: list, scope: dict, call) -> None:
    names = [next(iter(step)) for step in steps]
    index = 0
    while index < len(steps):
        [body] = steps[index].values()
        try:
            target = run_step(definition, body, scope, call)
        except Jump as jump:
            target = jump.target
        if target is None:
            index += 1
        elif target == "end":
            raise Returned(None)
        elif target in names:
            index = names.index(target)
        else:
            raise Jump(target)  # to a step of an enclosing list


def run_step(definition: dict, body: dict, scope: dict, call):
    """Run one step; answer the step to jump to, if any."""
    if "try" in body:
        try:
            target = run_step(definition, body["try"], scope, call)
        except WorkflowError as raised:
            if "except" not in body:
                raise
            scope[body["except"]["as"]] = raised.value
            run_steps(definition, body["except"]["steps"], scope, call)
            return body.get("next")
        return target or body.get("next")
    for item in body.get("assign", []):
        for name, value in item.items():
            scope[name] = evaluate(value, scope)
    if "call" in body:
        args = evaluate(body.get("args", {}), scope)
        if body["call"] in definition:
            result = run_subworkflow(definition, body["call"], args, call)
        else:
            result = wrap(call(body["call"], args))
        if "result" in body:
            scope[body["result"]] = result
    if "steps" in body:
        run_steps(definition, body["steps"], scope, call)
    for case in body.get("switch", []):
        if evaluate(case["condition"], scope) is True:
            chosen = {key: value for key, value in case.items() if key != "condition"}
            return run_step(definition, chosen, scope, call) or body.get("next")
    if "raise" in body:
        raise WorkflowError(evaluate(body["raise"], scope))
    if "return" in body:
        raise Returned(evaluate(body["return"], scope))
    return body.get("next")


def run_subworkflow(definition: dict, name: str, args: dict, call):
    scope = {param: args[param] for param in definition[name].get("params", [])}
    try:
        run_steps(definition, definition[name]["steps"], scope, call)
    except Returned as returned:
        return returned.value
    return None


def execute(definition: dict, report, call):
    """Run `main` with `report` as its argument; answer what it returns."""
    [param] = definition["main"]["params"]
    try:
        run_steps(definition, definition["main"]["steps"], {param: wrap(report)}, call)
    except Returned as returned:
        return json.loads(json.dumps(returned.value))
    return None


class StandIns:
    """Approver and the callback as the workflow's calls meet them; `calls` records every call.

    `register(body)` answers the registration (by default a pending request, without touching the
    database); `wait()` answers the callback's body when the workflow awaits it, or None for a
    timeout; `late_state`, when set, is the state a cancel's 409 answers with; `cancel(id)`, when
    set, answers the cancel instead, as (status code, body).
    """

    def __init__(self, register=None, wait=None, late_state=None, cancel=None):
        self.register = register or (lambda body: pending_answer(REQUEST_ID))
        self.wait = wait or (lambda: None)
        self.late_state = late_state
        self.cancel = cancel
        self.calls = []
        self.request_id = None

    def __call__(self, function: str, args):
        self.calls.append((function, json.loads(json.dumps(args))))
        if function == "events.create_callback_endpoint":
            assert args == {"http_callback_method": "POST"}
            return {"url": CALLBACK_URL}
        if function == "sys.log":
            return None
        if function == "http.post":
            assert args["auth"] == {"type": "OIDC", "audience": APPROVER_URL}
            if args["url"] == APPROVER_URL + "/api/approvals":
                answer = self.register(json.loads(json.dumps(args["body"])))
                self.request_id = answer["id"]
                return {"code": 201, "body": answer}
            if args["url"] == f"{APPROVER_URL}/api/approvals/{self.request_id}/cancel":
                if self.cancel is not None:
                    code, answer = self.cancel(self.request_id)
                    if code >= 400:
                        raise workflow_error(
                            "HttpError",
                            f"HTTP server responded with error code {code}",
                            code=code,
                            body=answer,
                        )
                    return {"code": code, "body": answer}
                if self.late_state is not None:
                    raise workflow_error(
                        "HttpError",
                        "HTTP server responded with error code 409",
                        code=409,
                        body=self.late_state,
                    )
                return {
                    "code": 200,
                    "body": {**pending_answer(self.request_id), "status": "cancelled"},
                }
        if function == "events.await_callback":
            body = self.wait()
            if body is None:
                raise workflow_error("TimeoutError", "timed out waiting for a callback")
            return {"http_request": {"method": "POST", "body": body}}
        pytest.fail(f"unexpected call {function} {args!r}")

    def called(self, function: str) -> list:
        return [args for name, args in self.calls if name == function]


def pending_answer(request_id: str) -> dict:
    return {
        "id": request_id,
        "status": "pending",
        "url": f"{APPROVER_URL}/approvals/{request_id}/",
        "expires_at": "2026-11-27T12:00:00Z",
    }


def rendered_body(definition, report: dict) -> dict:
    """The registration body the workflow sends for `report`: run it up to that POST."""

    def stop(body):
        stop.body = body
        raise Registered()

    try:
        execute(definition, report, StandIns(register=stop))
    except Registered:
        return stop.body
    pytest.fail("the workflow ended without registering")


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
            "assignee_groups": ["finance"],
            "external_id": "EXP-1042",
            "timeout_seconds": 3600,
            "escalate_after_seconds": 1800,
        },
    ],
    ids=["minimal", "complete"],
)
def test_the_api_accepts_the_body_the_workflow_sends(definition, report, settings, finance):
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
    assert wait["args"].get("timeout") is not None, "without one the wait lasts 12 hours"


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


# --- Running it: the outcomes -------------------------------------------------------------------


def test_a_timeout_cancels_the_request_and_returns_timed_out(definition):
    stand_ins = StandIns()
    result = execute(definition, {"title": "Trip", "requester_email": "ann@example.com"}, stand_ins)
    assert result["outcome"] == "timed_out"
    assert result["request_id"] == REQUEST_ID
    [cancel] = [args for args in stand_ins.called("http.post") if "/cancel" in args["url"]]
    assert cancel["url"] == f"{APPROVER_URL}/api/approvals/{REQUEST_ID}/cancel"


def test_the_wait_outlasts_the_request_so_its_timeout_finds_it_expired(
    definition, client, finance, workflows_callbacks
):
    """Approver sends nothing when a request expires: the workflow learns of it from its own
    timeout, which must come after the expiry, with a margin for a decision of the last moment
    whose callback is sent again (retries; a dead sender's claim running out). Against the real
    API: the cancel then finds the request expired and answers 200 "expired"."""
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    seen = {}

    def register(body):
        response = client.post(
            "/api/approvals", body, content_type="application/json", headers=headers
        )
        assert response.status_code == 201, response.content
        return response.json()

    def wait():
        [args] = stand_ins.called("events.await_callback")
        request = ApprovalRequest.objects.get(callback_url=CALLBACK_URL)
        waited = timedelta(seconds=args["timeout"])
        seen["margin"] = timezone.now() + waited - request.expires_at
        # Time passes until the wait ends: the request's deadline falls that far behind.
        ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=request.expires_at - waited)
        return None  # no callback came

    def cancel(request_id):
        response = client.post(f"/api/approvals/{request_id}/cancel", headers=headers)
        seen["cancel"] = (response.status_code, response.json()["status"])
        return response.status_code, response.json()

    stand_ins = StandIns(register=register, wait=wait, cancel=cancel)
    report = {"title": "Trip", "requester_email": "ann@example.com"}
    result = execute(definition, report, stand_ins)

    assert seen["margin"] > delivery.ATTEMPT_LEASE
    assert seen["cancel"] == (200, "expired")
    assert result["outcome"] == "timed_out"
    assert ApprovalRequest.objects.get(callback_url=CALLBACK_URL).status == Status.EXPIRED


def test_a_decision_after_the_wait_ended_is_returned_as_decided_too_late(definition):
    late = {
        "id": REQUEST_ID,
        "status": "approved",
        "decided_by": "boss@example.com",
        "decided_at": "2026-11-26T12:00:00Z",
        "comment": "Sorry, late",
        "on_behalf_of": None,
        "decisions": [
            {
                "decided_by": "boss@example.com",
                "on_behalf_of": None,
                "decision": "approved",
                "comment": "Sorry, late",
                "decided_at": "2026-11-26T12:00:00Z",
            }
        ],
    }
    report = {"title": "Trip", "requester_email": "ann@example.com"}
    result = execute(definition, report, StandIns(late_state=late))
    assert result["outcome"] == "decided_too_late"
    assert (result["status"], result["decided_by"]) == ("approved", "boss@example.com")


# --- The two-level workflow: its policy ---------------------------------------------------------


def report(amount=None, **fields) -> dict:
    """An expense report for the two-level workflow; `amount` None leaves amount out."""
    money = {} if amount is None else {"amount": amount, "currency": "EUR"}
    return {"title": "Conference", "requester_email": "ann@example.com", **money, **fields}


@pytest.fixture
def workflows_callbacks(settings):
    settings.APPROVALS_CALLBACK_URL_PREFIXES = ["https://workflowexecutions.googleapis.com/v1/"]


def test_two_level_policy_settings_have_defaults(two_level):
    body = rendered_body(two_level, report("1840.00"))
    assert body["timeout_seconds"] == 604800  # seven days
    assert body["escalate_after_seconds"] == 172800  # two days
    assert body["escalate_to"] == ["finance"]


@pytest.mark.parametrize("amount", ["1000.01", "25000", 1001, 1500.5], ids=repr)
def test_above_the_threshold_two_approvals_and_escalation_to_finance(
    two_level, amount, finance, workflows_callbacks
):
    body = rendered_body(two_level, report(amount))
    assert body["required_approvals"] == 2
    assert body["escalate_to"] == ["finance"]
    parsed = registration.parse(body)
    assert parsed.required_approvals == 2
    assert (parsed.escalate_to_groups, parsed.escalate_to_emails) == (["finance"], [])
    assert parsed.escalate_after == timedelta(days=2)


@pytest.mark.parametrize("amount", ["1000", "1000.00", 1000, 999.99, "0.50", 0], ids=repr)
def test_at_or_below_the_threshold_one_approval_still_escalating_to_finance(
    two_level, amount, finance, workflows_callbacks
):
    body = rendered_body(two_level, report(amount))
    assert body["required_approvals"] == 1
    parsed = registration.parse(body)
    assert parsed.required_approvals == 1
    assert parsed.escalate_to_groups == ["finance"]
    assert parsed.escalate_after == timedelta(days=2)


def test_without_an_amount_two_approvals_are_asked(two_level, finance, workflows_callbacks):
    body = rendered_body(two_level, report())
    assert body["amount"] is None
    assert body["required_approvals"] == 2
    assert registration.parse(body).required_approvals == 2


@pytest.mark.parametrize(
    ("threshold", "amount", "required"),
    [("5000", "4999.99", 1), (5000, "5000", 1), ("5000", "5000.01", 2), (250, 251, 2)],
)
def test_threshold_finance_group_and_times_are_arguments(
    two_level, threshold, amount, required, make_user, workflows_callbacks
):
    controllers = Group.objects.create(name="controllers")
    for name in ("carla", "conrad"):
        make_user(name).groups.add(controllers)
    settings = {
        "threshold": threshold,
        "finance_group": "controllers",
        "escalate_after_seconds": 3600,
        "timeout_seconds": 86400,
    }
    body = rendered_body(two_level, report(amount, **settings))
    assert body["required_approvals"] == required
    assert body["escalate_to"] == ["controllers"]
    assert (body["escalate_after_seconds"], body["timeout_seconds"]) == (3600, 86400)
    assert registration.parse(body).required_approvals == required


def test_the_api_refuses_two_approvals_without_two_possible_deciders(
    two_level, make_user, workflows_callbacks
):
    """The deployment needs the finance group and two approvers; the workflow cannot check."""
    Group.objects.create(name="finance").user_set.add(make_user("fiona"))
    with pytest.raises(registration.InvalidRegistration) as refused:
        registration.parse(rendered_body(two_level, report("1840.00")))
    assert "required_approvals" in refused.value.errors


@pytest.mark.parametrize("escalate_after", [3600, 7200])
def test_escalation_at_or_after_the_timeout_fails_before_anything_is_created(
    two_level, escalate_after
):
    stand_ins = StandIns()
    args = report("1840.00", timeout_seconds=3600, escalate_after_seconds=escalate_after)
    with pytest.raises(WorkflowError) as raised:
        execute(two_level, args, stand_ins)
    assert "escalate_after_seconds must be less than timeout_seconds" in raised.value.value
    assert stand_ins.calls == [], "no callback endpoint, no registration"


def test_an_amount_that_is_no_number_fails_before_anything_is_created(two_level):
    stand_ins = StandIns()
    with pytest.raises(WorkflowError) as raised:
        execute(two_level, report("twelve"), stand_ins)
    assert "ValueError" in raised.value.value["tags"]
    assert stand_ins.calls == []


# --- The two-level workflow: the decisions it returns -------------------------------------------


@pytest.mark.parametrize(
    ("decisions", "outcome"),
    [
        ([("manager", "approved"), ("fiona", "approved")], "approved"),
        ([("manager", "approved"), ("fiona", "rejected")], "rejected"),
        ([("manager", "rejected")], "rejected"),
    ],
    ids=["two approvals", "approval then rejection", "first rejection closes"],
)
def test_the_result_has_the_final_decision_and_the_callbacks_decisions(
    two_level, decisions, outcome, finance, manager, django_user_model, workflows_callbacks
):
    """Registered for real, decided for real when the workflow waits: the callback body the app
    builds is what the workflow receives, and its decisions list is what the workflow returns."""
    sent = {}

    def register(body):
        registered = services.register(registration.parse(body), caller=INVOKER)
        return wire.state(registered.approval)

    def wait():
        request = ApprovalRequest.objects.get(callback_url=CALLBACK_URL)
        for username, decision in decisions:
            user = django_user_model.objects.get(username=username)
            services.decide(request.pk, user, decision, f"{decision} by {username}")
        request = ApprovalRequest.objects.prefetch_related("decisions").get(pk=request.pk)
        sent["callback"] = json.loads(json.dumps(wire.callback_body(request)))
        return sent["callback"]

    result = execute(two_level, report("1840.00"), StandIns(register=register, wait=wait))

    callback = sent["callback"]
    assert result["outcome"] == outcome == callback["decision"]
    assert result["required_approvals"] == 2
    assert result["decisions"] == callback["decisions"]
    assert [(d["decided_by"], d["decision"]) for d in result["decisions"]] == [
        (f"{username}@example.com", decision) for username, decision in decisions
    ]
    final_by, final_decision = decisions[-1]
    assert result["decided_by"] == f"{final_by}@example.com"
    assert result["comment"] == f"{final_decision} by {final_by}"
    assert result["decided_at"] == callback["decided_at"] == result["decisions"][-1]["decided_at"]
    assert result["on_behalf_of"] is None
    assert result["request_id"] == callback["request_id"]


def test_a_late_decision_returns_the_decisions_too(two_level):
    decisions = [
        {
            "decided_by": "manager@example.com",
            "on_behalf_of": None,
            "decision": "approved",
            "comment": "Fine",
            "decided_at": "2026-11-26T11:00:00Z",
        },
        {
            "decided_by": "felix@example.com",
            "on_behalf_of": "fiona@example.com",
            "decision": "approved",
            "comment": "For Fiona",
            "decided_at": "2026-11-26T12:00:00Z",
        },
    ]
    late = {
        "id": REQUEST_ID,
        "status": "approved",
        "decided_by": "felix@example.com",
        "on_behalf_of": "fiona@example.com",
        "decided_at": "2026-11-26T12:00:00Z",
        "comment": "For Fiona",
        "decisions": decisions,
    }
    result = execute(two_level, report("1840.00"), StandIns(late_state=late))
    assert result["outcome"] == "decided_too_late"
    assert result["on_behalf_of"] == "fiona@example.com"
    assert result["decisions"] == decisions
