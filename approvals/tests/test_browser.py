"""End to end: a real headless Chromium, driven by Playwright, against the live server.

Requests are registered over real HTTP with the static API token, people sign in through the
login form (tests about later steps start from a session cookie, `signed_in`) or follow the link
of the e-mail they got, decide with the buttons and the confirmation page that follows, and the
callback stand-in (`receiver`) sees what the workflow would receive. Run only these with
`pytest -m browser`, skip them with `-m "not browser"`.

Each page a person reaches is checked with axe-core (the script shipped in the
axe-playwright-python wheel): any serious or critical finding fails the test.

Set APPROVER_SHOTS_DIR to a directory to keep screenshots of the main pages; `make screenshots`
writes them to docs/screenshots, which the README shows.
"""

import datetime
import functools
import importlib.resources
import io
import os
import re
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import call_command
from django.test import Client
from playwright.sync_api import expect, sync_playwright

from approvals.models import ChannelPreference, ChatAccount
from approvals.tests.conftest import API_TOKEN

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
# The Chromium `tools/ensure-chromium` found or fetched (`make test` runs it first).
CHROMIUM_FILE = ROOT / ".venv" / "chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000
SHOTS_DIR = os.environ.get("APPROVER_SHOTS_DIR", "")
# axe-core's script as shipped inside the axe-playwright-python wheel (requirements-dev.txt).
AXE_JS = importlib.resources.files("axe_playwright_python") / "axe.min.js"
# What fails a test; "moderate" and "minor" findings are left to judgement.
AXE_FAILING_IMPACTS = ("serious", "critical")


def chromium_path() -> str:
    """Return the Chromium to drive: $CHROMIUM, else the one `tools/ensure-chromium` recorded."""
    path = os.environ.get("CHROMIUM") or (
        CHROMIUM_FILE.read_text().strip() if CHROMIUM_FILE.is_file() else ""
    )
    if not path or not os.access(path, os.X_OK):
        where = path or CHROMIUM_FILE
        pytest.fail(f"no Chromium at {where}: run tools/ensure-chromium (make test does)")
    return path


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole session; each test gets its own context (cookies, viewport).

    Playwright's sync API keeps an asyncio event loop registered as running in the main thread
    from `start()` to `stop()`. Django's `async_unsafe` guard sees that loop and refuses every
    ORM call made from the main thread meanwhile (creating users, the checks in the tests, the
    table flush after each transactional test, and the tests of modules that run later in the
    session) with SynchronousOnlyOperation, although nothing runs concurrently: the loop is idle
    while test code runs. So the guard is switched off exactly while the browser is alive.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_playwright().start()
        try:
            chromium = playwright.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
            )
            yield chromium
            chromium.close()
        finally:
            playwright.stop()


@pytest.fixture
def live(live_server, transactional_db, approvals_settings):
    """The live server, with answers' `url` pointing at it. The server runs in a thread of this
    process, so the settings fixture's changes reach it; transactional_db lets it see the rows
    the tests create (and the tests see its rows).

    The live server answers /static/ itself, looking files up through the staticfiles finders
    under their source names; the manifest storage's hashed names (style.<hash>.css) exist only
    in STATIC_ROOT, which WhiteNoise serves in production, so pages would link a stylesheet that
    404s here. Plain names keep the pages styled as they are in production.
    """
    approvals_settings.APPROVALS_BASE_URL = live_server.url
    # Mail stays in django.core.mail.outbox (the live server is a thread of this process).
    approvals_settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    approvals_settings.STORAGES = {
        **approvals_settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return live_server


@pytest.fixture
def new_page(browser, live):
    """Open pages in fresh browser contexts; a static file that fails to load, or anything the
    Content Security Policy blocks, fails the test."""
    contexts = []
    broken = []
    blocked = []

    def open_page(viewport=None):
        context = browser.new_context(
            base_url=live.url, viewport=viewport or {"width": 1280, "height": 800}
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        opened = context.new_page()
        opened.on(
            "response",
            lambda response: (
                broken.append(f"{response.status} {response.url}")
                if response.request.resource_type in {"stylesheet", "script", "image", "font"}
                and response.status >= 400
                else None
            ),
        )
        opened.on(
            "console",
            lambda message: (
                blocked.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        return opened

    yield open_page
    for context in contexts:
        context.close()
    assert broken == [], "static files failed to load"
    assert blocked == [], "the Content Security Policy blocked something"


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def register_live(live, registration_body):
    """Register an approval through the API over HTTP, like a workflow; returns the answer."""

    def post(**fields):
        body = registration_body(
            **{"title": "Team offsite in Lisbon", "amount": "1840.50", **fields}
        )
        response = requests.post(
            f"{live.url}/api/approvals",
            json=body,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        answer = response.json()
        assert answer["url"] == f"{live.url}/approvals/{answer['id']}/"
        return answer

    return post


def api_state(live, request_id) -> dict:
    response = requests.get(
        f"{live.url}/api/approvals/{request_id}",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def shot(page, name: str, full_page: bool = False) -> None:
    """Keep a screenshot of what the viewport shows (the whole page only when asked)."""
    if SHOTS_DIR:
        Path(SHOTS_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS_DIR) / f"{name}.png"), full_page=full_page)


@functools.cache
def axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


AXE_RUN = """async (impacts) => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations
    .filter((rule) => impacts.includes(rule.impact))
    .map((rule) => ({
      id: rule.id,
      impact: rule.impact,
      help: rule.help,
      nodes: rule.nodes.map((node) => `${node.target.join(" ")}: ${node.failureSummary}`),
    }));
}"""


def assert_accessible(page, what: str) -> None:
    """Run axe-core on the page as it is now; fail on any serious or critical finding.

    `page.add_script_tag` would insert a <script> element, which the pages' Content Security
    Policy (`script-src 'self'`) blocks, and `new_page` fails a test on anything the policy
    blocks. So axe's source is evaluated through the DevTools protocol instead (`page.evaluate`),
    which the policy does not govern: the policy stays on for everything the page itself does.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    found = page.evaluate(AXE_RUN, list(AXE_FAILING_IMPACTS))
    report = "\n".join(
        f"{rule['impact']} {rule['id']}: {rule['help']}"
        + "".join("\n    " + node.replace("\n", "\n      ") for node in rule["nodes"])
        for rule in found
    )
    if found:
        print(f"axe-core on {what} ({page.url}):\n{report}")
    assert not found, f"axe-core on {what} ({page.url}):\n{report}"


def sign_in(
    page,
    live,
    username: str,
    shot_name: str | None = None,
    audit: bool = False,
    then: str | re.Pattern | None = None,
) -> None:
    """Sign in through the form; `then` is where it should land (the inbox unless given)."""
    if not page.url.startswith(f"{live.url}/accounts/login/"):
        page.goto("/accounts/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)  # make_user's password
    if audit:
        assert_accessible(page, "the sign-in page")
    if shot_name:
        shot(page, shot_name)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(then or f"{live.url}/")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def signed_in(page, live, user) -> None:
    """Give the page's browser a session of `user`, as the sign-in form would (Django's
    `force_login`): for the tests about what comes after; the form has tests of its own."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": cookie.key, "value": cookie.value, "url": live.url, "httpOnly": True}]
    )


def fact(page, label: str):
    """The value next to `label` in the request's facts (Requester, Amount, ...)."""
    return page.locator(f"dl.facts dt:text-is('{label}') + dd")


def detail_value(page, key: str):
    """The cell next to the row header `key` in the details table (nested tables included)."""
    return (
        page.get_by_role("rowheader", name=key, exact=True)
        .locator("xpath=following-sibling::td")
        .first
    )


def inbox_path(live) -> re.Pattern:
    return re.compile(rf"^{re.escape(live.url)}/$")


def inbox_rows(page):
    """The requests listed in the inbox's table (its body rows)."""
    return page.locator("table.inbox tbody tr")


def tab(page, name: str):
    """An inbox tab's link: its label followed by its count."""
    return page.get_by_role("navigation", name="Lists").get_by_role(
        "link", name=re.compile(rf"^{re.escape(name)} \d+\+?$")
    )


def header(callback, name: str) -> str | None:
    return next(
        (value for key, value in callback.headers.items() if key.lower() == name.lower()), None
    )


def assert_callback(callback, request_id: str, decision: str, comment: str) -> None:
    assert callback.body["request_id"] == request_id
    assert callback.body["decision"] == decision
    assert callback.body["comment"] == comment
    assert callback.body["decided_by"] == "manager@example.com"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", callback.body["decided_at"])
    assert re.fullmatch(r"Bearer test-access-token-\d+", header(callback, "Authorization") or "")
    assert header(callback, "Content-Type").startswith("application/json")


def test_a_manager_finds_a_request_approves_it_and_the_workflow_receives_the_decision(
    page, live, register_live, manager, receiver
):
    created = register_live(
        external_id="EXP-142",
        description="Two nights for the platform team.",
        details={
            "cost_center": "ENG",
            "nights": 2,
            "lines": [{"item": "Hotel", "amount": "1440"}, {"item": "Train", "amount": "400.50"}],
        },
    )
    following = register_live(title="Printer toner", amount="89.90", external_id="EXP-143")
    register_live(title="Conference tickets", amount="600", external_id="EXP-150")

    sign_in(page, live, "manager", shot_name="login", audit=True)
    expect(page.get_by_role("heading", level=1)).to_have_text("Approvals")
    expect(tab(page, "Waiting for me")).to_have_attribute("aria-current", "page")
    expect(tab(page, "Waiting for me")).to_have_text("Waiting for me 3")
    expect(inbox_rows(page)).to_have_count(3)
    assert_accessible(page, "the inbox")
    shot(page, "inbox")

    page.get_by_text("Search and filter").click()
    page.get_by_label("Search", exact=True).fill("exp-142")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"[?&]q=exp-142(&|$)"))
    expect(inbox_rows(page)).to_have_count(1)
    row = inbox_rows(page).first
    expect(row).to_contain_text("Team offsite in Lisbon")
    expect(row).to_contain_text("alice@example.com")
    expect(row).to_contain_text("1,840.50 EUR")
    expect(row).to_contain_text("EXP-142")
    assert_accessible(page, "the inbox, searched, filters open")
    shot(page, "inbox-search")

    row.get_by_role("link", name="Team offsite in Lisbon").click()
    expect(page).to_have_url(created["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Team offsite in Lisbon")
    expect(fact(page, "Requester")).to_have_text("alice@example.com")
    expect(fact(page, "Amount")).to_have_text("1,840.50 EUR")
    expect(fact(page, "Reference")).to_have_text("EXP-142")
    expect(page.get_by_text("Two nights for the platform team.")).to_be_visible()
    expect(page.get_by_role("heading", name="Details")).to_be_visible()
    expect(detail_value(page, "cost_center")).to_have_text("ENG")
    expect(detail_value(page, "nights")).to_have_text("2")
    items = page.locator("table.items")
    expect(items.get_by_role("columnheader")).to_have_text(["item", "amount"])
    expect(items.locator("tbody tr")).to_have_text([re.compile("Hotel"), re.compile("Train")])
    expect(items.locator("tfoot")).to_contain_text("1,840.50")
    assert_accessible(page, "a pending request's page")
    shot(page, "request", full_page=True)

    page.get_by_label("Comment").fill("Fine by me, enjoy Lisbon.")
    page.get_by_role("button", name="Approve", exact=True).click()

    # The confirmation names the request and the amount; nothing is decided before it.
    expect(page.get_by_role("heading", level=1)).to_have_text("Approve “Team offsite in Lisbon”?")
    expect(fact(page, "Amount")).to_have_text("1,840.50 EUR")
    expect(fact(page, "Reference")).to_have_text("EXP-142")
    expect(fact(page, "Your comment")).to_have_text("Fine by me, enjoy Lisbon.")
    assert receiver.received == []
    assert api_state(live, created["id"])["status"] == "pending"
    assert_accessible(page, "the confirmation of an approval")
    shot(page, "confirm")
    page.get_by_role("button", name="Yes, approve 1,840.50 EUR").click()

    # Then the next waiting request opens, oldest first, with the news of the decision.
    expect(page).to_have_url(following["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Printer toner")
    messages = page.get_by_role("status")
    expect(messages).to_contain_text("You approved “Team offsite in Lisbon”.")
    expect(messages).to_contain_text("The workflow has received your decision.")
    assert_accessible(page, "the next request, with the news of the decision")

    assert len(receiver.received) == 1
    callback = receiver.received[0]
    assert callback.path.endswith("/executions/exec-1/callbacks/approval")
    assert_callback(callback, created["id"], "approved", "Fine by me, enjoy Lisbon.")
    state = api_state(live, created["id"])
    assert (state["status"], state["decided_by"]) == ("approved", "manager@example.com")
    assert state["delivery"]["status"] == "delivered"

    page.get_by_role("link", name="Inbox", exact=True).click()
    expect(tab(page, "Waiting for me")).to_have_text("Waiting for me 2")
    expect(page.get_by_role("link", name="Team offsite in Lisbon")).to_have_count(0)
    tab(page, "All pending").click()
    expect(tab(page, "All pending")).to_have_attribute("aria-current", "page")
    expect(inbox_rows(page)).to_have_count(2)
    tab(page, "Decided").click()
    expect(inbox_rows(page)).to_have_count(1)
    expect(inbox_rows(page).first).to_contain_text("Team offsite in Lisbon")
    expect(inbox_rows(page).first.locator(".badge")).to_have_text("Approved")
    assert_accessible(page, "the inbox's decided tab")
    shot(page, "inbox-decided")


def test_a_rejection_needs_a_comment_and_goes_through_the_confirmation(
    page, live, register_live, manager, receiver
):
    created = register_live()
    signed_in(page, live, manager)
    page.goto(created["url"])

    page.get_by_role("button", name="Reject", exact=True).click()

    expect(page.get_by_role("status")).to_contain_text("Your decision was not recorded")
    expect(page.get_by_role("alert")).to_contain_text("a comment is required")
    expect(page.get_by_role("button", name="Reject", exact=True)).to_be_visible()
    assert_accessible(page, "a request's page refusing a rejection without a comment")
    assert receiver.received == []
    assert api_state(live, created["id"])["status"] == "pending"

    # Changing one's mind on the confirmation page decides nothing.
    page.get_by_label("Comment").fill("Over the quarter's budget.")
    page.get_by_role("button", name="Reject", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reject “Team offsite in Lisbon”?")
    page.get_by_role("link", name="No, go back").click()
    expect(page).to_have_url(created["url"])
    assert receiver.received == []
    assert api_state(live, created["id"])["status"] == "pending"

    page.get_by_label("Comment").fill("Over the quarter's budget.")
    page.get_by_role("button", name="Reject", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reject “Team offsite in Lisbon”?")
    expect(fact(page, "Amount")).to_have_text("1,840.50 EUR")
    expect(fact(page, "Your comment")).to_have_text("Over the quarter's budget.")
    assert_accessible(page, "the confirmation of a rejection")
    page.get_by_role("button", name="Yes, reject 1,840.50 EUR").click()

    expect(page).to_have_url(inbox_path(live))  # nothing else waits
    expect(page.get_by_role("status")).to_contain_text("You rejected “Team offsite in Lisbon”.")
    expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()
    assert_accessible(page, "the empty inbox, with the news of the decision")
    assert len(receiver.received) == 1
    assert_callback(receiver.received[0], created["id"], "rejected", "Over the quarter's budget.")
    assert api_state(live, created["id"])["status"] == "rejected"


def test_a_manager_sends_a_request_back_and_its_next_round_shows_the_first(
    page, live, register_live, manager, receiver
):
    plain = register_live(title="Printer toner")
    signed_in(page, live, manager)
    page.goto(plain["url"])
    expect(page.get_by_role("button", name="Reject", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Send back")).to_have_count(0)

    created = register_live(external_id="EXP-210", allow_changes_requested=True)
    page.goto(created["url"])
    page.get_by_role("button", name="Send back").click()
    expect(page.get_by_role("alert")).to_contain_text("a comment is required to send it back")
    assert_accessible(page, "a request's page refusing a send back without a comment")

    page.get_by_label("Comment").fill("Split the hotel from the flights.")
    page.get_by_role("button", name="Send back").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Send back “Team offsite in Lisbon”?")
    assert_accessible(page, "the confirmation of a send back")
    page.get_by_role("button", name="Yes, send it back for changes").click()

    expect(page.get_by_role("status")).to_contain_text("You sent back “Team offsite in Lisbon”.")
    assert_callback(
        receiver.received[0],
        created["id"],
        "changes_requested",
        "Split the hotel from the flights.",
    )
    assert api_state(live, created["id"])["status"] == "changes_requested"

    # The workflow registers the corrected report as a new round.
    second = register_live(external_id="EXP-210", allow_changes_requested=True)
    page.goto(second["url"])
    rounds = page.locator("#rounds")
    expect(rounds).to_contain_text("Split the hotel from the flights.")
    expect(rounds).to_contain_text("Sent back by manager@example.com")
    assert_accessible(page, "a request's second round, showing the first")
    shot(page, "request-second-round", full_page=True)
    rounds.get_by_role("link", name=re.compile("^Earlier round")).click()
    expect(page).to_have_url(created["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Team offsite in Lisbon")
    page.locator("#rounds").get_by_role("link", name=re.compile("^Later round")).click()
    expect(page).to_have_url(second["url"])


def test_a_manager_approves_two_requests_at_once_and_each_workflow_is_told(
    page, live, register_live, manager, receiver
):
    lisbon = register_live()
    toner = register_live(title="Printer toner", amount="89.90")
    tickets = register_live(title="Conference tickets", amount="600")

    signed_in(page, live, manager)
    page.goto("/")
    page.get_by_label("Select “Team offsite in Lisbon”").check()
    page.get_by_label("Select “Printer toner”").check()
    page.get_by_role("button", name="Approve selected").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Approve 2 requests?")
    listed = page.locator("table.inbox tbody tr")
    expect(listed).to_have_count(2)
    expect(listed.nth(0)).to_contain_text("Team offsite in Lisbon")
    expect(listed.nth(0)).to_contain_text("1,840.50 EUR")
    expect(listed.nth(1)).to_contain_text("Printer toner")
    expect(page.locator("table.inbox tfoot")).to_contain_text("1,930.40 EUR")
    expect(page.get_by_text("Conference tickets")).to_have_count(0)
    assert receiver.received == []
    assert_accessible(page, "the confirmation of a bulk approval")
    shot(page, "bulk-confirm")
    page.get_by_role("button", name="Yes, approve 2").click()

    expect(page).to_have_url(inbox_path(live))
    expect(page.get_by_role("status")).to_contain_text(
        "You approved 2 request(s): “Team offsite in Lisbon”, “Printer toner”."
    )
    expect(inbox_rows(page)).to_have_count(1)
    expect(inbox_rows(page).first).to_contain_text("Conference tickets")

    callbacks = {callback.body["request_id"]: callback for callback in receiver.received}
    assert set(callbacks) == {lisbon["id"], toner["id"]}
    assert len(receiver.received) == 2  # one each
    for created in (lisbon, toner):
        assert_callback(callbacks[created["id"]], created["id"], "approved", "")
        assert api_state(live, created["id"])["status"] == "approved"
    assert api_state(live, tickets["id"])["status"] == "pending"


def decision_links(message) -> dict[str, str]:
    """The Approve and Reject links of a request's e-mail, from its plain-text body."""
    return dict(re.findall(r"^(Approve|Reject):\s+(\S+)$", message.body, re.MULTILINE))


def test_a_manager_follows_the_e_mail_link_signs_in_and_approves(
    new_page, live, register_live, manager, receiver
):
    created = register_live(external_id="EXP-142")
    call_command("send_notifications", stdout=io.StringIO())  # the job that sends the notices
    sent = [message for message in mail.outbox if message.to == ["manager@example.com"]]
    assert len(sent) == 1, [message.to for message in mail.outbox]
    links = decision_links(sent[0])
    assert set(links) == {"Approve", "Reject"}
    assert links["Approve"].startswith(f"{live.url}/approvals/{created['id']}/email-decision?")
    html = sent[0].alternatives[0].content
    assert f'href="{links["Approve"]}"' in html

    page = new_page()
    page.goto(links["Approve"])  # signed out: the sign-in comes first, then back to the link
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    sign_in(page, live, "manager", then=links["Approve"])

    expect(page.get_by_role("heading", level=1)).to_have_text("Approve “Team offsite in Lisbon”?")
    expect(fact(page, "Amount")).to_have_text("1,840.50 EUR")
    expect(fact(page, "Reference")).to_have_text("EXP-142")
    expect(page.get_by_text("Nothing is decided until you confirm.")).to_be_visible()
    assert receiver.received == []  # opening the link decided nothing
    assert api_state(live, created["id"])["status"] == "pending"
    assert_accessible(page, "the confirmation page of an e-mail link")
    shot(page, "email-confirm")

    page.get_by_label("Comment").fill("Approved from the e-mail.")
    page.get_by_role("button", name="Yes, approve 1,840.50 EUR").click()

    expect(page).to_have_url(inbox_path(live))  # nothing else waits
    expect(page.get_by_role("status")).to_contain_text("You approved “Team offsite in Lisbon”.")
    page.goto(created["url"])
    expect(page.locator(".request-head .badge")).to_have_text("Approved")
    assert len(receiver.received) == 1
    assert_callback(receiver.received[0], created["id"], "approved", "Approved from the e-mail.")

    # Once decided, the mail's links open a page that says so, and decide nothing.
    for name in ("Approve", "Reject"):
        response = page.goto(links[name])
        assert response.status == 410
        expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used")
        expect(page.get_by_role("button", name=re.compile("^Yes"))).to_have_count(0)
    assert_accessible(page, "an e-mail link that no longer works")
    assert len(receiver.received) == 1


def test_the_requester_sees_their_own_request_but_cannot_decide_it(
    page, live, register_live, make_user, receiver
):
    alice = make_user("alice", email="Alice@Example.com")  # an approver, but the requester here
    created = register_live(requester_email="alice@example.com")

    signed_in(page, live, alice)
    page.goto("/")
    expect(page.get_by_role("link", name="Team offsite in Lisbon")).to_have_count(0)
    expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()

    page.goto(created["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Team offsite in Lisbon")
    expect(page.get_by_text("You asked for this approval, so you cannot decide it")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Reject")).to_have_count(0)
    expect(page.get_by_label("Comment")).to_have_count(0)
    assert_accessible(page, "the requester's view of their request")
    assert receiver.received == []


def test_a_requester_follows_their_requests_in_requested_by_me(
    page, live, register_live, manager, make_user, receiver
):
    alice = make_user("alice", email="Alice@Example.com", approver=False)
    decided = register_live(
        title="Flights to Lisbon", requester_email="alice@example.com", amount="840.00"
    )
    register_live(requester_email="alice@example.com", assignees=["manager@example.com"])
    register_live(title="Bob's laptop", requester_email="bob@example.com")
    client = Client()
    client.force_login(manager)
    client.post(
        f"/approvals/{decided['id']}/decide",
        {"outcome": "rejected", "comment": "Book the earlier flight", "confirmed": "on"},
    )

    signed_in(page, live, alice)
    page.goto("/")
    tab(page, "Requested by me").click()

    expect(page).to_have_url(f"{live.url}/?tab=mine")
    expect(tab(page, "Requested by me")).to_have_attribute("aria-current", "page")
    expect(inbox_rows(page)).to_have_count(2)
    expect(page.get_by_role("columnheader", name="Where it stands")).to_be_visible()
    expect(page.get_by_role("link", name="Bob's laptop")).to_have_count(0)
    rejected = inbox_rows(page).filter(has_text="Flights to Lisbon")
    expect(rejected).to_contain_text("Rejected")
    expect(rejected).to_contain_text("Rejected by manager@example.com")
    expect(rejected).to_contain_text("Workflow: delivered")
    expect(inbox_rows(page).filter(has_text="Team offsite in Lisbon")).to_contain_text("Pending")
    assert_accessible(page, "the inbox's Requested by me")
    shot(page, "inbox-requested-by-me")

    page.get_by_role("link", name="Flights to Lisbon").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Flights to Lisbon")


def test_a_person_without_the_decide_permission_sees_an_empty_inbox_notice(
    page, live, register_live, make_user
):
    viewer = make_user("viewer", approver=False)
    created = register_live()

    signed_in(page, live, viewer)
    page.goto("/")

    expect(page.get_by_text("Your account may not decide approval requests.")).to_be_visible()
    expect(page.get_by_role("link", name="Team offsite in Lisbon")).to_have_count(0)
    assert_accessible(page, "the inbox of someone who may not decide")
    response = page.goto(created["url"])
    assert response.status == 404
    expect(page.get_by_text("Team offsite in Lisbon")).to_have_count(0)
    assert_accessible(page, "the not-found page")


def test_a_wrong_password_is_refused_with_a_message(page, live, manager):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.get_by_label("Username").fill("manager")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    assert_accessible(page, "the sign-in page after a wrong password")


def test_a_decided_request_is_read_only_and_says_who_decided(
    page, live, register_live, manager, make_user, receiver
):
    bob = make_user("bob")
    created = register_live()
    signed_in(page, live, manager)
    page.goto(created["url"])
    page.get_by_label("Comment").fill("Approved in the weekly review.")
    page.get_by_role("button", name="Approve", exact=True).click()
    page.get_by_role("button", name="Yes, approve 1,840.50 EUR").click()
    expect(page).to_have_url(inbox_path(live))
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    signed_in(page, live, bob)
    page.goto(created["url"])

    notice = page.get_by_text("This request was already approved by manager@example.com.")
    expect(notice).to_be_visible()
    expect(page.locator(".badge")).to_have_text("Approved")
    expect(page.locator("blockquote")).to_have_text("Approved in the weekly review.")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Reject")).to_have_count(0)
    expect(page.get_by_label("Comment")).to_have_count(0)
    assert_accessible(page, "a decided request's page")
    shot(page, "request-decided", full_page=True)
    assert len(receiver.received) == 1


def test_two_approvers_each_approve_and_the_workflow_hears_once_with_both(
    page, live, register_live, manager, make_user, receiver
):
    fiona = make_user("fiona")
    fiona.groups.add(Group.objects.create(name="finance"))
    created = register_live(
        title="New laptops for the data team",
        amount="7200",
        required_approvals=2,
        assignees=["manager@example.com"],
        assignee_groups=["finance"],
    )
    signed_in(page, live, manager)
    page.goto(created["url"])
    expect(fact(page, "Approvals")).to_have_text("0 of 2: 2 more needed")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_text("yours is 1 of 2")).to_be_visible()
    page.get_by_role("button", name="Yes, approve 7,200.00 EUR").click()
    expect(page.get_by_text("It waits for 1 more approval(s) from other people")).to_be_visible()
    assert receiver.received == []
    page.get_by_role("button", name="Sign out").click()

    signed_in(page, live, fiona)
    page.goto(created["url"])
    expect(fact(page, "Approvals")).to_have_text("1 of 2: 1 more needed")
    expect(page.locator(".decision")).to_contain_text("Approved by manager@example.com")
    assert_accessible(page, "a request with one of two approvals")
    shot(page, "request-two-approvals", full_page=True)
    page.get_by_label("Comment").fill("Finance agrees.")
    page.get_by_role("button", name="Approve", exact=True).click()
    page.get_by_role("button", name="Yes, approve 7,200.00 EUR").click()
    expect(page.get_by_text("The workflow has received your decision.")).to_be_visible()

    [callback] = receiver.received
    assert (callback.body["decision"], callback.body["decided_by"]) == (
        "approved",
        "fiona@example.com",
    )
    assert [d["decided_by"] for d in callback.body["decisions"]] == [
        "manager@example.com",
        "fiona@example.com",
    ]


def test_a_confirmation_opened_before_another_approver_decided_is_refused(
    new_page, live, register_live, manager, make_user, receiver
):
    created = register_live()
    bob = new_page()
    signed_in(bob, live, make_user("bob"))
    bob.goto(created["url"])
    bob.get_by_label("Comment").fill("Too expensive.")
    bob.get_by_role("button", name="Reject", exact=True).click()
    expect(bob.get_by_role("heading", level=1)).to_have_text("Reject “Team offsite in Lisbon”?")

    manager_page = new_page()
    signed_in(manager_page, live, manager)
    manager_page.goto(created["url"])
    manager_page.get_by_label("Comment").fill("First.")
    manager_page.get_by_role("button", name="Approve", exact=True).click()
    manager_page.get_by_role("button", name="Yes, approve 1,840.50 EUR").click()
    expect(manager_page).to_have_url(inbox_path(live))

    bob.get_by_role("button", name="Yes, reject 1,840.50 EUR").click()

    expect(bob.get_by_role("status")).to_contain_text("Your decision was not recorded.")
    expect(bob.get_by_role("status")).to_contain_text("Your comment was: “Too expensive.”")
    expect(bob.get_by_text("already approved by manager@example.com").first).to_be_visible()
    expect(bob.get_by_role("button", name="Reject")).to_have_count(0)
    assert_accessible(bob, "a request's page refusing a decision someone else made first")
    assert len(receiver.received) == 1
    assert receiver.received[0].body["decision"] == "approved"


def assert_fits_the_width(page) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"horizontal scroll: content {widths[0]}px, view {widths[1]}px"


def assert_on_screen_horizontally(locator) -> None:
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box


def test_on_a_phone_the_inbox_and_the_request_page_fit_the_screen(
    new_page, live, register_live, manager
):
    long_title = "Conference trip: KubeCon Europe, flights, hotel and registration for three"
    created = register_live(
        title=long_title,
        requester_email="alexandra.konstantinopoulou-smith@engineering.example.com",
        amount="128450.75",
        external_id="EXP-2026-000142-PLATFORM-ENGINEERING",
        description="Three engineers; early-bird registration ends on Friday.",
        details={
            "cost_center": "ENG-PLATFORM-INFRASTRUCTURE",
            "booking": "https://travel.example.com/bookings/8f1d3c2a-5b7e-4c1a-9d2f-1234567890ab",
            "lines": [
                {"item": "Flights", "amount": "2400.00"},
                {"item": "Hotel", "amount": "5300.75"},
            ],
        },
    )
    register_live(title="Team lunch", amount=None, currency=None)
    page = new_page(viewport=PHONE)

    sign_in(page, live, "manager", audit=True)
    assert_fits_the_width(page)
    expect(page.get_by_role("link", name=long_title)).to_be_visible()
    assert_on_screen_horizontally(page.get_by_role("link", name="Team lunch"))
    for name in ("Waiting for me", "All pending", "Decided", "Requested by me"):
        assert_on_screen_horizontally(tab(page, name))
    assert_on_screen_horizontally(page.get_by_label(f"Select “{long_title}”"))
    assert_fits_the_width(page)
    assert_accessible(page, "the inbox on a phone")
    shot(page, "phone-inbox")
    page.get_by_text("Search and filter").click()
    assert_on_screen_horizontally(page.get_by_label("Search", exact=True))
    for name in ("Approve selected", "Reject selected"):
        button = page.get_by_role("button", name=name)
        button.scroll_into_view_if_needed()
        assert_on_screen_horizontally(button)
    assert_fits_the_width(page)

    page.get_by_role("link", name=long_title).click()
    expect(page).to_have_url(created["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text(long_title)
    assert_fits_the_width(page)
    assert_accessible(page, "a request's page on a phone")
    shot(page, "phone-request")
    for name in ("Approve", "Reject"):
        button = page.get_by_role("button", name=name, exact=True)
        button.scroll_into_view_if_needed()
        assert_on_screen_horizontally(button)
        expect(button).to_be_in_viewport()
    assert_on_screen_horizontally(page.get_by_label("Comment"))

    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Approve “{long_title}”?")
    assert_fits_the_width(page)
    confirm = page.get_by_role("button", name="Yes, approve 128,450.75 EUR")
    assert_on_screen_horizontally(confirm)
    expect(confirm).to_be_in_viewport()
    assert_accessible(page, "the confirmation on a phone")
    shot(page, "phone-confirm")


def test_the_admin_pages_pass_the_content_security_policy(
    new_page, live, register_live, admin_user
):
    created = register_live()
    page = new_page()
    page.goto("/accounts/login/?next=/admin/")
    page.get_by_label("Username").fill(admin_user.get_username())
    page.get_by_label("Password").fill("password")
    page.get_by_role("button", name="Sign in").click()
    for path in (
        "/admin/",
        "/admin/approvals/approvalrequest/",
        f"/admin/approvals/approvalrequest/{created['id']}/change/",
        "/admin/approvals/auditevent/",
        "/admin/approvals/delegation/",
        "/admin/approvals/personaltoken/",
    ):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
    # The list auditors start from. (Not the change form: axe's own probes there add an inline
    # style, which the Content Security Policy blocks and reports, failing the test.)
    page.goto("/admin/approvals/approvalrequest/")
    assert_accessible(page, "the admin's list of requests")


def test_an_approver_names_a_delegate_for_when_they_are_out_of_office(
    page, new_page, live, register_live, make_user
):
    alice = make_user("alice")
    make_user("bob")
    make_user("carol")
    created = register_live(requester_email="dave@example.com", assignees=["alice@example.com"])
    now = datetime.datetime.now(datetime.UTC)

    def local(moment):  # as a datetime-local input takes it, in the project's time zone (UTC)
        return moment.strftime("%Y-%m-%dT%H:%M")

    sign_in(page, live, "alice")
    page.get_by_role("link", name="Out of office").click()
    expect(page).to_have_url(f"{live.url}/delegations/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Out of office")
    expect(page.get_by_text("Nobody stands in for you now")).to_be_visible()
    assert_accessible(page, "the out-of-office page")

    # A mistake comes back with its message beside the input.
    page.get_by_label("Delegate's e-mail").fill("Alice@Example.com")
    page.get_by_label("Until").fill(local(now + datetime.timedelta(days=3)))
    page.get_by_role("button", name="Name delegate").click()
    expect(page.get_by_role("alert")).to_have_text("You cannot name yourself as your delegate.")
    expect(page.get_by_label("Delegate's e-mail")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "the out-of-office page refusing a delegate")

    page.get_by_label("Delegate's e-mail").fill("bob@example.com")
    page.get_by_label("Note").fill("Back on Monday; Bob knows the offsite budget.")
    page.get_by_role("button", name="Name delegate").click()
    expect(page.get_by_role("status")).to_contain_text("bob@example.com stands in for you until")

    page.get_by_label("Delegate's e-mail").fill("carol@example.com")
    page.get_by_label("From").fill(local(now + datetime.timedelta(days=10)))
    page.get_by_label("Until").fill(local(now + datetime.timedelta(days=12)))
    page.get_by_role("button", name="Name delegate").click()
    expect(page.get_by_role("status")).to_contain_text("carol@example.com will stand in for you")

    mine = page.locator("ul.delegations").first.locator("li")
    expect(mine).to_have_count(2)
    expect(mine.nth(0)).to_contain_text("In force")
    expect(mine.nth(0)).to_contain_text("bob@example.com")
    expect(mine.nth(0)).to_contain_text("Back on Monday")
    expect(mine.nth(1)).to_contain_text("Upcoming")
    expect(mine.nth(1)).to_contain_text("carol@example.com")
    assert_accessible(page, "the out-of-office page with a delegate in force and one upcoming")
    shot(page, "delegations", full_page=True)

    page.get_by_role("button", name="Withdraw (carol@example.com").click()
    expect(page.get_by_role("status")).to_contain_text("carol@example.com no longer stands in")
    expect(mine).to_have_count(1)
    expect(page.get_by_text("withdrawn before it began")).to_be_visible()
    assert_accessible(page, "the out-of-office page after a withdrawal")

    # The delegate sees whom they stand in for, and decides on their behalf.
    bob = new_page()
    sign_in(bob, live, "bob")
    expect(bob.get_by_role("link", name="Team offsite in Lisbon")).to_be_visible()
    bob.get_by_role("link", name="Out of office").click()
    expect(bob.get_by_role("heading", name="You stand in for")).to_be_visible()
    expect(bob.locator("ul.delegations")).to_contain_text("alice@example.com")
    bob.goto(created["url"])
    expect(bob.get_by_text("You decide on behalf of alice@example.com")).to_be_visible()
    assert_accessible(bob, "a request's page for a delegate")
    assert alice.delegations_given.count() == 2


def test_a_person_makes_an_api_token_decides_with_it_and_revokes_it(
    page, new_page, live, register_live, manager, receiver
):
    created = register_live()
    signed_in(page, live, manager)
    page.goto("/")
    page.get_by_role("link", name="API tokens").click()
    expect(page).to_have_url(f"{live.url}/tokens/")
    expect(page.get_by_role("heading", level=1)).to_have_text("API tokens")
    expect(page.get_by_text("You have no tokens yet.")).to_be_visible()
    assert_accessible(page, "the token page")

    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Give the token a name, to know it again in the list."
    )
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "the token page refusing a token without a name")

    page.get_by_label("Name").fill("Expense bot")
    page.get_by_label("Expires after").select_option(label="30 days")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", name="Your new token “Expense bot”")).to_be_visible()
    secret = page.get_by_label("Token", exact=True).input_value()
    assert re.fullmatch(r"apr_[a-z2-9]{12}_[A-Za-z0-9_-]{43}", secret)
    expect(page.locator("ul.tokens li")).to_have_count(1)
    expect(page.locator("ul.tokens li")).to_contain_text("Active")
    expect(page.locator("ul.tokens li")).to_contain_text("last used never")
    assert_accessible(page, "the token page showing a new token")
    shot(page, "tokens", full_page=True)

    # The token decides over HTTP, as a script would; the workflow hears as from the page.
    decided = requests.post(
        f"{live.url}/api/approvals/{created['id']}/decision",
        json={"decision": "approved", "comment": "Approved by my script"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert_callback(receiver.received[0], created["id"], "approved", "Approved by my script")

    page.goto("/tokens/")
    assert secret not in page.content()
    expect(page.locator("ul.tokens li")).not_to_contain_text("last used never")
    page.get_by_role("button", name=re.compile(r"^Revoke")).click()
    expect(page.get_by_role("status")).to_contain_text("is revoked: the API refuses it")
    expect(page.locator("ul.tokens li")).to_contain_text("Revoked")
    expect(page.get_by_role("button", name=re.compile(r"^Revoke"))).to_have_count(0)
    assert_accessible(page, "the token page after a revocation")
    refused = requests.get(
        f"{live.url}/api/approvals?awaiting=me",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert refused.status_code == 401

    phone = new_page(viewport=PHONE)
    signed_in(phone, live, manager)
    phone.goto("/tokens/")
    phone.get_by_label("Name").fill("Phone bot")
    phone.get_by_role("button", name="Create token").click()
    assert_on_screen_horizontally(phone.get_by_label("Token", exact=True))
    assert_fits_the_width(phone)
    assert_accessible(phone, "the token page on a phone")


def test_an_approver_hands_a_request_to_a_colleague_who_then_decides_it(
    page, new_page, live, register_live, make_user
):
    make_user("alice")
    make_user("bob")
    created = register_live(requester_email="dave@example.com", assignees=["alice@example.com"])

    sign_in(page, live, "alice")
    page.goto(created["url"])
    expect(page.get_by_role("button", name="Reassign")).to_be_visible()

    # A refusal comes back beside the input.
    page.get_by_label("Reassign to").fill("Alice@Example.com")
    page.get_by_role("button", name="Reassign").click()
    expect(page.get_by_role("alert")).to_have_text(
        "That is you: enter someone else's e-mail address."
    )
    expect(page.get_by_label("Reassign to")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "a request's page refusing a reassignment")

    page.get_by_label("Reassign to").fill("bob@example.com")
    page.get_by_label("Note").fill("Bob runs the offsite budget this quarter.")
    page.get_by_role("button", name="Reassign").click()
    expect(page.get_by_role("status")).to_contain_text("to bob@example.com")
    expect(page.get_by_text("You handed this request on to someone else")).to_be_visible()
    expect(page.locator("ol.timeline")).to_contain_text(
        "Reassigned by alice@example.com to bob@example.com: “Bob runs the offsite budget"
    )
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    assert_accessible(page, "a request's page after it was handed on")
    shot(page, "request-reassigned", full_page=True)

    bob = new_page()
    sign_in(bob, live, "bob")
    bob.get_by_role("link", name="Team offsite in Lisbon").click()
    expect(bob.get_by_role("button", name="Approve")).to_be_visible()
    expect(bob.get_by_role("button", name="Reassign")).to_be_visible()
    assert_accessible(bob, "a request's page for the person it was handed to")


def test_a_manager_approves_part_of_the_amount_filling_in_the_inputs(
    page, live, register_live, manager, receiver
):
    created = register_live(
        title="Hotel in Porto",
        amount="1000.00",
        inputs=[
            {
                "name": "amount",
                "label": "Approved amount",
                "type": "number",
                "required": True,
                "min": 0,
                "max": "1000.00",
            },
            {
                "name": "cost_center",
                "label": "Cost center",
                "type": "choice",
                "choices": ["R&D", "Sales"],
                "required": True,
            },
            {"name": "pay_on", "label": "Pay on", "type": "date"},
            {
                "name": "receipts",
                "label": "I saw the receipts",
                "type": "boolean",
                "required": True,
            },
        ],
    )
    signed_in(page, live, manager)
    page.goto(created["url"])
    amount = page.get_by_label("Approved amount (of 1,000.00 EUR asked)")
    # Above the maximum, the browser itself refuses to send the form (its `max`).
    expect(amount).to_have_attribute("max", "1000.00")
    page.get_by_label("Cost center").select_option("Sales")
    page.get_by_role("button", name="Approve", exact=True).click()

    expect(page.get_by_role("status")).to_contain_text("Your decision was not recorded")
    expect(page.locator("#id_input_amount_error")).to_have_text("This field is required.")
    expect(page.locator("#id_input_receipts_error")).to_have_text("Tick this box to decide.")
    assert_accessible(page, "a request's page refusing inputs that are not valid")
    shot(page, "request-inputs")

    amount.fill("800.00")
    page.get_by_label("Pay on").fill("2030-06-30")
    page.get_by_label("I saw the receipts").check()
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Approve “Hotel in Porto”?")
    expect(fact(page, "Approved amount (of 1,000.00 EUR asked)")).to_have_text("800.00")
    expect(fact(page, "Cost center")).to_have_text("Sales")
    assert_accessible(page, "the confirmation of an approval with inputs")
    page.get_by_role("button", name="Yes, approve 1,000.00 EUR").click()

    expect(page.get_by_role("status")).to_contain_text("You approved “Hotel in Porto”.")
    (callback,) = receiver.received
    assert callback.body["inputs"] == {
        "amount": "800.00",
        "cost_center": "Sales",
        "pay_on": "2030-06-30",
        "receipts": True,
    }
    assert api_state(live, created["id"])["inputs"] == callback.body["inputs"]


def test_a_person_chooses_the_channels_that_tell_them(page, live, manager, approvals_settings):
    approvals_settings.APPROVALS_GOOGLE_CHAT_AUDIENCE = "123456789012"
    ChatAccount.objects.create(
        channel="google_chat",
        email_key="manager@example.com",
        user_id="users/1",
        conversation="spaces/dm-manager",
    )
    signed_in(page, live, manager)
    page.goto("/")
    page.get_by_role("link", name="Notifications").click()
    expect(page).to_have_url(f"{live.url}/settings/notifications/")
    expect(page.get_by_label("E-mail")).to_be_checked()
    expect(page.get_by_label("Google Chat")).to_be_checked()
    expect(page.get_by_label("Slack")).to_be_disabled()
    assert_accessible(page, "the notifications page")

    page.get_by_label("E-mail").uncheck()
    page.get_by_label("Google Chat").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Keep at least one channel on")
    assert_accessible(page, "the notifications page refusing every channel off")

    page.get_by_label("Google Chat").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Your notice settings are saved.")
    expect(page.get_by_label("E-mail")).not_to_be_checked()
    expect(page.get_by_label("Google Chat")).to_be_checked()
    shot(page, "notifications", full_page=True)
    assert ChannelPreference.objects.get(email_key="manager@example.com").off == ["email"]
