"""Confirming an address, as a person sees it: registration mails a link; until it is opened
the person can sign in and sees a banner, but can neither accept nor send invites; the link
confirms by POST, once; the resend button is rate limited; v1 accounts count as confirmed."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from store import invites as store_invites
from store import keys
from tests.support import mailbox
from tests.support.auth import confirm_from_mail, form_csrf, put_account, register
from tests.support.helpers import PASSWORD, V1_PASSWORD_HASH, WebClient, rows_but_migration
from tests.support.workspaces import add_member, create_workspace

BANNER = "Please confirm your e-mail address"


def _invite(database: Any, ws: str, owner_id: str, email: str) -> str:
    _, token, _ = store_invites.create_invite(
        database, ws, email=email, role="member", invited_by=owner_id, lifetime_seconds=600
    )
    return token


def test_registration_mails_a_single_link_and_the_person_sees_the_banner(app: Any):
    ann = register(app, "ann@x.com", "Ann", confirmed=False)
    (message,) = mailbox.to(app, "ann@x.com")
    assert message.subject == "Confirm your e-mail address for Team app"
    assert [link for link in mailbox.links(message) if "/confirm/" in link]
    page = ann.web.text(ann.web.get("/workspaces"))
    assert BANNER in page and 'href="/confirm"' in page


def test_an_unconfirmed_person_cannot_accept_an_invite_and_is_told_why(
    app: Any, database: Any, alice: Any
):
    ws = create_workspace(alice, "Acme")
    ann = register(app, "ann@x.com", "Ann", confirmed=False)
    token = _invite(database, ws, alice.user_id, "ann@x.com")

    shown = unescape(ann.web.text(ann.web.get(f"/invite/{token}")))
    assert "Confirm your e-mail address before you join" in shown
    before = rows_but_migration(database)
    refused = ann.web.post(f"/invite/{token}", {}, csrf=ann.web.cookie("csrf_access_token"))
    assert refused.status_code == 403
    assert "Confirm your e-mail address before you join a workspace" in unescape(
        ann.web.text(refused)
    )
    assert refused.headers["Referrer-Policy"] == "no-referrer"
    assert rows_but_migration(database) == before

    confirm_from_mail(app, ann.web, "ann@x.com")
    joined = ann.web.post(f"/invite/{token}", {}, form_page=f"/invite/{token}")
    assert joined.status_code == 303
    assert database.get(keys.member(ws, ann.user_id), consistent=True) is not None


def test_an_unconfirmed_owner_cannot_send_invites(app: Any, database: Any):
    ann = register(app, "ann@x.com", "Ann", confirmed=False)
    ws = create_workspace(ann, "Mine")
    refused = ann.web.post(
        f"/w/{ws}/invites/new",
        {"email": "zed@x.com", "role": "member"},
        csrf=ann.web.cookie("csrf_access_token"),
    )
    assert refused.status_code == 403
    assert "Confirm your e-mail address before you invite anyone" in unescape(ann.web.text(refused))
    assert store_invites.list_invites(database, ws) == []


def test_the_link_shows_a_button_and_confirms_only_by_post_and_only_once(app: Any, database: Any):
    ann = register(app, "ann@x.com", "Ann", confirmed=False)
    path = mailbox.path_of_link(mailbox.last_to(app, "ann@x.com"), "/confirm/")
    elsewhere = WebClient(app.test_client())  # opened on another device, signed out

    before = rows_but_migration(database)
    shown = elsewhere.get(path)
    assert shown.status_code == 200 and "Confirm ann@x.com" in elsewhere.text(shown)
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    assert shown.headers["Cache-Control"] == "no-store"
    assert rows_but_migration(database) == before

    done = elsewhere.post(path, {}, csrf=form_csrf(elsewhere.last_page, path))
    assert done.status_code == 303
    assert BANNER not in ann.web.text(ann.web.get("/workspaces"))

    again = elsewhere.get(path)
    assert again.status_code == 404 and "This link does not work" in elsewhere.text(again)
    assert elsewhere.get("/confirm/not-a-token").status_code == 404


def test_resending_is_limited_per_account_with_retry_after(app: Any):
    ann = register(app, "ann@x.com", "Ann", confirmed=False)
    answers = []
    for _ in range(4):
        answers.append(ann.web.post("/confirm/resend", {}, form_page="/confirm"))
    assert [a.status_code for a in answers] == [303, 303, 303, 429]
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert len(mailbox.to(app, "ann@x.com")) == 1 + 3
    # Another account has its own allowance.
    bob = register(app, "bob@x.com", "Bob", confirmed=False)
    assert bob.web.post("/confirm/resend", {}, form_page="/confirm").status_code == 303


def test_a_v1_account_counts_as_confirmed(app: Any, database: Any, alice: Any):
    put_account(database, "old@x.com", V1_PASSWORD_HASH, name="Old Timer")
    old = WebClient(app.test_client())
    assert old.login("old@x.com", PASSWORD).status_code == 303
    ws = create_workspace(alice, "Acme")
    token = _invite(database, ws, alice.user_id, "old@x.com")
    assert BANNER not in old.text(old.get("/workspaces"))
    joined = old.post(f"/invite/{token}", {}, form_page=f"/invite/{token}")
    assert joined.status_code == 303 and re.search(r"/w/[^/]+/items", joined.headers["Location"])


def test_an_added_member_who_is_unconfirmed_still_sees_their_workspace(
    app: Any, database: Any, alice: Any
):
    """Confirmation gates joining and inviting, not work in a workspace one is already in."""
    ws = create_workspace(alice, "Acme")
    ann = register(app, "ann@x.com", "Ann", confirmed=False)
    add_member(database, ws, ann, "member")
    page = ann.web.get(f"/w/{ws}/items")
    assert page.status_code == 200 and BANNER in ann.web.text(page)
