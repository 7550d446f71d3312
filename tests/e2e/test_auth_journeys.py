"""Accounts as a person sees them in Chromium: register, sign out, sign in, mistakes, stale
cookies, and a v1 account. Each test has its own table and gunicorn (see conftest.py)."""

from __future__ import annotations

import re
import time
import uuid

import jwt
from playwright.sync_api import Page, expect

from devtools.live_server import LiveServer
from tests.support.browser import PageFactory

PASSWORD = "a long enough test password"
COOKIE = "access_token_cookie"
# A v1 account's first sign-in may pass through the "preparing your workspace" page.
MIGRATION_TIMEOUT_MS = 30_000


def unique_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def register(page: Page, email: str, name: str, password: str = PASSWORD) -> None:
    page.goto("/register")
    expect(page.get_by_role("heading", level=1)).to_have_text("Create an account")
    form = page.get_by_role("form", name="Create an account")
    form.get_by_label("E-mail").fill(email)
    form.get_by_label("Name").fill(name)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Create account").click()


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    if not re.search(r"/login(\?|$)", page.url):
        page.goto("/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    form = page.get_by_role("form", name="Sign in")
    form.get_by_label("E-mail").fill(email)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()


def nav(page: Page):  # noqa: ANN201 - a Locator
    return page.get_by_role("navigation", name="Main")


def expect_signed_in(page: Page, name: str, timeout: float = 10_000) -> None:
    expect(nav(page).get_by_role("button", name="Sign out")).to_be_visible(timeout=timeout)
    expect(nav(page)).to_contain_text(name)
    expect(page).not_to_have_url(re.compile(r"/(login|register)(\?|$)"))


def expect_signed_out_on_login(page: Page) -> None:
    expect(page).to_have_url(re.compile(r"/login(\?|$)"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(nav(page).get_by_role("link", name="Sign in")).to_be_visible()
    expect(nav(page).get_by_role("button", name="Sign out")).to_have_count(0)


def sign_out(page: Page) -> None:
    nav(page).get_by_role("button", name="Sign out").click()
    expect_signed_out_on_login(page)


def assert_quiet(new_page: PageFactory) -> None:
    assert new_page.dialogs == [], "no page should open a dialog"
    assert new_page.page_errors == [], "no page should raise a script error"


def test_register_sign_out_and_sign_in_again(page: Page, new_page: PageFactory) -> None:
    email = unique_email("ada")

    register(page, email, "Ada Lovelace")
    expect_signed_in(page, "Ada Lovelace")
    expect(page.get_by_role("status")).to_contain_text("Welcome, Ada Lovelace")
    access = [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert access and access[0]["httpOnly"], "the session lives in an HttpOnly cookie"

    sign_out(page)
    page.goto("/")
    expect_signed_out_on_login(page)

    sign_in(page, email)
    expect_signed_in(page, "Ada Lovelace")
    assert_quiet(new_page)


def test_sign_out_says_so(page: Page, new_page: PageFactory) -> None:
    register(page, unique_email("alan"), "Alan Turing")
    expect_signed_in(page, "Alan Turing")
    sign_out(page)
    expect(page.get_by_role("status")).to_contain_text("You have signed out", timeout=2_000)
    assert_quiet(new_page)


def test_wrong_password_and_unknown_email_show_one_generic_message(
    page: Page, new_page: PageFactory
) -> None:
    email = unique_email("grace")
    register(page, email, "Grace Hopper")
    expect_signed_in(page, "Grace Hopper")

    stranger = new_page()
    sign_in(stranger, email, "not the right password")
    alert = stranger.get_by_role("alert")
    expect(alert).to_be_visible()
    wrong_password = alert.inner_text().strip()
    expect_signed_out_on_login(stranger)
    expect(stranger.get_by_label("E-mail")).to_have_value(email)
    expect(stranger.get_by_label("Password")).to_have_value("")

    sign_in(stranger, unique_email("nobody"), "not the right password")
    expect(alert).to_be_visible()
    unknown_email = alert.inner_text().strip()

    assert wrong_password == unknown_email, "the two mistakes must read the same"
    assert "password" in wrong_password.lower()
    expect(stranger.get_by_role("alert")).to_have_count(1)

    sign_in(stranger, email)
    expect_signed_in(stranger, "Grace Hopper")
    assert_quiet(new_page)


def _token(secret: str, *, expired: bool) -> str:
    now = int(time.time())
    sid = str(uuid.uuid4())
    moment = now - 3600 if expired else now
    claims = {
        "sub": uuid.uuid4().hex,
        "type": "access",
        "fresh": False,
        "jti": sid,
        "sid": sid,
        "csrf": str(uuid.uuid4()),
        "auth_time": moment,
        "iat": moment,
        "nbf": moment,
        "exp": moment + 900,
        "name": "Mallory",
        "email": "mallory@example.com",
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def test_stale_or_garbage_cookie_reads_as_signed_out(
    live_server: LiveServer, new_page: PageFactory
) -> None:
    owner = new_page()
    email = unique_email("mary")
    register(owner, email, "Mary Jackson")
    expect_signed_in(owner, "Mary Jackson")

    cookies = {
        "garbage": "not-a-jwt",
        "forged": _token("another secret " + "x" * 40, expired=False),
        "expired": _token(live_server.secret_key, expired=True),
    }
    for kind, value in cookies.items():
        person = new_page()
        person.context.add_cookies([{"name": COOKIE, "value": value, "url": live_server.url}])

        response = person.goto("/login")
        assert response is not None and response.status == 200, f"{kind}: /login must render"
        expect_signed_out_on_login(person)

        person.goto("/")
        expect_signed_out_on_login(person)
        assert "next=%2F" in person.url or person.url.endswith("/login"), person.url

        # The stale cookie must not get in the way of signing in for real.
        sign_in(person, email)
        expect_signed_in(person, "Mary Jackson")
    assert_quiet(new_page)


def test_cookie_of_a_signed_out_session_no_longer_signs_in(
    live_server: LiveServer, new_page: PageFactory
) -> None:
    page = new_page()
    register(page, unique_email("kath"), "Katherine Johnson")
    expect_signed_in(page, "Katherine Johnson")
    old = [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert old, "signing in sets the access cookie"

    sign_out(page)

    replay = new_page()
    replay.context.add_cookies([{"name": COOKIE, "value": old[0]["value"], "url": live_server.url}])
    replay.goto("/")
    expect_signed_out_on_login(replay)
    assert_quiet(new_page)


def test_v1_account_from_legacy_seed_signs_in(
    live_server: LiveServer, page: Page, new_page: PageFactory
) -> None:
    seeded = live_server.run_flask(
        "legacy", "seed", "--items", "5", "--settings", "2", "--members", "2"
    ).stdout
    password = re.search(r"password for every account: (.+)", seeded)
    assert password, seeded
    accounts = re.findall(r"^\s+(\S+@\S+)\s+(.+?)\s{2,}(owner|admin|member)\s*$", seeded, re.M)
    assert accounts, seeded
    email, name, _role = accounts[0]

    sign_in(page, email, password.group(1).strip())
    expect_signed_in(page, name, timeout=MIGRATION_TIMEOUT_MS)
    assert_quiet(new_page)
