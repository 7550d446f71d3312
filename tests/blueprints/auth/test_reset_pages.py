"""Password reset at /password/forgot (OWASP Forgot Password cheat sheet): the same answer
for any address, a single-use link, the registration's password rules, every session signed
out, a notice mailed, and requests limited per address."""

from __future__ import annotations

from typing import Any

from store import keys
from tests.support import mailbox
from tests.support.auth import form_csrf, mask, spy_on_hashing
from tests.support.helpers import WebClient, rows_but_migration

NEW_PASSWORD = "a brand new long password"


def _ask(app: Any, email: str) -> Any:
    web = WebClient(app.test_client())
    return web, web.post("/password/forgot", {"email": email})


def _reset_path(app: Any, email: str) -> str:
    return mailbox.path_of_link(mailbox.last_to(app, email, "Reset your"), "/password/reset/")


def test_the_answer_is_the_same_whether_or_not_the_address_has_an_account(app: Any, alice: Any):
    _, known = _ask(app, alice.email)
    _, unknown = _ask(app, "nobody@x.com")
    assert known.status_code == unknown.status_code == 200
    known_page = mask(known.get_data(as_text=True), alice.email)
    unknown_page = mask(unknown.get_data(as_text=True), "nobody@x.com")
    assert known_page == unknown_page
    assert [m.subject for m in mailbox.to(app, alice.email)][0] == "Reset your Team app password"
    assert mailbox.to(app, "nobody@x.com") == []


def test_the_link_sets_a_new_password_signs_out_every_session_and_tells_the_account(
    app: Any, database: Any, alice: Any
):
    other_browser = alice.web
    assert other_browser.get("/workspaces").status_code == 200
    _ask(app, alice.email)
    path = _reset_path(app, alice.email)
    web = WebClient(app.test_client())

    shown = web.get(path)
    assert shown.status_code == 200
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    assert shown.headers["Cache-Control"] == "no-store"
    done = web.post(path, {"password": NEW_PASSWORD}, csrf=form_csrf(web.last_page, path))

    assert done.status_code == 303 and done.headers["Location"] == "/login"
    signed_out = other_browser.get("/workspaces")
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    assert mailbox.last_to(app, alice.email, "was changed")
    assert WebClient(app.test_client()).login(alice.email, alice.password).status_code == 400
    assert WebClient(app.test_client()).login(alice.email, NEW_PASSWORD).status_code == 303
    reused = web.get(path)
    assert reused.status_code == 404


def test_a_short_password_is_refused_and_the_link_still_works(app: Any, database: Any, alice: Any):
    _ask(app, alice.email)
    path = _reset_path(app, alice.email)
    web = WebClient(app.test_client())
    web.get(path)
    before = rows_but_migration(database)
    refused = web.post(path, {"password": "short"}, csrf=form_csrf(web.last_page, path))
    assert refused.status_code == 400 and "at least 15 characters" in web.text(refused)
    assert rows_but_migration(database) == before
    assert web.get(path).status_code == 200


def test_requests_are_limited_per_address_silently(app: Any, alice: Any):
    answers = [_ask(app, alice.email)[1] for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    resets = [m for m in mailbox.to(app, alice.email) if m.subject.startswith("Reset")]
    assert len(resets) == app.config["MAIL_LINK_LIMIT"]
    # Asking for someone else is not held back by alice's count.
    _ask(app, "bob@x.com")


def test_asking_derives_no_password_hash_and_writes_no_token_for_an_unknown_address(
    app: Any, database: Any, monkeypatch: Any
):
    derivations = spy_on_hashing(monkeypatch)
    _ask(app, "nobody@x.com")
    assert derivations == []
    assert not [
        r
        for r in rows_but_migration(database)
        if r["PK"]["S"].startswith(keys.ACCOUNT_TOKEN_PREFIX)
    ]


def test_a_reset_token_is_no_confirmation_token(app: Any, alice: Any):
    _ask(app, alice.email)
    token = _reset_path(app, alice.email).rsplit("/", 1)[1]
    web = WebClient(app.test_client())
    assert web.get(f"/confirm/{token}").status_code == 404
    assert web.get(f"/account/email/{token}").status_code == 404
