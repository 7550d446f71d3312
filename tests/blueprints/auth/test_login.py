"""Signing in: fresh sessions, login CSRF, v1 hashes, uniform failures, throttling, `next`."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from blueprints.auth.routes import SIGN_IN_FAILED
from store import keys
from tests.support.auth import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    PREAUTH_COOKIE,
    Person,
    auth_cookies_set,
    claims_of,
    form_csrf,
    mask,
    put_account,
    set_cookies,
    signed_in,
    spy_on_hashing,
    stored_hash,
)
from tests.support.helpers import WebClient, scan_all

# Django's URLHasAllowedHostAndSchemeTests.test_bad_urls, plus encoded and spaced variants.
BAD_NEXT = [
    "http://example.com",
    "http:///example.com",
    "https://example.com",
    "https://evil",
    "ftp://example.com",
    "//evil",
    "///evil",
    " //evil",
    "\\\\evil",
    "\\\\\\evil",
    "/\\evil",
    "/\\\\/evil",
    "\\/evil",
    "\\//evil",
    "http:/\\/evil",
    "http:\\/evil",
    "http:/\\evil",
    "javascript:alert(1)",
    'javascript:alert("XSS")',
    "\njavascript:alert(x)",
    "java\nscript:alert(x)",
    "\x08//evil",
    "/\t/evil",
    "/%09/evil",
    "/%2F/evil",
    "/%5Cevil",
    "http://testserver\\@example.com",
    "http://otherserver\\@example.com",
    "http:\\\\testserver\\@example.com",
    "http://testserver\\me:pass@example.com",
    "http:999999999",
    "ftp:9999999999",
    "\n",
    "http://[2001:cdba:0000:0000:0000:0000:3257:9652/",
    "http://2001:cdba:0000:0000:0000:0000:3257:9652]/",
    "evil.example/path",
    "",
]
GOOD_NEXT = ["/w/abc/items?x=1", "/", "/w/abc/settings", "/w/a-b_c/items/123?page=2&q=a%20b"]


def _sign_in_form(web: WebClient, path: str = "/login") -> str:
    return web.csrf_from(path)


# --- success, fresh sessions -------------------------------------------------------------------


def test_signing_in_with_any_case_of_the_address_lands_on_the_start_page(app: Any, alice: Person):
    web = WebClient(app.test_client())
    response = web.login("  ALICE@x.com ", alice.password)

    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    cookies = set_cookies(response)
    assert claims_of(cookies[ACCESS_COOKIE].value)["sub"] == alice.user_id
    assert cookies[PREAUTH_COOKIE].cleared  # the pre-session is destroyed on sign-in
    assert "Alice Archer" in web.text(web.get("/"))


def test_signing_in_over_an_existing_session_issues_brand_new_tokens(
    app: Any, alice: Person, bob: Person
):
    """S2: a browser holding the attacker's (bob's) session signs in as the victim (alice)."""
    web = signed_in(app, bob)
    old = claims_of(web.cookie(ACCESS_COOKIE))
    old_csrf_cookie = web.cookie(CSRF_COOKIE)

    # /login redirects a signed-in browser away, so take the pre-session token from /register.
    token = form_csrf(web.text(web.get("/register")), "/register")
    response = web.post("/login", {"email": alice.email, "password": alice.password}, csrf=token)

    assert response.status_code == 303
    new_token = set_cookies(response)[ACCESS_COOKIE].value
    new = claims_of(new_token)
    assert new["sub"] == alice.user_id
    assert new["jti"] != old["jti"] and new["sid"] != old["sid"]
    assert new["csrf"] != old["csrf"]
    assert web.cookie(CSRF_COOKIE) == new["csrf"] != old_csrf_cookie
    assert web.cookie(ACCESS_COOKIE) == new_token


# --- login CSRF (S12) --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/register"])
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost:8080"},
        {"Origin": "https://localhost"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
    ],
    ids=["evil-origin", "other-port", "other-scheme", "fetch-cross-site", "fetch-wins"],
)
def test_cross_site_sign_in_forms_are_refused(
    app: Any, alice: Person, database: Any, path: str, headers: dict[str, str]
):
    web = WebClient(app.test_client())
    before = scan_all(database)
    data = {"email": alice.email, "password": alice.password, "name": "Mallory"}
    if path == "/register":
        data["email"] = "new@x.com"

    response = web.post(path, data, headers=headers)

    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert auth_cookies_set(response) == []
    assert scan_all(database) == before


@pytest.mark.parametrize("path", ["/login", "/register"])
@pytest.mark.parametrize(
    "token", ["missing", "empty", "wrong", "other-browser", "no-cookie"], ids=str
)
def test_sign_in_forms_need_their_own_pre_session_token(
    app: Any, alice: Person, database: Any, path: str, token: str
):
    web = WebClient(app.test_client())
    other = WebClient(app.test_client())
    value: Any = {
        "missing": False,
        "empty": "",
        "wrong": "0" * 64,
        "other-browser": other.csrf_from(path),
    }.get(token)
    if token == "no-cookie":
        value = web.csrf_from(path)
        web.client.delete_cookie(PREAUTH_COOKIE)
    else:
        web.get(path)  # the browser has a pre-session cookie of its own
    before = scan_all(database)
    data = {"email": alice.email, "password": alice.password, "name": "Mallory"}
    if path == "/register":
        data["email"] = "new@x.com"

    response = web.post(path, data, csrf=value)

    assert response.status_code == 403
    assert "expired" in web.text(response)
    assert auth_cookies_set(response) == []
    assert scan_all(database) == before


def test_same_origin_sign_in_with_its_token_succeeds(app: Any, alice: Person):
    web = WebClient(app.test_client())
    response = web.login(
        alice.email,
        alice.password,
        headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code == 303
    assert sorted(auth_cookies_set(response)) == [ACCESS_COOKIE, CSRF_COOKIE]


# --- v1 hashes (S15) and damaged hashes (S16) -------------------------------------------------


def test_a_v1_pbkdf2_hash_verifies_and_is_upgraded_on_sign_in(app: Any, database: Any):
    v1_hash = generate_password_hash("v1 password of carol", method="pbkdf2:sha256:260000")
    user_id = put_account(database, "carol@x.com", v1_hash, name="Carol Chen")
    web = WebClient(app.test_client())

    assert web.login("carol@x.com", "wrong password for carol").status_code == 400
    assert stored_hash(database, user_id) == v1_hash  # a failure changes nothing

    assert web.login("carol@x.com", "v1 password of carol").status_code == 303
    upgraded = stored_hash(database, user_id)
    assert upgraded.startswith(app.config["PASSWORD_HASH_METHOD"] + "$")
    profile = database.get(keys.user(user_id), consistent=True)
    assert set(profile) == {"PK", "SK", "email", "name", "passwordHash"}  # nothing else touched

    again = WebClient(app.test_client())
    assert again.login("carol@x.com", "v1 password of carol").status_code == 303
    assert stored_hash(database, user_id) == upgraded  # already current: not rewritten


@pytest.mark.parametrize(
    "damaged",
    [
        "plain$x$y",
        "garbage",
        "",
        "pbkdf2:sha256:notanumber$salt$hash",
        "pbkdf2:nosuchdigest:1000$salt$hash",
        "scrypt:3:8:1$salt$hash",
        "md5$$5f4dcc3b5aa765d61d8327deb882cf99",
    ],
)
def test_a_damaged_stored_hash_fails_like_a_wrong_password(
    app: Any, alice: Person, database: Any, damaged: str, monkeypatch: pytest.MonkeyPatch
):
    user_id = put_account(database, "carol@x.com", damaged)
    web = WebClient(app.test_client())
    reference = web.login(alice.email, "not alice's password at all")
    token = web.csrf_from("/login")
    derivations = spy_on_hashing(monkeypatch)

    response = web.post("/login", {"email": "carol@x.com", "password": "any pw"}, csrf=token)

    assert len(derivations) == 1  # as long as a wrong password takes
    assert response.status_code == reference.status_code == 400
    assert mask(web.text(response), "carol@x.com") == mask(web.text(reference), alice.email)
    assert SIGN_IN_FAILED in web.text(response)
    if damaged:
        assert stored_hash(database, user_id) == damaged


# --- uniform failures (S18) --------------------------------------------------------------------


def test_unknown_address_and_wrong_password_look_identical_and_cost_one_hash_each(
    app: Any, alice: Person, monkeypatch: pytest.MonkeyPatch
):
    unknown_browser = WebClient(app.test_client())
    wrong_browser = WebClient(app.test_client())
    unknown_token = unknown_browser.csrf_from("/login")
    wrong_token = wrong_browser.csrf_from("/login")
    derivations = spy_on_hashing(monkeypatch)

    unknown = unknown_browser.post(
        "/login", {"email": "nobody@x.com", "password": "a guess of a password"}, csrf=unknown_token
    )
    unknown_count = len(derivations)
    wrong = wrong_browser.post(
        "/login", {"email": alice.email, "password": "a guess of a password"}, csrf=wrong_token
    )

    assert unknown_count == 1
    assert len(derivations) - unknown_count == 1
    assert unknown.status_code == wrong.status_code == 400
    assert dict(unknown.headers).keys() == dict(wrong.headers).keys()
    assert mask(unknown_browser.text(unknown), "nobody@x.com") == mask(
        wrong_browser.text(wrong), alice.email
    )
    assert SIGN_IN_FAILED in wrong_browser.text(wrong)


# --- throttling (S20): tests/blueprints/auth/test_lockout.py -----------------------------------


# --- next (S32) --------------------------------------------------------------------------------


def test_sign_in_never_redirects_off_site(app: Any, alice: Person):
    """Every bad value, through both ways /login redirects: after signing in, and when a
    signed-in browser opens /login. (One test, one table: the corpus is long.)"""
    wrong: dict[str, tuple[str, str]] = {}
    for target in BAD_NEXT:
        web = WebClient(app.test_client())
        web.get("/login", query_string={"next": target})
        signed = web.post(
            "/login",
            {"email": alice.email, "password": alice.password},
            csrf=web.csrf(),
            query_string={"next": target},
        )
        already = web.get("/login", query_string={"next": target})
        if (signed.status_code, already.status_code) != (303, 302):
            wrong[target] = (str(signed.status_code), str(already.status_code))
        elif signed.headers["Location"] != "/" or already.headers["Location"] != "/":
            wrong[target] = (signed.headers["Location"], already.headers["Location"])
    assert wrong == {}


def test_registration_never_redirects_off_site(app: Any):
    wrong: dict[str, str] = {}
    for number, target in enumerate(BAD_NEXT):
        web = WebClient(app.test_client())
        response = web.post(
            "/register",
            {"email": f"new{number}@x.com", "name": "New", "password": "a long enough password"},
            form_page="/register",
            query_string={"next": target},
        )
        if response.status_code != 303 or response.headers["Location"] != "/":
            wrong[target] = f"{response.status_code} {response.headers.get('Location')}"
    assert wrong == {}


@pytest.mark.parametrize("target", GOOD_NEXT)
def test_a_same_site_path_is_kept_exactly(app: Any, alice: Person, target: str):
    web = WebClient(app.test_client())
    form = web.get("/login", query_string={"next": target})
    assert form.status_code == 200
    response = web.post(
        "/login",
        {"email": alice.email, "password": alice.password},
        csrf=web.csrf(),
        query_string={"next": target},
    )
    assert response.headers["Location"] == target

    registering = WebClient(app.test_client())
    created = registering.post(
        "/register",
        {"email": "new@x.com", "name": "New", "password": "a long enough password"},
        query_string={"next": target},
    )
    assert created.headers["Location"] == target
