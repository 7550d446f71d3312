"""Signing out: POST with CSRF only, cookies cleared, the session revoked on the server."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from store import keys
from tests.support.auth import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    Person,
    claims_of,
    dynamodb_calls,
    mint_token,
    set_access_cookie,
    set_cookies,
    signed_in,
)
from tests.support.helpers import WebClient, scan_all


def test_signing_out_clears_the_cookies_and_revokes_the_session(
    app: Any, alice: Person, database: Any
):
    web = signed_in(app, alice)
    token = web.cookie(ACCESS_COOKIE)
    claims = claims_of(token)

    response = web.logout()

    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    cookies = set_cookies(response)
    assert cookies[ACCESS_COOKIE].cleared and cookies[CSRF_COOKIE].cleared
    assert web.cookie(ACCESS_COOKIE) is None
    revoked = database.get(keys.revoked_session(claims["sid"]), consistent=True)
    assert revoked is not None
    assert int(revoked[keys.TTL_ATTRIBUTE]["N"]) >= claims["exp"]
    max_age = app.config["JWT_SESSION_MAX_AGE"].total_seconds()
    assert int(revoked[keys.TTL_ATTRIBUTE]["N"]) >= claims["auth_time"] + max_age
    assert "You have signed out." in web.text(web.get("/login"))


def test_a_signed_out_cookie_replayed_reads_as_signed_out(app: Any, alice: Person):
    web = signed_in(app, alice)
    token = web.cookie(ACCESS_COOKIE)
    web.logout()

    replay = WebClient(app.test_client())
    set_access_cookie(replay.client, token)
    response = replay.get("/")

    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2F"
    assert set_cookies(response)[ACCESS_COOKIE].cleared

    set_access_cookie(replay.client, token)
    login_page = replay.get("/login")
    assert login_page.status_code == 200  # not redirected away as if signed in
    assert "Alice Archer" not in replay.text(login_page)


def test_a_refresh_never_revives_a_signed_out_session(app: Any, alice: Person, database: Any):
    web = signed_in(app, alice)
    claims = claims_of(web.cookie(ACCESS_COOKIE))
    web.logout()

    # The same session, as a token in its refresh window: refresh must not bring it back.
    token = mint_token(
        app,
        alice.user_id,
        sid=claims["sid"],
        csrf=claims["csrf"],
        auth_time=claims["auth_time"],
        expires=app.config["JWT_REFRESH_WITHIN"] / 2,
    )
    replay = WebClient(app.test_client())
    set_access_cookie(replay.client, token)
    response = replay.get("/")
    assert response.status_code == 302
    assert set_cookies(response)[ACCESS_COOKIE].cleared


def test_get_on_logout_is_405_and_the_session_survives(app: Any, alice: Person, database: Any):
    web = signed_in(app, alice)
    before = scan_all(database)

    response = web.get("/logout")

    assert response.status_code == 405
    assert response.mimetype == "text/html"
    assert "POST" in response.headers["Allow"]
    assert ACCESS_COOKIE not in set_cookies(response)
    assert scan_all(database) == before
    assert web.get("/").status_code == 200


def test_sign_out_without_or_with_a_wrong_csrf_value_changes_nothing(
    app: Any, alice: Person, bob: Person, database: Any
):
    web = signed_in(app, alice)
    bobs_csrf = signed_in(app, bob).cookie(CSRF_COOKIE)
    before = scan_all(database)

    for value in (False, "", "not-the-value", bobs_csrf):
        # As a browser sends its own form (the form-expired page is for same-origin posts).
        response = web.post("/logout", csrf=value, headers={"Sec-Fetch-Site": "same-origin"})
        assert response.status_code == 400
        assert "This form had expired, so nothing was saved" in web.text(response)
        assert ACCESS_COOKIE not in set_cookies(response)

    # S9: the browser sends both cookies, but a CSRF value only in its cookie does not count.
    assert web.cookie(CSRF_COOKIE)
    response = web.client.post("/logout")
    assert response.status_code == 403  # no sign it came from our page: a plain refusal
    assert scan_all(database) == before
    assert web.get("/").status_code == 200


def test_sign_out_with_an_expired_session_needs_no_database_write(
    app: Any, alice: Person, database: Any
):
    web = WebClient(app.test_client())
    token = mint_token(app, alice.user_id, expires=timedelta(seconds=-30))
    set_access_cookie(web.client, token)
    before = scan_all(database)

    with dynamodb_calls(database.client) as calls:
        response = web.client.post("/logout", data={"csrf_token": claims_of(token)["csrf"]})

    assert response.status_code == 303
    assert set_cookies(response)[ACCESS_COOKIE].cleared
    assert [name for name, _ in calls if name in ("PutItem", "UpdateItem")] == []
    assert scan_all(database) == before
    assert time.time() > claims_of(token)["exp"]
