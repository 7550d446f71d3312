"""/account: name, password (current one required, other sessions signed out), e-mail
(confirmed by mail before it takes effect), the session list (sign out one or all others),
and deleting the account (refused for a last owner, naming the workspace)."""

from __future__ import annotations

from html import unescape
from typing import Any

from store import accounts, keys
from tests.support import mailbox
from tests.support.auth import claims_of, dynamodb_calls, form_csrf, register, signed_in
from tests.support.helpers import PASSWORD, WebClient, rows_but_migration, rows_with
from tests.support.workspaces import add_member, create_workspace

NEW_PASSWORD = "a brand new long password"


def _rows_but_counters(database: Any) -> list[Any]:
    return [r for r in rows_but_migration(database) if not r["PK"]["S"].startswith("LIMIT#")]


def _signed_out(web: WebClient) -> bool:
    response = web.get("/account")
    return response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_account_page_lists_this_and_other_sessions(app: Any, alice: Any):
    phone = signed_in(app, alice)
    page = unescape(alice.web.text(alice.web.get("/account")))
    assert "Your account" in page and alice.email in page
    assert page.count("Sign out this session") == 2
    assert "(this browser)" in page
    assert not _signed_out(phone)


def test_a_new_name_shows_at_once_and_the_session_stays(app: Any, database: Any, alice: Any):
    response = alice.web.post("/account/name", {"name": "  Alice   Smith "}, form_page="/account")
    assert response.status_code == 303
    assert accounts.get_account(database, alice.user_id).name == "Alice Smith"
    assert "Alice Smith" in alice.web.text(alice.web.get("/account"))
    empty = alice.web.post("/account/name", {"name": " "}, form_page="/account")
    assert empty.status_code == 400 and "Enter your name" in alice.web.text(empty)


def test_changing_the_password_needs_the_current_one_and_signs_out_the_others(
    app: Any, database: Any, alice: Any
):
    phone = signed_in(app, alice)
    before = _rows_but_counters(database)
    wrong = alice.web.post(
        "/account/password",
        {"current_password": "not my password at all", "new_password": NEW_PASSWORD},
        form_page="/account",
    )
    assert wrong.status_code == 400 and "not your current password" in alice.web.text(wrong)
    assert _rows_but_counters(database) == before  # only the attempt was counted

    done = alice.web.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        form_page="/account",
    )
    assert done.status_code == 303
    assert _signed_out(phone)
    assert alice.web.get("/account").status_code == 200  # this browser stays signed in
    assert WebClient(app.test_client()).login(alice.email, NEW_PASSWORD).status_code == 303
    assert mailbox.last_to(app, alice.email, "was changed")


def test_a_new_address_takes_effect_only_once_confirmed_from_the_mail(
    app: Any, database: Any, alice: Any
):
    ws = create_workspace(alice, "Acme")
    asked = alice.web.post(
        "/account/email",
        {"email": "Alice.New@X.com", "current_password": PASSWORD},
        form_page="/account",
    )
    assert asked.status_code == 303
    assert accounts.find_by_email(database, alice.email).user_id == alice.user_id
    assert accounts.find_by_email(database, "alice.new@x.com") is None

    path = mailbox.path_of_link(mailbox.last_to(app, "alice.new@x.com"), "/account/email/")
    alice.web.get(path)
    done = alice.web.post(path, {}, csrf=form_csrf(alice.web.last_page, path))
    assert done.status_code == 303
    assert accounts.find_by_email(database, alice.email) is None
    assert accounts.find_by_email(database, "alice.new@x.com").user_id == alice.user_id
    member = database.get(keys.member(ws, alice.user_id), consistent=True)
    assert member["email"]["S"] == "alice.new@x.com"
    assert mailbox.last_to(app, alice.email, "was changed")  # the old address is told
    assert WebClient(app.test_client()).login("alice.new@x.com").status_code == 303


def test_an_address_in_use_is_refused(app: Any, alice: Any, bob: Any):
    refused = alice.web.post(
        "/account/email",
        {"email": bob.email, "current_password": PASSWORD},
        form_page="/account",
    )
    assert refused.status_code == 400
    assert "cannot be used" in alice.web.text(refused)
    assert mailbox.to(app, bob.email)[0].subject.startswith("Confirm your e-mail")


def test_signing_out_one_session_and_all_others(app: Any, database: Any, alice: Any):
    phone, laptop = signed_in(app, alice), signed_in(app, alice)
    page = alice.web.text(alice.web.get("/account"))
    laptop_sid = [
        row["SK"]["S"] for row in rows_with(database, f"USER#{alice.user_id}", "SESSION#")
    ]
    assert len(laptop_sid) == 3
    laptop_claims = laptop.cookie("access_token_cookie")
    assert laptop_claims
    sid = claims_of(laptop_claims)["sid"]
    action = f"/account/sessions/{sid}/sign-out"
    assert action in page
    response = alice.web.post(action, {}, csrf=form_csrf(page, action))
    assert response.status_code == 303
    assert _signed_out(laptop) and not _signed_out(phone)

    others = alice.web.post("/account/sessions/sign-out-others", {}, form_page="/account")
    assert others.status_code == 303
    assert _signed_out(phone)
    assert alice.web.get("/account").status_code == 200
    assert unescape(alice.web.text(alice.web.get("/account"))).count("Sign out this session") == 1


def test_deleting_the_last_owner_is_refused_naming_the_workspace(
    app: Any, database: Any, alice: Any
):
    create_workspace(alice, "Only Mine")
    shown = alice.web.get("/account/delete")
    assert "Only Mine" in alice.web.text(shown) and "only owner" in alice.web.text(shown)
    before = rows_but_migration(database)
    refused = alice.web.post(
        "/account/delete",
        {"current_password": PASSWORD},
        csrf=alice.web.cookie("csrf_access_token"),
    )
    assert refused.status_code == 409 and "Only Mine" in alice.web.text(refused)
    assert rows_but_migration(database) == before


def test_deleting_an_account_removes_it_and_signs_it_out(app: Any, database: Any, alice: Any):
    ws = create_workspace(alice, "Acme")
    carol = register(app, "carol@x.com", "Carol")
    add_member(database, ws, carol, "member")
    phone = signed_in(app, carol)

    wrong = carol.web.post(
        "/account/delete", {"current_password": "nope"}, form_page="/account/delete"
    )
    assert wrong.status_code == 400
    done = carol.web.post(
        "/account/delete", {"current_password": PASSWORD}, form_page="/account/delete"
    )
    assert done.status_code == 303
    assert _signed_out(phone) and _signed_out(carol.web)
    assert database.get(keys.member(ws, carol.user_id), consistent=True) is None
    assert rows_with(database, f"USER#{carol.user_id}") == []
    assert accounts.find_by_email(database, "carol@x.com") is None
    assert WebClient(app.test_client()).login("carol@x.com").status_code == 400


def test_a_workspace_page_still_costs_one_batch_read_for_the_session(
    app: Any, database: Any, alice: Any
):
    ws = create_workspace(alice, "Acme")
    with dynamodb_calls(database.client) as calls:
        assert alice.web.get(f"/w/{ws}/settings").status_code == 200
    batches = [params for name, params in calls if name == "BatchGetItem"]
    assert len(batches) == 1
    wanted = batches[0]["RequestItems"][database.table]["Keys"]
    assert keys.user(alice.user_id) in wanted  # the profile rides along with the revocation row
    assert [name for name, _ in calls].count("GetItem") == 0


def test_guessing_the_current_password_is_limited_per_account(app: Any, alice: Any):
    limit = app.config["CURRENT_PASSWORD_MAX_FAILURES"]
    for attempt in range(limit):
        wrong = alice.web.post(
            "/account/password",
            {"current_password": f"wrong guess {attempt}", "new_password": NEW_PASSWORD},
            form_page="/account",
        )
        assert "not your current password" in alice.web.text(wrong)
    held = alice.web.post(
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        form_page="/account",
    )
    assert held.status_code == 400 and "Too many attempts" in alice.web.text(held)
    assert WebClient(app.test_client()).login(alice.email, PASSWORD).status_code == 303
