"""Request and response hardening: `next`, cross-site writes, pre-session tokens, headers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.blueprints.auth.test_login import BAD_NEXT, GOOD_NEXT
from tests.support.app import make_app
from tests.support.auth import (
    ACCESS_COOKIE,
    PREAUTH_COOKIE,
    Person,
    assert_html_security_headers,
    csp_directives,
    set_cookies,
    signed_in,
)
from tests.support.helpers import WebClient, scan_all
from web.security import CONTENT_SECURITY_POLICY, preauth_csrf_token, safe_next

# --- S32: safe_next ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", BAD_NEXT, ids=repr)
def test_safe_next_refuses_anything_but_a_same_site_path(target: str):
    assert safe_next(target) == "/"
    assert safe_next(target, default="/w/x/items") == "/w/x/items"


@pytest.mark.parametrize("target", GOOD_NEXT)
def test_safe_next_keeps_a_same_site_path_exactly(target: str):
    assert safe_next(target) == target


@pytest.mark.parametrize("target", [None, 42, b"/bytes"])
def test_safe_next_refuses_what_is_not_text(target: Any):
    assert safe_next(target) == "/"


# --- cross-site writes (S12 for signed-in forms) -----------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "CROSS-SITE"},
    ],
)
def test_a_cross_site_post_is_refused_even_with_the_right_csrf_value(
    app: Any, alice: Person, database: Any, headers: dict[str, str]
):
    web = signed_in(app, alice)
    before = scan_all(database)

    response = web.post("/logout", form_page="/register", headers=headers)

    assert response.status_code == 403
    assert "another site" in web.text(response)
    assert scan_all(database) == before
    assert web.get("/").status_code in (200, 302)
    assert "login" not in web.get("/").headers.get("Location", "")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://localhost"},
        {"Origin": "http://localhost/"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    ],
    ids=["none", "origin", "origin-slash", "fetch-same-origin", "fetch-none", "origin-null"],
)
def test_a_same_site_post_with_the_right_value_goes_through(
    app: Any, alice: Person, headers: dict[str, str]
):
    """``Origin: null`` is let through with ``Sec-Fetch-Site: same-origin`` (our invite pages'
    no-referrer policy makes browsers send it; alone it is refused: test_resend_origin.py);
    the CSRF value still has to match."""
    web = signed_in(app, alice)
    assert web.post("/logout", form_page="/register", headers=headers).status_code == 303


def test_public_url_is_the_origin_forms_must_come_from(ddb_client: Any, table_name: str):
    app = make_app(ddb_client, table_name, PUBLIC_URL="https://team.example.com")
    web = WebClient(app.test_client())
    data = {"email": "a@x.com", "name": "A", "password": "a long enough password"}
    assert web.post("/register", data, headers={"Origin": "http://localhost"}).status_code == 403
    response = web.post("/register", data, headers={"Origin": "https://team.example.com"})
    assert response.status_code == 303


# --- pre-session tokens ------------------------------------------------------------------------


def test_the_pre_session_token_is_a_signature_of_a_random_cookie(app: Any):
    first, second = WebClient(app.test_client()), WebClient(app.test_client())
    page = first.get("/login")
    nonce = set_cookies(page)[PREAUTH_COOKIE]
    token = first.csrf()

    assert len(nonce.value) >= 32 and "httponly" in nonce.attributes
    assert nonce.value not in token  # the field is not a copy of the cookie
    assert first.csrf_from("/register") == token  # one pre-session per browser
    assert PREAUTH_COOKIE not in set_cookies(first.get("/register"))
    assert second.csrf_from("/login") != token


def test_an_oversized_pre_session_cookie_is_replaced(app: Any):
    web = WebClient(app.test_client())
    web.client.set_cookie(PREAUTH_COOKIE, "x" * 500, domain="localhost")
    page = web.get("/login")
    assert len(set_cookies(page)[PREAUTH_COOKIE].value) < 128
    assert web.login("nobody@x.com", "a long enough password").status_code == 400


def test_a_pre_session_token_is_bound_to_the_secret_key(ddb_client: Any, table_name: str):
    one = make_app(ddb_client, table_name)
    other = make_app(ddb_client, table_name, SECRET_KEY="another-secret-" + "k" * 40)
    cookie = {"Cookie": f"{PREAUTH_COOKIE}={'n' * 43}"}
    with one.test_request_context(headers=cookie):
        mine = preauth_csrf_token()
    with other.test_request_context(headers=cookie):
        theirs = preauth_csrf_token()
    assert mine != theirs and len(mine) == 64


# --- S34: headers ------------------------------------------------------------------------------


def test_the_content_security_policy_allows_no_inline_script_or_framing():
    policy = csp_directives(CONTENT_SECURITY_POLICY)
    script = policy.get("script-src", policy["default-src"])
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    assert policy["frame-ancestors"] in (["'none'"], ["'self'"])
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] in (["'none'"], ["'self'"])
    assert policy["form-action"] == ["'self'"]


def test_public_pages_carry_the_headers_and_may_be_cached_by_the_browser_only(
    web: WebClient,
):
    for path in ("/login", "/register", "/no-such-page"):
        response = web.get(path)
        assert response.mimetype == "text/html"
        assert_html_security_headers(response, production=False)


def test_signed_in_pages_are_never_stored(app: Any, alice: Person):
    web = signed_in(app, alice)
    for path in ("/", "/register", "/no-such-page", "/logout"):
        response = web.get(path)
        if response.mimetype == "text/html" and "Alice Archer" in web.text(response):
            assert response.headers.get("Cache-Control") == "no-store", path


def test_hsts_is_sent_only_in_production(ddb_client: Any, table_name: str):
    production = make_app(ddb_client, table_name, APP_ENV="production", JWT_COOKIE_SECURE=True)
    response = production.test_client().get("/login", base_url="https://localhost")
    assert_html_security_headers(response, production=True)
    assert ACCESS_COOKIE not in set_cookies(response)


def test_responses_that_start_or_end_a_session_are_never_stored(app: Any, alice: Person):
    web = WebClient(app.test_client())
    assert web.login(alice.email, alice.password).headers["Cache-Control"] == "no-store"
    assert web.logout().headers["Cache-Control"] == "no-store"


def test_a_post_that_needs_sign_in_returns_to_the_form_page_it_came_from(web):
    response = web.client.post(
        "/w/abc/items/new",
        data={"title": "x"},
        headers={"Referer": "http://localhost/w/abc/items?status=open"},
    )

    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=%2Fw%2Fabc%2Fitems%3Fstatus%3Dopen"


def test_same_site_path_keeps_only_this_sites_referers(app):
    from web.security import same_site_path

    with app.test_request_context("/", base_url="http://localhost"):
        assert same_site_path("http://localhost/w/abc/items?x=1") == "/w/abc/items?x=1"
        assert same_site_path("https://evil.example/w/abc/items") == "/"
        assert same_site_path("http://localhost//evil.example") == "/"
        assert same_site_path(None) == "/"
