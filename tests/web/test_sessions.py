"""Sessions: cookie attributes, expiry and refresh, bad and forged cookies, forms across refresh."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest

from store import keys
from tests.support.app import make_app
from tests.support.auth import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    PREAUTH_COOKIE,
    Person,
    claims_of,
    dynamodb_calls,
    form_csrf,
    form_csrf_values,
    mint_token,
    register,
    set_access_cookie,
    set_cookies,
    signed_in,
)
from tests.support.helpers import WebClient, scan_all


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- S1: cookie attributes ---------------------------------------------------------------------


class _HttpsWebClient(WebClient):
    """A browser on https://localhost, as a production deployment is reached."""

    def get(self, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", "https://localhost")
        return super().get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", "https://localhost")
        return super().post(path, data, **kwargs)


def test_production_cookies_are_secure_httponly_and_same_site(ddb_client: Any, table_name: str):
    app = make_app(
        ddb_client,
        table_name,
        APP_ENV="production",
        JWT_COOKIE_SECURE=True,
        SESSION_COOKIE_SECURE=True,
    )
    # Production without PUBLIC_URL mails no links: this account stays unconfirmed.
    person = register(app, "alice@x.com", "Alice Archer", confirmed=False)
    web = _HttpsWebClient(app.test_client())

    form = web.get("/login")
    preauth = set_cookies(form)[PREAUTH_COOKIE]
    response = web.post(
        "/login",
        {"email": person.email, "password": person.password},
        headers={"Origin": "https://localhost"},
    )

    assert response.status_code == 303
    cookies = set_cookies(response)
    access, csrf = cookies[ACCESS_COOKIE], cookies[CSRF_COOKIE]
    assert {"secure", "httponly"} <= set(access.attributes)
    assert access.attributes["samesite"] in ("Lax", "Strict")
    assert access.attributes["path"] == "/"
    assert "domain" not in access.attributes
    assert "max-age" not in access.attributes and "expires" not in access.attributes
    assert "secure" in csrf.attributes and "httponly" not in csrf.attributes
    assert csrf.attributes["samesite"] in ("Lax", "Strict")
    assert "domain" not in csrf.attributes
    assert {"secure", "httponly"} <= set(preauth.attributes)
    assert preauth.attributes["samesite"] in ("Lax", "Strict")
    flash_cookie = set_cookies(web.get("/")).get("session")
    for cookie in filter(None, [flash_cookie, cookies.get("session")]):
        assert {"secure", "httponly"} <= set(cookie.attributes)
        assert cookie.attributes.get("samesite") in ("Lax", "Strict")
    assert "max-age=63072000" in response.headers["Strict-Transport-Security"]


def test_development_cookies_only_drop_secure(web: WebClient, app: Any):
    assert app.config["APP_ENV"] == "development"
    response = web.register("alice@x.com")
    access = set_cookies(response)[ACCESS_COOKIE]
    assert "secure" not in access.attributes
    assert "httponly" in access.attributes and access.attributes["samesite"] == "Lax"
    assert "Strict-Transport-Security" not in response.headers


# --- S4: expiry and refresh --------------------------------------------------------------------


def test_an_expired_session_is_sent_to_sign_in_with_its_cookies_cleared(app: Any, alice: Person):
    web = WebClient(app.test_client())
    set_access_cookie(web.client, mint_token(app, alice.user_id, expires=timedelta(seconds=-1)))

    response = web.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2F"
    assert set_cookies(response)[ACCESS_COOKIE].cleared


def test_a_session_in_its_refresh_window_gets_a_new_token_with_the_same_sid_and_csrf(
    app: Any, alice: Person
):
    web = WebClient(app.test_client())
    auth_time = time.time() - 3600
    old = mint_token(
        app,
        alice.user_id,
        expires=app.config["JWT_REFRESH_WITHIN"] / 2,
        sid="session-1",
        csrf="csrf-1",
        auth_time=auth_time,
        email=alice.email,
        name=alice.name,
    )
    set_access_cookie(web.client, old)

    response = web.get("/")

    assert response.status_code in (200, 302)
    assert response.headers.get("Location", "/").startswith("/") and "login" not in (
        response.headers.get("Location", "")
    )
    new = claims_of(set_cookies(response)[ACCESS_COOKIE].value)
    assert new["sid"] == "session-1" and new["csrf"] == "csrf-1"
    assert new["sub"] == alice.user_id and new["auth_time"] == int(auth_time)
    assert new["exp"] > claims_of(old)["exp"]
    assert set_cookies(response)[CSRF_COOKIE].value == "csrf-1"


def test_a_session_outside_its_refresh_window_keeps_its_token(app: Any, alice: Person):
    web = WebClient(app.test_client())
    set_access_cookie(web.client, mint_token(app, alice.user_id, expires=timedelta(minutes=15)))

    response = web.get("/")

    assert response.status_code in (200, 302)
    assert "login" not in response.headers.get("Location", "")
    assert ACCESS_COOKIE not in set_cookies(response)


def test_a_session_past_the_absolute_cap_is_signed_out_not_refreshed(app: Any, alice: Person):
    max_age = app.config["JWT_SESSION_MAX_AGE"].total_seconds()
    web = WebClient(app.test_client())
    set_access_cookie(
        web.client,
        mint_token(
            app, alice.user_id, expires=timedelta(minutes=5), auth_time=time.time() - max_age - 5
        ),
    )

    response = web.get("/")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert set_cookies(response)[ACCESS_COOKIE].cleared


def test_a_refresh_near_the_cap_never_outlives_it(app: Any, alice: Person):
    max_age = app.config["JWT_SESSION_MAX_AGE"].total_seconds()
    auth_time = time.time() - max_age + 300  # five minutes of the session left
    web = WebClient(app.test_client())
    set_access_cookie(
        web.client,
        mint_token(app, alice.user_id, expires=timedelta(minutes=2), auth_time=auth_time),
    )

    response = web.get("/")

    new = claims_of(set_cookies(response)[ACCESS_COOKIE].value)
    assert new["exp"] <= int(auth_time) + max_age + 1

    last_minute = WebClient(app.test_client())
    set_access_cookie(
        last_minute.client,
        mint_token(
            app,
            alice.user_id,
            expires=timedelta(seconds=30),
            auth_time=time.time() - max_age + 30,
        ),
    )
    response = last_minute.get("/")
    assert "login" not in response.headers.get("Location", "")
    assert ACCESS_COOKIE not in set_cookies(response)  # not worth a token: it ends anyway


# --- S5: bad cookies read as signed out ---------------------------------------------------------


def _bad_tokens(app: Any, person: Person) -> dict[str, str]:
    claims = claims_of(mint_token(app, person.user_id))
    return {
        "expired": mint_token(app, person.user_id, expires=timedelta(seconds=-5)),
        "garbage": "garbage",
        "other-key": pyjwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256"),
        "truncated": mint_token(app, person.user_id)[:-10],
        "not-a-jwt": "a.b.c",
    }


def _assert_signed_out_answer(response: Any) -> None:
    assert response.status_code < 500
    if response.mimetype == "application/json":
        assert "msg" not in response.get_json()


@pytest.mark.parametrize("path", ["/login", "/register", "/healthz", "/static/style.css"])
def test_a_bad_cookie_on_a_public_page_is_cleared_and_the_page_served(
    app: Any, alice: Person, path: str
):
    for kind, token in _bad_tokens(app, alice).items():
        web = WebClient(app.test_client())
        set_access_cookie(web.client, token)

        response = web.get(path)

        assert response.status_code == 200, kind
        _assert_signed_out_answer(response)
        assert set_cookies(response)[ACCESS_COOKIE].cleared, kind
        if path == "/healthz":
            assert response.get_json()["status"] == "ok"
        if response.mimetype == "text/html":
            assert "Alice Archer" not in web.text(response)
        response.close()


def test_a_bad_cookie_on_a_signed_in_page_redirects_to_sign_in(app: Any, alice: Person):
    for kind, token in _bad_tokens(app, alice).items():
        web = WebClient(app.test_client())
        set_access_cookie(web.client, token)

        response = web.get("/")

        assert response.status_code == 302, kind
        assert response.headers["Location"] == "/login?next=%2F"
        assert set_cookies(response)[ACCESS_COOKIE].cleared


def test_a_bad_cookie_never_blocks_signing_in_or_out(app: Any, alice: Person):
    for kind, token in _bad_tokens(app, alice).items():
        web = WebClient(app.test_client())
        set_access_cookie(web.client, token)
        assert web.login(alice.email, alice.password).status_code == 303, kind

        stale = WebClient(app.test_client())
        set_access_cookie(stale.client, token)
        response = stale.client.post("/logout", data={"csrf_token": "anything"})
        _assert_signed_out_answer(response)
        assert response.status_code in (303, 400), kind


# --- S6: forged tokens -------------------------------------------------------------------------


def _forgeries(app: Any, victim: Person, attacker: Person) -> dict[str, str]:
    genuine = mint_token(app, attacker.user_id, email=attacker.email, name=attacker.name)
    header, payload, signature = genuine.split(".")
    as_victim = {**claims_of(genuine), "sub": victim.user_id, "email": victim.email}
    return {
        "alg-none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(as_victim)}.",
        "alg-none-signed": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(as_victim)}.{signature}",
        "wrong-key": pyjwt.encode(as_victim, "guessed-secret-" + "z" * 40, algorithm="HS256"),
        "modified-payload": f"{header}.{_b64(as_victim)}.{signature}",
        "hs512-wrong-key": pyjwt.encode(as_victim, "guessed-secret-" + "z" * 60, "HS512"),
    }


def test_forged_tokens_are_signed_out_and_the_victim_is_never_looked_up(
    app: Any, alice: Person, bob: Person, database: Any
):
    for kind, token in _forgeries(app, victim=alice, attacker=bob).items():
        web = WebClient(app.test_client())
        before = scan_all(database)
        with dynamodb_calls(database.client) as calls:
            set_access_cookie(web.client, token)
            home = web.get("/")
            set_access_cookie(web.client, token)
            login_page = web.get("/login")
            set_access_cookie(web.client, token)
            sign_out = web.client.post("/logout", data={"csrf_token": claims_of(token)["csrf"]})

        assert home.status_code == 302 and home.headers["Location"].startswith("/login"), kind
        assert login_page.status_code == 200, kind
        assert "Alice Archer" not in web.text(login_page), kind
        assert sign_out.status_code in (303, 400), kind
        assert alice.user_id not in repr(calls), kind
        assert scan_all(database) == before, kind


# --- S13: forms across refresh -----------------------------------------------------------------


def test_a_form_opened_before_an_implicit_refresh_still_posts(
    app: Any, alice: Person, database: Any
):
    web = WebClient(app.test_client())
    auth_time = time.time() - 600

    def token(expires: timedelta) -> str:
        return mint_token(
            app,
            alice.user_id,
            expires=expires,
            sid="sid-a",
            csrf="csrf-a",
            auth_time=auth_time,
            email=alice.email,
            name=alice.name,
        )

    set_access_cookie(web.client, token(timedelta(minutes=15)))
    form_page = web.get("/register")  # any page with the sign-out form in its header
    form_csrf_value = form_csrf(web.text(form_page), "/logout")
    assert form_csrf_value == "csrf-a"

    # Time passes: the same session's token is now inside its refresh window.
    set_access_cookie(web.client, token(app.config["JWT_REFRESH_WITHIN"] / 2))
    refreshed = web.get("/")
    assert ACCESS_COOKIE in set_cookies(refreshed)

    response = web.client.post("/logout", data={"csrf_token": form_csrf_value})

    assert response.status_code == 303
    assert database.get(keys.revoked_session("sid-a"), consistent=True) is not None


def test_a_stale_form_after_signing_in_again_keeps_what_was_typed_and_saves_nothing(
    app: Any, alice: Person, database: Any
):
    web = signed_in(app, alice)
    stale = web.cookie(CSRF_COOKIE)
    # Signing in again (say, in another tab) starts a new session with a new CSRF value.
    token = form_csrf(web.text(web.get("/register")), "/register")
    assert web.post("/login", {"email": alice.email, "password": alice.password}, csrf=token)
    current = claims_of(web.cookie(ACCESS_COOKIE))
    assert current["csrf"] != stale
    before = scan_all(database)

    response = web.client.post(
        "/logout",
        data={"csrf_token": stale, "title": "My typed title", "notes": 'Notes with <b>"quotes"'},
        # A browser says where its form came from; only then is the form offered again.
        headers={"Sec-Fetch-Site": "same-origin"},
    )

    page = web.text(response)
    assert response.status_code == 400
    assert "This form had expired, so nothing was saved" in page
    assert 'value="My typed title"' in page
    assert "Notes with &lt;b&gt;&#34;quotes&#34;" in page
    assert 'value="Notes with &lt;b&gt;&#34;quotes&#34;"' in page
    assert set(form_csrf_values(page, "/logout")) == {current["csrf"]}
    assert scan_all(database) == before

    again = web.client.post("/logout", data={"csrf_token": current["csrf"]})
    assert again.status_code == 303
    assert database.get(keys.revoked_session(current["sid"]), consistent=True) is not None
