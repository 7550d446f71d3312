"""Invites that cannot be abused: per-person and per-workspace limits (429 with Retry-After),
a cap on pending invites, and invites that die with their maker's membership."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest

from store import invites as store_invites
from store import keys
from store.db import Database
from tests.support.app import make_app
from tests.support.auth import mark_confirmed
from tests.support.helpers import WebClient, rows_with
from tests.support.workspaces import Team

SMALL_LIMITS = {
    "INVITE_LIMITS_PER_PERSON": ((3600, 2), (86400, 10)),
    "INVITE_LIMITS_PER_WORKSPACE": ((3600, 3),),
    "INVITE_MAX_PENDING": 4,
}


@pytest.fixture
def app(ddb_client: Any, table_name: str) -> Any:
    return make_app(ddb_client, table_name, **SMALL_LIMITS)


def invite(who: Any, ws: str, email: str, role: str = "member") -> Any:
    return who.web.post(f"/w/{ws}/invites/new", {"email": email, "role": role})


def invite_rows(database: Database, ws: str) -> list[dict[str, Any]]:
    return rows_with(database, keys.workspace_pk(ws), keys.INVITE_PREFIX)


def counter(database: Database, scope: str, subject: str) -> list[int]:
    rows = rows_with(database, f"{keys.INVITE_RATE_PREFIX}{scope}#{subject}")
    return sorted(int(row["invites"]["N"]) for row in rows)


def test_a_person_over_the_hourly_limit_gets_429_with_retry_after(database, team: Team):
    ws = team.workspace_id
    assert invite(team.admin, ws, "one@example.com").status_code == 200
    assert invite(team.admin, ws, "two@example.com").status_code == 200

    refused = invite(team.admin, ws, "three@example.com")

    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    page = unescape(team.admin.web.text(refused))
    assert "Too many invites for now" in page and "as many invites as one person may" in page
    assert "no invite was made for three@example.com" in page
    assert {r["email"]["S"] for r in invite_rows(database, ws)} == {
        "one@example.com",
        "two@example.com",
    }
    # The refused invite counted against nothing: the person's day counter stays at 2.
    assert counter(database, "person", team.admin.user_id) == [2, 2]


def test_the_workspace_limit_counts_everyone_who_invites(database, team: Team):
    ws = team.workspace_id
    assert invite(team.owner, ws, "a@example.com").status_code == 200
    assert invite(team.owner, ws, "b@example.com").status_code == 200
    assert invite(team.admin, ws, "c@example.com").status_code == 200

    refused = invite(team.admin, ws, "d@example.com")

    assert refused.status_code == 429
    assert "This workspace has sent as many invites" in unescape(team.admin.web.text(refused))
    assert counter(database, "workspace", ws) == [3]
    assert counter(database, "person", team.admin.user_id) == [1, 1]


def test_every_server_process_shares_the_counters(ddb_client, table_name, database, team: Team):
    """A second app on the same table (another worker or host) sees the same counts."""
    other_process = make_app(ddb_client, table_name, **SMALL_LIMITS)
    ws = team.workspace_id
    assert invite(team.admin, ws, "one@example.com").status_code == 200
    elsewhere = WebClient(other_process.test_client())
    elsewhere.login(team.admin.email)
    assert elsewhere.post(f"/w/{ws}/invites/new", {"email": "two@example.com", "role": "member"})
    third = elsewhere.post(f"/w/{ws}/invites/new", {"email": "x@example.com", "role": "member"})
    assert third.status_code == 429


def test_the_pending_cap_refuses_new_addresses_but_allows_a_resend(ddb_client, table_name):
    app = make_app(
        ddb_client,
        table_name,
        INVITE_LIMITS_PER_PERSON=((3600, 10),),
        INVITE_LIMITS_PER_WORKSPACE=((3600, 10),),
        INVITE_MAX_PENDING=2,
    )
    owner = WebClient(app.test_client())
    owner.register("cap@example.com", "Cap Owner")
    mark_confirmed(app, "cap@example.com")  # only a confirmed address may invite
    created = owner.post("/workspaces", {"name": "Capped"}, form_page="/workspaces")
    ws = created.headers["Location"].split("/")[2]
    form = f"/w/{ws}/invites/new"
    for address in ("p@example.com", "q@example.com"):
        assert owner.post(form, {"email": address, "role": "member"}).status_code == 200

    refused = owner.post(form, {"email": "r@example.com", "role": "member"})
    resend = owner.post(form, {"email": "p@example.com", "role": "member"})

    assert refused.status_code == 409
    assert "already has 2 pending invites" in unescape(owner.text(refused))
    assert resend.status_code == 200  # replaces p's invite: still two pending
    database = Database(client=ddb_client, table=table_name)
    assert len(store_invites.pending_invites(database, ws)) == 2


# --- invites die with their maker's membership ------------------------------------------------


def made_by_admin(team: Team, email: str = "newcomer@example.com") -> str:
    response = invite(team.admin, team.workspace_id, email)
    assert response.status_code == 200
    return response.get_data(as_text=True).split("/invite/")[1].split('"')[0]


def test_removing_a_member_withdraws_their_invites_and_the_link_says_why(
    app, database, person, team: Team
):
    token = made_by_admin(team)
    path = f"/w/{team.workspace_id}/members/{team.admin.user_id}/remove"
    assert team.owner.web.post(path, form_page=path).status_code == 303
    assert store_invites.pending_invites(database, team.workspace_id) == []

    newcomer = person("newcomer@example.com")
    landing = newcomer.web.get(f"/invite/{token}")
    joined = newcomer.web.post(f"/invite/{token}", csrf=newcomer.web.csrf_from("/workspaces"))

    for response in (landing, joined):
        assert response.status_code == 410
        assert "The person who invited you is no longer a member" in newcomer.web.text(response)
    assert database.get(keys.member(team.workspace_id, newcomer.user_id)) is None


def test_leaving_withdraws_your_invites(database, team: Team):
    made_by_admin(team)
    path = f"/w/{team.workspace_id}/members/{team.admin.user_id}/remove"
    assert team.admin.web.post(path, form_page=path).status_code == 303
    (row,) = invite_rows(database, team.workspace_id)
    assert row["state"]["S"] == "revoked" and row["revokedReason"]["S"] == "inviter-left"


def test_an_invite_whose_maker_is_gone_cannot_be_accepted_even_if_not_withdrawn(
    database, person, team: Team
):
    """A crash between the removal and the withdrawal: the accept itself checks."""
    token = made_by_admin(team)
    newcomer = person("newcomer@example.com")
    csrf = newcomer.web.csrf_from("/workspaces")
    database.client.delete_item(
        TableName=database.table, Key=keys.member(team.workspace_id, team.admin.user_id)
    )

    with pytest.raises(store_invites.InviterGone):
        store_invites.accept(
            database, token, user_id=newcomer.user_id, email="newcomer@example.com"
        )
    response = newcomer.web.post(f"/invite/{token}", csrf=csrf)
    assert response.status_code == 410
    assert database.get(keys.member(team.workspace_id, newcomer.user_id)) is None
