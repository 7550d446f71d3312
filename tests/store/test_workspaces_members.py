"""Workspaces and members in the store: creation, "my workspaces", roles, the owner count."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest

from store import keys
from store import workspaces as ws
from store.db import Database, n, s

ALICE = ("alice-id", "alice@example.com")
BOB = ("bob-id", "bob@example.com")
CAROL = ("carol-id", "carol@example.com")


def add(database: Database, workspace: ws.Workspace, who: tuple[str, str], role: str) -> None:
    row = ws.member_row(
        workspace.workspace_id,
        who[0],
        role=role,
        email=who[1],
        workspace_name=workspace.name,
        joined_at="2026-01-01T00:00:00.000000Z",
    )
    database.client.put_item(TableName=database.table, Item=row)
    if role == "owner":
        database.client.update_item(
            TableName=database.table,
            Key=keys.workspace(workspace.workspace_id),
            UpdateExpression="ADD ownerCount :one",
            ExpressionAttributeValues={":one": n(1)},
        )


def fresh(database: Database, workspace_id: str) -> ws.Workspace:
    row = database.get(keys.workspace(workspace_id), consistent=True)
    assert row is not None
    return ws.workspace_from_row(row)


def owners(database: Database, workspace_id: str) -> tuple[int, int]:
    """(owners counted from member rows, the workspace row's ownerCount)."""
    workspace = fresh(database, workspace_id)
    return ws.count_owners(database, workspace_id), workspace.owner_count or 0


def test_creating_a_workspace_makes_the_creator_its_only_owner(database):
    workspace = ws.create_workspace(database, "Acme", *ALICE)

    row = database.get(keys.workspace(workspace.workspace_id), consistent=True)
    member = database.get(keys.member(workspace.workspace_id, ALICE[0]), consistent=True)
    assert row["origin"] == s("created")
    assert row["createdBy"] == s(ALICE[0])
    assert row["ownerCount"] == n(1)
    assert member["role"] == s("owner")
    assert member["email"] == s(ALICE[1])
    assert member["workspaceName"] == s("Acme")
    assert {k: member[k] for k in (keys.GSI1PK, keys.GSI1SK)} == keys.member_index_keys(
        workspace.workspace_id, ALICE[0]
    )
    assert len(workspace.workspace_id) == 32  # uuid4 hex: random, not sequential


def test_my_workspaces_come_from_a_query_on_the_by_user_index_never_a_scan(database):
    first = ws.create_workspace(database, "Zeta", *ALICE)
    second = ws.create_workspace(database, "alpha", *BOB)
    add(database, second, ALICE, "member")
    ws.create_workspace(database, "Not mine", *BOB)
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(event_name: str, params: dict[str, Any], **_: Any) -> None:
        calls.append((event_name.rsplit(".", 1)[-1], params))

    database.client.meta.events.register("provide-client-params.dynamodb.*", record)
    try:
        mine = ws.memberships(database, ALICE[0])
    finally:
        database.client.meta.events.unregister("provide-client-params.dynamodb.*", record)

    assert [(m.workspace_name, m.role) for m in mine] == [("alpha", "member"), ("Zeta", "owner")]
    assert {m.workspace_id for m in mine} == {first.workspace_id, second.workspace_id}
    assert [name for name, _ in calls] == ["Query"]
    assert calls[0][1]["IndexName"] == keys.BY_USER_INDEX


def test_members_are_listed_with_their_account_names(database):
    workspace = ws.create_workspace(database, "Acme", *ALICE)
    add(database, workspace, BOB, "member")
    database.client.put_item(
        TableName=database.table,
        Item={**keys.user(BOB[0]), "email": s(BOB[1]), "name": s("Bob Baker")},
    )

    people = ws.list_members(database, workspace.workspace_id)

    assert [(p.user_id, p.role, p.name) for p in people] == [
        (ALICE[0], "owner", ""),
        (BOB[0], "member", "Bob Baker"),
    ]


def test_the_last_owner_can_be_neither_demoted_nor_removed(database):
    workspace = ws.create_workspace(database, "Acme", *ALICE)

    with pytest.raises(ws.LastOwner):
        ws.change_role(database, workspace, ALICE[0], "owner", "admin")
    with pytest.raises(ws.LastOwner):
        ws.remove_member(database, workspace, ALICE[0], "owner")

    assert ws.get_member(database, workspace.workspace_id, ALICE[0]).role == "owner"
    assert owners(database, workspace.workspace_id) == (1, 1)


def test_promoting_and_demoting_owners_keeps_the_owner_count_exact(database):
    workspace = ws.create_workspace(database, "Acme", *ALICE)
    add(database, workspace, BOB, "member")
    add(database, workspace, CAROL, "admin")

    ws.change_role(database, fresh(database, workspace.workspace_id), BOB[0], "member", "owner")
    ws.change_role(database, fresh(database, workspace.workspace_id), CAROL[0], "admin", "owner")
    assert owners(database, workspace.workspace_id) == (3, 3)
    ws.remove_member(database, fresh(database, workspace.workspace_id), CAROL[0], "owner")
    ws.change_role(database, fresh(database, workspace.workspace_id), ALICE[0], "owner", "member")
    assert owners(database, workspace.workspace_id) == (1, 1)
    with pytest.raises(ws.LastOwner):
        ws.change_role(database, fresh(database, workspace.workspace_id), BOB[0], "owner", "admin")


def test_a_role_change_based_on_a_stale_read_is_refused(database):
    workspace = ws.create_workspace(database, "Acme", *ALICE)
    add(database, workspace, BOB, "admin")
    ws.change_role(database, workspace, BOB[0], "admin", "member")

    # Someone still looking at "admin" cannot apply a change meant for an admin.
    with pytest.raises(ws.MembershipChanged):
        ws.change_role(database, workspace, BOB[0], "admin", "owner")
    with pytest.raises(ws.MembershipChanged):
        ws.remove_member(database, workspace, BOB[0], "admin")
    with pytest.raises(ws.MembershipChanged):
        ws.change_role(database, workspace, "nobody", "member", "admin")
    assert owners(database, workspace.workspace_id) == (1, 1)


def test_a_workspace_without_an_owner_count_gets_one_counted_before_owners_change(database):
    """Older rows (e.g. a migrated workspace written before the count existed)."""
    workspace = ws.create_workspace(database, "Acme", *ALICE)
    add(database, workspace, BOB, "owner")
    database.client.update_item(
        TableName=database.table,
        Key=keys.workspace(workspace.workspace_id),
        UpdateExpression="REMOVE ownerCount",
    )
    stale = fresh(database, workspace.workspace_id)
    assert stale.owner_count is None

    ws.change_role(database, stale, BOB[0], "owner", "member")

    assert owners(database, workspace.workspace_id) == (1, 1)
    with pytest.raises(ws.LastOwner):
        ws.remove_member(database, fresh(database, workspace.workspace_id), ALICE[0], "owner")


def test_a_removed_member_leaves_the_by_user_index(database):
    workspace = ws.create_workspace(database, "Acme", *ALICE)
    add(database, workspace, BOB, "member")
    ws.remove_member(database, workspace, BOB[0], "member")
    assert ws.memberships(database, BOB[0]) == []
    assert ws.get_member(database, workspace.workspace_id, BOB[0]) is None


def _member(role: str, user_id: str = "target") -> ws.Member:
    return ws.Member("w", user_id, role, f"{user_id}@example.com", "")


@pytest.mark.parametrize(
    ("actor", "target", "new_role", "allowed"),
    [
        ("owner", "owner", "member", True),
        ("owner", "member", "owner", True),
        ("owner", "admin", "member", True),
        ("admin", "member", "admin", True),
        ("admin", "admin", "member", True),
        ("admin", "member", "owner", False),
        ("admin", "owner", "member", False),
        ("admin", "owner", "admin", False),
        ("member", "member", "admin", False),
        ("member", "admin", "member", False),
        ("owner", "member", "superuser", False),
    ],
)
def test_who_may_change_a_role(actor, target, new_role, allowed):
    assert ws.may_change_role(_member(actor, "actor"), _member(target), new_role) is allowed


@pytest.mark.parametrize(
    ("actor", "target", "allowed"),
    [
        ("owner", "owner", True),
        ("owner", "admin", True),
        ("admin", "member", True),
        ("admin", "admin", True),
        ("admin", "owner", False),
        ("member", "member", False),
    ],
)
def test_who_may_remove_whom(actor, target, allowed):
    assert ws.may_remove(_member(actor, "actor"), _member(target)) is allowed


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_anyone_may_leave(role):
    assert ws.may_remove(_member(role, "me"), _member(role, "me"))


def test_owners_invite_members_and_admins_and_admins_invite_members_only():
    assert ws.invitable_roles(_member("owner")) == ("member", "admin")
    assert ws.invitable_roles(_member("admin")) == ("member",)
    assert ws.invitable_roles(_member("member")) == ()


def race(attempts: list[Callable[[], str]]) -> list[str]:
    """Run each attempt in its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(attempts))
    outcomes: list[str] = []

    def run(attempt: Callable[[], str]) -> None:
        barrier.wait()
        outcomes.append(attempt())

    threads = [threading.Thread(target=run, args=(attempt,)) for attempt in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def try_demote(database: Database, workspace: ws.Workspace, user_id: str) -> str:
    try:
        ws.change_role(database, workspace, user_id, "owner", "member")
    except ws.LastOwner:
        return "refused"
    return "demoted"


@pytest.mark.local_only("real concurrency needs a real server")
def test_two_owners_demoting_each_other_at_once_leave_exactly_one_owner(database):
    for _round in range(10):
        workspace = ws.create_workspace(database, "Race", *ALICE)
        add(database, workspace, BOB, "owner")
        snapshot = fresh(database, workspace.workspace_id)
        outcomes = race(
            [functools.partial(try_demote, database, snapshot, uid) for uid in (ALICE[0], BOB[0])]
        )

        assert sorted(outcomes) == ["demoted", "refused"]
        assert owners(database, workspace.workspace_id) == (1, 1)
