"""store/workspace_lifecycle.py: a rename's copies catch up in bounded steps and never go
back to an older name; a deletion removes the partition in slices, members first, resumes
after a crash, and leaves v1 rows alone."""

from __future__ import annotations

import time

import pytest

from store import invites as store_invites
from store import keys
from store import workspace_lifecycle as lifecycle
from store import workspaces as store_workspaces
from store.db import Database, n, s
from store.migration import check
from tests.support.helpers import rows_with, scan_all
from tests.support.migration import migrate
from tests.support.workspaces import add_item

OWNER = "owner-1"


def workspace_with(database: Database, members: int, items: int = 0) -> str:
    ws = store_workspaces.create_workspace(database, "Acme", OWNER, "o@example.com").workspace_id
    for number in range(members):
        row = store_workspaces.member_row(
            ws,
            f"m{number}",
            role="member",
            email=f"m{number}@x.com",
            workspace_name="Acme",
            joined_at="2026-01-01T00:00:00Z",
        )
        database.client.put_item(TableName=database.table, Item=row)
    for number in range(items):
        add_item(database, ws, f"i{number}")
    return ws


def names(database: Database, ws: str) -> list[str]:
    rows = rows_with(database, keys.workspace_pk(ws), keys.MEMBER_PREFIX)
    return sorted(row["workspaceName"]["S"] for row in rows)


def test_a_rename_reaches_every_member_row_in_bounded_steps(database):
    ws = workspace_with(database, members=4)
    lifecycle.rename(database, ws, "Beta", user_id=OWNER)
    workspace = store_workspaces.get_workspace(database, ws)
    assert workspace.name == "Beta" and workspace.names_behind

    steps = [lifecycle.copy_name(database, ws, max_rows=2) for _ in range(3)]

    assert steps == [False, False, True]  # 5 rows: 2 + 2 + 1
    assert names(database, ws) == ["Beta"] * 5
    assert not store_workspaces.get_workspace(database, ws).names_behind
    mine = store_workspaces.memberships(database, OWNER)
    assert [m.workspace_name for m in mine] == ["Beta"]


def test_a_slow_copy_of_an_older_name_never_overwrites_a_newer_one(database):
    ws = workspace_with(database, members=1)
    lifecycle.rename(database, ws, "Beta", user_id=OWNER)
    lifecycle.rename(database, ws, "Gamma", user_id=OWNER)
    assert lifecycle.copy_name(database, ws, max_rows=10)
    member = database.get(keys.member(ws, "m0"), consistent=True)
    lifecycle._copy_to(database, member, "Beta", 1)  # a copier that read version 1
    assert names(database, ws) == ["Gamma", "Gamma"]


def test_only_an_owner_renames_or_deletes(database):
    ws = workspace_with(database, members=1)
    with pytest.raises(lifecycle.NotAnOwner):
        lifecycle.rename(database, ws, "Mine", user_id="m0")
    with pytest.raises(lifecycle.NotAnOwner):
        lifecycle.start_deletion(database, ws, typed_name="Acme", user_id="m0")
    with pytest.raises(lifecycle.NameMismatch):
        lifecycle.start_deletion(database, ws, typed_name="acme", user_id=OWNER)
    assert store_workspaces.get_workspace(database, ws).lifecycle == ""


def test_deletion_removes_members_first_then_everything_and_keeps_a_tombstone(
    database, monkeypatch
):
    monkeypatch.setattr(lifecycle, "PAGE", 3)
    ws = workspace_with(database, members=4, items=5)
    _, token, _ = store_invites.create_invite(
        database, ws, email="n@x.com", role="member", invited_by=OWNER, lifetime_seconds=600
    )
    lifecycle.start_deletion(database, ws, typed_name="Acme", user_id=OWNER)
    with pytest.raises(lifecycle.Gone):
        lifecycle.start_deletion(database, ws, typed_name="Acme", user_id=OWNER)

    first = lifecycle.delete_slice(database, ws, seconds=0)  # one page per slice
    assert first.deleted_rows == 3 and not first.done
    second = lifecycle.delete_slice(database, ws, seconds=0)
    assert not rows_with(database, keys.workspace_pk(ws), keys.MEMBER_PREFIX)  # 5 members gone
    counts = [first.deleted_rows, second.deleted_rows]
    while not (state := lifecycle.delete_slice(database, ws, seconds=0)).done:
        counts.append(state.deleted_rows)

    assert counts == sorted(counts)
    assert state.deleted_rows == 5 + 5 + 1
    (tombstone,) = rows_with(database, keys.workspace_pk(ws))
    assert tombstone["lifecycle"]["S"] == "deleted"
    assert int(tombstone["expiresAt"]["N"]) > time.time() + 29 * 86400
    assert not rows_with(database, keys.INVITE_TOKEN_PREFIX)
    with pytest.raises(store_invites.InviteUnusable):
        store_invites.find(database, token)


def test_a_crashed_deletion_is_taken_over_once_its_lease_lapses(database):
    ws = workspace_with(database, members=1, items=2)
    lifecycle.start_deletion(database, ws, typed_name="Acme", user_id=OWNER)

    def crashed_runner(lease_until: float) -> None:
        database.client.update_item(
            TableName=database.table,
            Key=keys.workspace(ws),
            UpdateExpression="SET deleteRunner = :r, deleteLeaseUntil = :u",
            ExpressionAttributeValues={":r": s("dead"), ":u": n(int(lease_until))},
        )

    crashed_runner(time.time() + 60)
    assert lifecycle.delete_slice(database, ws, seconds=5).deleted_rows == 0  # still "live"
    crashed_runner(time.time() - 1)
    assert lifecycle.delete_slice(database, ws, seconds=5).done


def test_deleting_the_migrated_workspace_leaves_v1_rows_alone(database, seed):
    seed(items=6, settings=2, members=2)
    flag = migrate(database)
    before_v1 = [r for r in scan_all(database) if not r["PK"]["S"].startswith("WORKSPACE#")]
    owner_row = next(
        r
        for r in rows_with(database, keys.workspace_pk(flag.workspace_id), keys.MEMBER_PREFIX)
        if r["role"]["S"] == "owner"
    )
    owner = keys.suffix(owner_row["SK"]["S"], keys.MEMBER_PREFIX)
    name = store_workspaces.get_workspace(database, flag.workspace_id).name

    lifecycle.start_deletion(database, flag.workspace_id, typed_name=name, user_id=owner)
    assert lifecycle.delete_slice(database, flag.workspace_id, seconds=30).done

    after = [r for r in scan_all(database) if not r["PK"]["S"].startswith("WORKSPACE#")]
    assert after == before_v1


def test_renaming_the_migrated_workspace_keeps_migration_verify_clean(database, seed):
    seed(items=3, settings=1, members=2)
    flag = migrate(database)
    owner_row = next(
        r
        for r in rows_with(database, keys.workspace_pk(flag.workspace_id), keys.MEMBER_PREFIX)
        if r["role"]["S"] == "owner"
    )
    owner = keys.suffix(owner_row["SK"]["S"], keys.MEMBER_PREFIX)

    lifecycle.rename(database, flag.workspace_id, "Renamed", user_id=owner)
    assert lifecycle.copy_name(database, flag.workspace_id, max_rows=10)

    verdicts = {row.verdict for row in check.compare(database, flag.workspace_id, None)}
    assert verdicts == {check.IDENTICAL}
