"""Invites in the store: hashed tokens, expiry, single use, revocation, the e-mail binding,
and one membership however many accepts race."""

from __future__ import annotations

import base64
import functools
import hashlib
import threading
import time
from collections.abc import Callable

import pytest

from store import invites, keys
from store import workspaces as ws
from store.db import Database

DAY = 24 * 3600
OWNER = ("owner-id", "owner@example.com")


@pytest.fixture
def workspace(database: Database) -> ws.Workspace:
    return ws.create_workspace(database, "Acme", *OWNER)


def invite(database, workspace, email="new@example.com", role="member", **kwargs):
    return invites.create_invite(
        database,
        workspace.workspace_id,
        email=email,
        role=role,
        invited_by=OWNER[0],
        lifetime_seconds=kwargs.pop("lifetime", 7 * DAY),
        **kwargs,
    )


def rows_containing(database: Database, needle: str) -> list[dict]:
    found, params = [], {"TableName": database.table, "ConsistentRead": True}
    while True:
        page = database.client.scan(**params)
        found += [row for row in page["Items"] if needle in repr(row)]
        if "LastEvaluatedKey" not in page:
            return found
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_the_token_has_256_random_bits_and_only_its_hash_is_stored(database, workspace):
    made, token, _ = invite(database, workspace)
    other, other_token, _ = invite(database, workspace, email="other@example.com")

    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) == 32
    assert token != other_token
    assert rows_containing(database, token) == []
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = database.get(keys.invite(workspace.workspace_id, made.invite_id), consistent=True)
    pointer = database.get(keys.invite_token(digest), consistent=True)
    assert row["tokenHash"]["S"] == digest
    assert row["state"]["S"] == "pending" and row["role"]["S"] == "member"
    assert int(row["expiresAt"]["N"]) == pytest.approx(time.time() + 7 * DAY, abs=5)
    assert pointer["workspaceId"]["S"] == workspace.workspace_id
    assert pointer["inviteId"]["S"] == made.invite_id


def test_an_invite_is_accepted_once_with_its_own_role(database, workspace):
    _, token, _ = invite(database, workspace, email="New@Example.com", role="admin")

    found = invites.accept(database, token, user_id="new-id", email="new@example.com")

    member = ws.get_member(database, workspace.workspace_id, "new-id")
    assert member.role == "admin" and found.workspace.name == "Acme"
    assert [m.workspace_id for m in ws.memberships(database, "new-id")] == [workspace.workspace_id]
    with pytest.raises(invites.AlreadyMember):
        invites.accept(database, token, user_id="new-id", email="new@example.com")
    with pytest.raises(invites.InviteUnusable):
        invites.find(database, token)


def test_an_invite_works_only_for_the_address_it_was_sent_to(database, workspace):
    _, token, _ = invite(database, workspace)
    with pytest.raises(invites.WrongAccount):
        invites.accept(database, token, user_id="bob-id", email="bob@example.com")
    assert ws.get_member(database, workspace.workspace_id, "bob-id") is None
    invites.accept(database, token, user_id="new-id", email="new@example.com")


def test_expired_revoked_used_and_unknown_tokens_are_refused_alike(database, workspace):
    _, expired, _ = invite(database, workspace, email="a@example.com", now=time.time() - 8 * DAY)
    revoked_invite, revoked, _ = invite(database, workspace, email="b@example.com")
    _, used, _ = invite(database, workspace, email="c@example.com")
    assert invites.revoke(database, workspace.workspace_id, revoked_invite.invite_id)
    assert not invites.revoke(database, workspace.workspace_id, revoked_invite.invite_id)
    invites.accept(database, used, user_id="c-id", email="c@example.com")

    for token, email in [
        (expired, "a@example.com"),
        (revoked, "b@example.com"),
        ("not-a-real-token-" + "x" * 30, "d@example.com"),
        ("", "d@example.com"),
    ]:
        with pytest.raises(invites.InviteUnusable):
            invites.find(database, token)
        with pytest.raises(invites.InviteUnusable):
            invites.accept(database, token, user_id="z-id", email=email)
    assert ws.get_member(database, workspace.workspace_id, "z-id") is None


def test_the_expiry_is_checked_by_the_write_itself(database, workspace):
    """A request that read the invite just before it expired cannot accept it after."""
    made, token, _ = invite(database, workspace, lifetime=60)
    with pytest.raises(invites.InviteUnusable):
        invites.accept(
            database, token, user_id="new-id", email="new@example.com", now=made.expires_at + 1
        )
    assert ws.get_member(database, workspace.workspace_id, "new-id") is None


def test_inviting_the_same_address_again_withdraws_the_earlier_invite(database, workspace):
    _, first, _ = invite(database, workspace)
    _, second, replaced = invite(database, workspace, email="NEW@example.com")

    assert replaced == 1
    with pytest.raises(invites.InviteUnusable):
        invites.find(database, first)
    assert [i.email for i in invites.pending_invites(database, workspace.workspace_id)] == [
        "new@example.com"
    ]
    invites.accept(database, second, user_id="new-id", email="new@example.com")


def test_only_member_and_admin_invites_exist(database, workspace):
    with pytest.raises(ValueError, match="owner"):
        invite(database, workspace, role="owner")


def race(count: int, attempt: Callable[[], str]) -> list[str]:
    """Run ``attempt`` in ``count`` threads released at the same moment; their outcomes."""
    barrier = threading.Barrier(count)
    outcomes: list[str] = []

    def run() -> None:
        barrier.wait()
        outcomes.append(attempt())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def try_accept(database: Database, token: str, user_id: str, email: str) -> str:
    try:
        invites.accept(database, token, user_id=user_id, email=email)
    except invites.AlreadyMember:
        return "already"
    except invites.InviteUnusable:
        return "unusable"
    return "joined"


@pytest.mark.local_only("real concurrency needs a real server")
def test_many_accepts_at_once_make_exactly_one_membership(database, workspace):
    for _round in range(5):
        email = f"racer{_round}@example.com"
        user_id = f"racer-{_round}"
        made, token, _ = invite(database, workspace, email=email)
        outcomes = race(8, functools.partial(try_accept, database, token, user_id, email))

        assert outcomes.count("joined") == 1, outcomes
        member_rows = database.query_all(
            KeyConditionExpression="PK = :pk AND SK = :sk",
            ExpressionAttributeValues={
                ":pk": {"S": keys.workspace_pk(workspace.workspace_id)},
                ":sk": {"S": keys.MEMBER_PREFIX + user_id},
            },
            ConsistentRead=True,
        )
        assert len(member_rows) == 1
        row = database.get(keys.invite(workspace.workspace_id, made.invite_id), consistent=True)
        assert row["state"]["S"] == "accepted" and row["acceptedBy"]["S"] == user_id


def test_an_earlier_invite_that_changed_meanwhile_does_not_break_a_new_one(
    database, workspace, monkeypatch
):
    old, _, _ = invite(database, workspace)
    invites.revoke(database, workspace.workspace_id, old.invite_id)
    real = invites.pending_invites
    stale = iter([[old]])  # the first read still sees the old invite as pending

    def pending(*args, **kwargs):
        return next(stale, None) or real(*args, **kwargs)

    monkeypatch.setattr(invites, "pending_invites", pending)
    made, token, replaced = invite(database, workspace)

    assert replaced == 0
    assert invites.find(database, token).invite.invite_id == made.invite_id
