"""Invites through the pages: create, mail or copy the link, open it signed out, register,
come back and join; and every way a link can be wrong (S26-S31)."""

from __future__ import annotations

import base64
import email
import functools
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any

import pytest

from store import invites as store_invites
from store import keys
from store.db import Database
from tests.support.app import make_app
from tests.support.auth import confirm_from_mail, mark_confirmed
from tests.support.helpers import PASSWORD, WebClient, scan_all, wait_for
from tests.support.workspaces import Team
from web import smtp_sender
from web.logging import redact

INVITEE = "newcomer@example.com"
LINK = re.compile(r'value="(http[^"]*/invite/([A-Za-z0-9_\-]+))"')
CSRF_VALUE = re.compile(r'name="csrf_token" value="[^"]*"')


def create_invite(team: Team, email: str = INVITEE, role: str = "member") -> tuple[Any, str]:
    """As the owner, through the page; returns the response and the raw token shown."""
    response = team.owner.web.post(
        f"/w/{team.workspace_id}/invites/new", {"email": email, "role": role}
    )
    assert response.status_code == 200, team.owner.web.text(response)
    match = LINK.search(team.owner.web.text(response))
    return response, match.group(2) if match else ""


def member_role(database: Database, ws: str, user_id: str) -> str | None:
    row = database.get(keys.member(ws, user_id), consistent=True)
    return row["role"]["S"] if row else None


def user_id_of(database: Database, address: str) -> str:
    row = database.get(keys.email(address), consistent=True)
    return row["userId"]["S"]


# --- the journey -----------------------------------------------------------------------------


def test_the_invitee_registers_from_the_link_and_lands_in_the_workspace(app, database, team):
    created, token = create_invite(team)
    page = unescape(team.owner.web.text(created))
    assert f"Invite link for {INVITEE} (member)" in page
    link = LINK.search(team.owner.web.text(created)).group(1)
    assert link == f"http://localhost/invite/{token}"  # development: the server's own origin
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 16

    newcomer = WebClient(app.test_client())
    landing = newcomer.get(f"/invite/{token}")
    html = unescape(newcomer.text(landing))
    assert landing.status_code == 200
    assert "Join Acme" in html and "Olivia Owner invited you to join as a member" in html
    register = re.search(r'href="(/register\?next=[^"]+)"', newcomer.text(landing)).group(1)

    response = newcomer.post(
        unescape(register),
        {"email": INVITEE, "name": "New Comer", "password": PASSWORD},
        form_page=unescape(register),
    )
    assert response.status_code == 303 and response.headers["Location"] == f"/invite/{token}"
    confirm_from_mail(app, newcomer, INVITEE)  # a new account confirms its address first
    confirm = newcomer.get(f"/invite/{token}")
    assert "Join Acme" in newcomer.text(confirm)
    joined = newcomer.post(f"/invite/{token}", {"role": "owner"}, form_page=f"/invite/{token}")

    assert joined.status_code == 303
    assert joined.headers["Location"] == f"/w/{team.workspace_id}/items"
    user_id = user_id_of(database, INVITEE)
    assert member_role(database, team.workspace_id, user_id) == "member"  # not the form's "owner"
    items = newcomer.get(joined.headers["Location"])
    assert items.status_code == 200 and "Welcome to Acme!" in newcomer.text(items)
    # The start page now opens this workspace.
    assert newcomer.get("/").headers["Location"] == f"/w/{team.workspace_id}/items"


def test_an_existing_account_signs_in_from_the_link_and_joins_as_admin(app, database, team):
    _, token = create_invite(team, email=team.stranger.email, role="admin")
    team.stranger.web.logout()
    landing = team.stranger.web.text(team.stranger.web.get(f"/invite/{token}"))
    sign_in = unescape(re.search(r'href="(/login\?next=[^"]+)"', landing).group(1))
    response = team.stranger.web.post(
        sign_in, {"email": team.stranger.email, "password": PASSWORD}, form_page=sign_in
    )
    assert response.headers["Location"] == f"/invite/{token}"
    team.stranger.web.post(f"/invite/{token}", form_page=f"/invite/{token}")
    assert member_role(database, team.workspace_id, team.stranger.user_id) == "admin"
    assert team.stranger.web.get(f"/w/{team.workspace_id}/settings").status_code == 200


def test_opening_an_invite_link_changes_nothing(app, database, team):
    _, token = create_invite(team)
    before = scan_all(database)
    WebClient(app.test_client()).get(f"/invite/{token}")
    team.stranger.web.get(f"/invite/{token}")
    assert scan_all(database) == before


def test_a_signed_out_accept_is_sent_to_sign_in_and_comes_back(app, team):
    _, token = create_invite(team)
    visitor = WebClient(app.test_client())
    visitor.get("/login")
    response = visitor.client.post(f"/invite/{token}", data={"csrf_token": "x"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/login?next=/invite/{token}"


# --- one answer for every bad link ---------------------------------------------------------------


def bad_link_page(web: WebClient, token: str, method: str) -> tuple[int, str]:
    if method == "GET":
        response = web.get(f"/invite/{token}")
    else:
        response = web.post(f"/invite/{token}", csrf=web.csrf_from("/workspaces"))
    return response.status_code, CSRF_VALUE.sub("", web.text(response))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_used_expired_revoked_and_unknown_links_get_one_identical_page(
    app, database, team, person, method
):
    ws = team.workspace_id
    visitor = person("visitor@example.com", "Vera Visitor")
    tokens = {}
    # Used: by someone else (the visitor holds a copy of the link).
    _, tokens["used"] = create_invite(team, email="first@example.com")
    first = person("first@example.com")
    first.web.post(f"/invite/{tokens['used']}", form_page=f"/invite/{tokens['used']}")
    # Expired: made eight days ago.
    _, tokens["expired"], _ = store_invites.create_invite(
        database,
        ws,
        email="visitor@example.com",
        role="member",
        invited_by=team.owner.user_id,
        lifetime_seconds=7 * 86400,
        now=time.time() - 8 * 86400,
    )
    # Revoked: withdrawn from the members page.
    revoked, tokens["revoked"], _ = store_invites.create_invite(
        database,
        ws,
        email="visitor@example.com",
        role="member",
        invited_by=team.owner.user_id,
        lifetime_seconds=3600,
    )
    path = f"/w/{ws}/invites/{revoked.invite_id}/revoke"
    team.owner.web.post(path, form_page=path)
    tokens["unknown"] = "A" * 43
    visitor.web.get("/workspaces")  # shows (and so clears) the welcome message
    before = scan_all(database)

    answers = {kind: bad_link_page(visitor.web, token, method) for kind, token in tokens.items()}

    statuses = {status for status, _ in answers.values()}
    bodies = {body for _, body in answers.values()}
    assert statuses == {404}
    assert len(bodies) == 1
    assert "This invite link can't be used" in bodies.pop()
    assert member_role(database, ws, visitor.user_id) is None
    assert scan_all(database) == before


def test_an_invite_for_another_address_is_refused_with_a_clear_message(app, database, team):
    _, token = create_invite(team)
    landing = unescape(team.stranger.web.text(team.stranger.web.get(f"/invite/{token}")))
    assert "sent to a different e-mail address" in landing
    assert "Join Acme</button>" not in landing

    response = team.stranger.web.post(f"/invite/{token}", csrf=team.stranger.web.csrf())

    assert response.status_code == 403
    assert "This invite is for another e-mail address" in team.stranger.web.text(response)
    assert member_role(database, team.workspace_id, team.stranger.user_id) is None
    # The invite is still good for the right person.
    assert store_invites.find(database, token).invite.state == "pending"


def test_accepting_twice_tells_the_member_they_are_in(app, database, person, team):
    _, token = create_invite(team)
    newcomer = person(INVITEE)
    newcomer.web.post(f"/invite/{token}", form_page=f"/invite/{token}")
    csrf = newcomer.web.csrf_from("/workspaces")
    again = newcomer.web.post(f"/invite/{token}", csrf=csrf)
    assert again.status_code == 303
    follow = newcomer.web.get(again.headers["Location"])
    assert "You are already a member of this workspace." in newcomer.web.text(follow)


# --- headers, links, logs ------------------------------------------------------------------------


def test_invite_pages_send_no_referrer_and_are_not_cached(app, team):
    created, token = create_invite(team)
    visitor = WebClient(app.test_client())
    for response in (
        created,
        visitor.get(f"/invite/{token}"),
        visitor.get(f"/invite/{'B' * 43}"),
        team.stranger.web.post(f"/invite/{token}", csrf=team.stranger.web.csrf_from("/")),
    ):
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def public_app(ddb_client: Any, table_name: str) -> Any:
    return make_app(ddb_client, table_name, PUBLIC_URL="https://team.example.com")


def test_the_link_uses_the_configured_public_url_whatever_the_host_header(public_app):
    owner = WebClient(public_app.test_client())
    owner.register("host@example.com", "Host Owner")
    mark_confirmed(public_app, "host@example.com")
    created = owner.post("/workspaces", {"name": "Hosted"}, form_page="/workspaces")
    ws = re.search(r"/w/([^/]+)/", created.headers["Location"]).group(1)
    owner.get(f"/w/{ws}/invites/new")
    cookies = "; ".join(
        f"{name}={owner.cookie(name)}" for name in ("access_token_cookie", "csrf_access_token")
    )
    # A request that says it is for another host (the test client would drop the cookies).
    response = public_app.test_client(use_cookies=False).post(
        f"/w/{ws}/invites/new",
        data={"email": INVITEE, "role": "member", "csrf_token": owner.csrf()},
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example", "Cookie": cookies},
    )
    assert response.status_code == 200
    link = LINK.search(response.get_data(as_text=True)).group(1)
    assert link.startswith("https://team.example.com/invite/")


def test_production_without_a_public_url_refuses_to_make_invites(ddb_client, table_name):
    app = make_app(
        ddb_client,
        table_name,
        APP_ENV="production",
        PUBLIC_URL=None,
        JWT_COOKIE_SECURE=False,
        SESSION_COOKIE_SECURE=False,
    )
    owner = WebClient(app.test_client())
    owner.register("prod@example.com", "Prod Owner")
    mark_confirmed(app, "prod@example.com")  # production without PUBLIC_URL mails no link
    created = owner.post("/workspaces", {"name": "Prod"}, form_page="/workspaces")
    ws = re.search(r"/w/([^/]+)/", created.headers["Location"]).group(1)
    response = owner.post(f"/w/{ws}/invites/new", {"email": INVITEE, "role": "member"})
    assert response.status_code == 400
    assert "PUBLIC_URL" in owner.text(response)
    database = Database(client=ddb_client, table=table_name)
    assert not [r for r in scan_all(database) if r["SK"]["S"].startswith("INVITE")]


def test_the_token_never_reaches_a_log(app, database, team, caplog):
    caplog.set_level(logging.DEBUG)
    _, token = create_invite(team)
    newcomer = WebClient(app.test_client())
    newcomer.get(f"/invite/{token}")
    newcomer.post(
        f"/register?next=/invite/{token}",
        {"email": INVITEE, "name": "New", "password": PASSWORD},
        form_page=f"/register?next=/invite/{token}",
    )
    confirm_from_mail(app, newcomer, INVITEE)
    newcomer.post(f"/invite/{token}", form_page=f"/invite/{token}")
    # An access log line, as the dev server or gunicorn would write it:
    logging.getLogger("werkzeug").info('127.0.0.1 "GET /invite/%s HTTP/1.1" 200', token)
    logging.getLogger("werkzeug").info("GET /login?next=%%2Finvite%%2F%s", token)

    assert member_role(database, team.workspace_id, user_id_of(database, INVITEE)) == "member"
    assert caplog.records, "the flow logged nothing at all; the check would be empty"
    for record in caplog.records:
        assert token not in record.getMessage()
    assert redact(f"/invite/{token}?x") == "/invite/[redacted]?x"


# --- SMTP ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))
        self.arrived.set()
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def mail_app(ddb_client: Any, table_name: str, port: int) -> Any:
    return make_app(
        ddb_client,
        table_name,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        SMTP_FROM="team@example.com",
        # The test server offers no STARTTLS; tests/web/test_mail_smtp.py covers TLS.
        SMTP_STARTTLS=False,
        SMTP_MAX_ATTEMPTS=2,
        SMTP_RETRY_SECONDS=0.01,
        PUBLIC_URL="https://team.example.com",
    )


def owner_with_workspace(app: Any) -> tuple[WebClient, str]:
    owner = WebClient(app.test_client())
    owner.register("mailer@example.com", "Mona Mailer")
    mark_confirmed(app, "mailer@example.com")  # its confirmation went to the SMTP server
    created = owner.post("/workspaces", {"name": "Mailroom"}, form_page="/workspaces")
    return owner, re.search(r"/w/([^/]+)/", created.headers["Location"]).group(1)


def test_with_smtp_the_invite_is_queued_under_a_fixed_subject_and_the_link_shown(
    ddb_client, table_name, smtp_server
):
    inbox, port = smtp_server
    owner, ws = owner_with_workspace(mail_app(ddb_client, table_name, port))

    response = owner.post(f"/w/{ws}/invites/new", {"email": INVITEE, "role": "member"})

    # The owner's own confirmation mail went there too, first.
    (message,) = wait_for(lambda: [m for m in inbox.messages if m["To"] == INVITEE])
    assert message["To"] == INVITEE and message["From"] == "team@example.com"
    # No user text in the subject: the workspace's name is chosen by whoever invites.
    assert message["Subject"] == "You have been invited to a team workspace"
    body = message.get_payload(decode=True).decode()
    token = re.search(r"https://team\.example\.com/invite/([A-Za-z0-9_\-]+)", body).group(1)
    assert "Mona Mailer invited you" in body and "Mailroom" in body
    page = unescape(owner.text(response))
    assert f"An e-mail with this link to {INVITEE} is queued" in page
    assert LINK.search(owner.text(response)).group(2) == token  # shown to copy as well
    database = Database(client=ddb_client, table=table_name)
    assert store_invites.find(database, token).invite.email == INVITEE


def test_when_mail_cannot_be_delivered_the_page_still_has_the_link_and_the_log_one_line(
    ddb_client, table_name, caplog
):
    owner, ws = owner_with_workspace(mail_app(ddb_client, table_name, free_port()))
    response = owner.post(f"/w/{ws}/invites/new", {"email": INVITEE, "role": "member"})
    assert response.status_code == 200
    token = LINK.search(owner.text(response)).group(2)
    assert smtp_sender.sender().wait_idle(20)
    failures = [r.getMessage() for r in caplog.records if "could not send e-mail" in r.getMessage()]
    # One line per message given up on: the owner's confirmation mail, then the invite.
    assert len(failures) == 2 and all("after 2 attempt(s)" in line for line in failures)
    assert all(token not in r.getMessage() for r in caplog.records)


# --- races -------------------------------------------------------------------------------------


def race(attempts: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(attempts))
    results: list[Any] = []

    def run(attempt: Callable[[], Any]) -> None:
        barrier.wait()
        results.append(attempt())

    threads = [threading.Thread(target=run, args=(a,)) for a in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def accept_with(browser: WebClient, token: str, csrf: str) -> tuple[int, str]:
    response = browser.client.post(f"/invite/{token}", data={"csrf_token": csrf})
    return response.status_code, response.headers.get("Location", "")


@pytest.mark.local_only("real concurrency needs a real server")
def test_two_accepts_at_once_make_one_membership(app, database, team):
    _, token = create_invite(team)
    first = WebClient(app.test_client())
    first.register(INVITEE, "New Comer")
    confirm_from_mail(app, first, INVITEE)
    second = WebClient(app.test_client())
    second.login(INVITEE)
    attempts = [
        functools.partial(accept_with, browser, token, browser.csrf_from("/workspaces"))
        for browser in (first, second)
    ]

    results = race(attempts)

    assert [status for status, _ in results] == [303, 303]
    assert {location for _, location in results} == {f"/w/{team.workspace_id}/items"}
    rows = [
        r
        for r in scan_all(database)
        if r["PK"]["S"] == keys.workspace_pk(team.workspace_id)
        and r["SK"]["S"] == keys.MEMBER_PREFIX + user_id_of(database, INVITEE)
    ]
    assert len(rows) == 1


def test_inviting_someone_who_is_already_a_member_says_so(database, team):
    response = team.owner.web.post(
        f"/w/{team.workspace_id}/invites/new", {"email": team.member.email, "role": "member"}
    )
    assert response.status_code == 400
    assert "already a member" in team.owner.web.text(response)
    assert store_invites.pending_invites(database, team.workspace_id) == []


def test_pending_invites_are_listed_and_can_be_withdrawn(database, team):
    _, token = create_invite(team)
    members = team.admin.web.text(team.admin.web.get(f"/w/{team.workspace_id}/members"))
    assert INVITEE in members
    revoke = re.search(r'href="(/w/[^"]+/revoke)"', members).group(1)
    assert "Withdraw the invite" in team.admin.web.text(team.admin.web.get(revoke))
    team.admin.web.post(revoke, form_page=revoke)
    with pytest.raises(store_invites.InviteUnusable):
        store_invites.find(database, token)
