"""End to end: a real headless Chromium, driven by Playwright, against the live server.

Requests are registered over real HTTP with the static API token, people sign in through the
login form and decide with the buttons, and the callback stand-in (`receiver`) sees what the
workflow would receive. Run only these with `pytest -m browser`, skip them with `-m "not browser"`.

Set APPROVER_SHOTS_DIR to a directory to keep full-page screenshots of the pages the tests visit.
"""

import os
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from .conftest import API_TOKEN

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser download is not used
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
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
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


def shot(page, name: str) -> None:
    if SHOTS_DIR:
        Path(SHOTS_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS_DIR) / f"{name}.png"), full_page=True)


def sign_in(page, live, username: str, shot_name: str | None = None) -> None:
    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-" + username)  # make_user's password
    if shot_name:
        shot(page, shot_name)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live.url}/")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


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


def test_a_manager_approves_from_the_inbox_and_the_workflow_receives_the_decision(
    page, live, register_live, manager, receiver
):
    created = register_live(
        external_id="EXP-142",
        description="Two nights for the platform team.",
        details={"cost_center": "ENG", "nights": 2, "lines": [{"item": "Hotel", "eur": "1440"}]},
    )

    sign_in(page, live, "manager", shot_name="login")
    expect(page.get_by_role("heading", name="Waiting for your decision")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Team offsite in Lisbon")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("alice@example.com")
    expect(row).to_contain_text("1,840.50 EUR")
    expect(row).to_contain_text("EXP-142")
    shot(page, "inbox")

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
    expect(detail_value(page, "item")).to_have_text("Hotel")
    expect(detail_value(page, "eur")).to_have_text("1440")
    assert receiver.received == []
    shot(page, "request")

    page.get_by_label("Comment").fill("Fine by me, enjoy Lisbon.")
    page.get_by_role("button", name="Approve").click()

    expect(page).to_have_url(inbox_path(live))
    messages = page.get_by_role("status")
    expect(messages).to_contain_text("You approved “Team offsite in Lisbon”.")
    expect(messages).to_contain_text("The workflow has received your decision.")
    expect(page.get_by_role("link", name="Team offsite in Lisbon")).to_have_count(0)
    expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()
    shot(page, "inbox-after-approval")

    assert len(receiver.received) == 1
    callback = receiver.received[0]
    assert callback.path.endswith("/executions/exec-1/callbacks/approval")
    assert_callback(callback, created["id"], "approved", "Fine by me, enjoy Lisbon.")
    state = api_state(live, created["id"])
    assert (state["status"], state["decided_by"]) == ("approved", "manager@example.com")
    assert state["delivery"]["status"] == "delivered"


def test_a_rejection_without_a_comment_is_refused_then_a_commented_one_is_sent(
    page, live, register_live, manager, receiver
):
    created = register_live()
    sign_in(page, live, "manager")
    page.goto(created["url"])

    page.get_by_role("button", name="Reject").click()

    expect(page.get_by_role("status")).to_contain_text("Your decision was not recorded")
    expect(page.get_by_role("alert")).to_contain_text("a comment is required")
    expect(page.get_by_role("button", name="Reject")).to_be_visible()
    shot(page, "reject-without-comment")
    assert receiver.received == []
    assert api_state(live, created["id"])["status"] == "pending"

    page.get_by_label("Comment").fill("Over the quarter's budget.")
    page.get_by_role("button", name="Reject").click()

    expect(page).to_have_url(inbox_path(live))
    expect(page.get_by_role("status")).to_contain_text("You rejected “Team offsite in Lisbon”.")
    assert len(receiver.received) == 1
    assert_callback(receiver.received[0], created["id"], "rejected", "Over the quarter's budget.")
    assert api_state(live, created["id"])["status"] == "rejected"


def test_the_requester_sees_their_own_request_but_cannot_decide_it(
    page, live, register_live, make_user, receiver
):
    make_user("alice", email="Alice@Example.com")  # an approver, but the requester here
    created = register_live(requester_email="alice@example.com")

    sign_in(page, live, "alice")
    expect(page.get_by_role("link", name="Team offsite in Lisbon")).to_have_count(0)
    expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()

    page.goto(created["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Team offsite in Lisbon")
    expect(page.get_by_text("You asked for this approval, so you cannot decide it")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Reject")).to_have_count(0)
    expect(page.get_by_label("Comment")).to_have_count(0)
    shot(page, "requester-view")
    assert receiver.received == []


def test_a_person_without_the_decide_permission_sees_an_empty_inbox_notice(
    page, live, register_live, make_user
):
    make_user("viewer", approver=False)
    created = register_live()

    sign_in(page, live, "viewer")

    expect(page.get_by_text("Your account may not decide approval requests.")).to_be_visible()
    expect(page.get_by_role("link", name="Team offsite in Lisbon")).to_have_count(0)
    shot(page, "inbox-no-permission")
    response = page.goto(created["url"])
    assert response.status == 404
    expect(page.get_by_text("Team offsite in Lisbon")).to_have_count(0)
    shot(page, "not-found")


def test_a_wrong_password_is_refused_with_a_message(page, live, manager):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.get_by_label("Username").fill("manager")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    shot(page, "login-failed")


def test_a_decided_request_is_read_only_and_says_who_decided(
    page, live, register_live, manager, make_user, receiver
):
    make_user("bob")
    created = register_live()
    sign_in(page, live, "manager")
    page.goto(created["url"])
    page.get_by_label("Comment").fill("Approved in the weekly review.")
    page.get_by_role("button", name="Approve").click()
    expect(page).to_have_url(inbox_path(live))
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, live, "bob")
    page.goto(created["url"])

    notice = page.get_by_text("This request was already approved by manager@example.com.")
    expect(notice).to_be_visible()
    expect(page.locator(".badge")).to_have_text("Approved")
    expect(page.get_by_text("Approved in the weekly review.")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Reject")).to_have_count(0)
    expect(page.get_by_label("Comment")).to_have_count(0)
    shot(page, "request-decided")
    assert len(receiver.received) == 1


def test_a_decision_from_a_page_opened_before_another_approver_decided_is_refused(
    new_page, live, register_live, manager, make_user, receiver
):
    make_user("bob")
    created = register_live()
    bob = new_page()
    sign_in(bob, live, "bob")
    bob.goto(created["url"])
    manager_page = new_page()
    sign_in(manager_page, live, "manager")
    manager_page.goto(created["url"])
    manager_page.get_by_label("Comment").fill("First.")
    manager_page.get_by_role("button", name="Approve").click()
    expect(manager_page).to_have_url(inbox_path(live))

    bob.get_by_label("Comment").fill("Too expensive.")
    bob.get_by_role("button", name="Reject").click()

    expect(bob.get_by_role("status")).to_contain_text("Your decision was not recorded.")
    expect(bob.get_by_role("status")).to_contain_text("Your comment was: “Too expensive.”")
    expect(bob.get_by_text("already approved by manager@example.com").first).to_be_visible()
    expect(bob.get_by_role("button", name="Reject")).to_have_count(0)
    shot(bob, "stale-decision-refused")
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

    sign_in(page, live, "manager", shot_name="phone-login")
    assert_fits_the_width(page)
    expect(page.get_by_role("link", name=long_title)).to_be_visible()
    assert_on_screen_horizontally(page.get_by_role("link", name="Team lunch"))
    assert_fits_the_width(page)
    shot(page, "phone-inbox")

    page.get_by_role("link", name=long_title).click()
    expect(page).to_have_url(created["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text(long_title)
    assert_fits_the_width(page)
    for name in ("Approve", "Reject"):
        button = page.get_by_role("button", name=name)
        button.scroll_into_view_if_needed()
        assert_on_screen_horizontally(button)
        expect(button).to_be_in_viewport()
    assert_on_screen_horizontally(page.get_by_label("Comment"))
    shot(page, "phone-request")


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
    ):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
