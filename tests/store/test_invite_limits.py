"""store/invite_limits.py and the parts of store/invites.py that use it: counters that are
atomic and shared, counted in the invite's own transaction; invites that die with their
maker's membership."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from store import invite_limits, keys
from store import invites as store_invites
from store import workspaces as store_workspaces
from store.db import Database
from store.invite_limits import Limit, RateLimited
from tests.support.helpers import rows_with

HOUR = 3600


def workspace_with_admin(database: Database) -> tuple[str, str]:
    ws = store_workspaces.create_workspace(database, "Acme", "owner-1", "o@example.com")
    return ws.workspace_id, "owner-1"


def make(database: Database, ws: str, email: str, limits: list[Limit], **kw: Any) -> Any:
    return store_invites.create_invite(
        database,
        ws,
        email=email,
        role="member",
        invited_by="owner-1",
        lifetime_seconds=HOUR,
        limits=limits,
        **kw,
    )


def test_a_window_ends_on_its_boundary_and_the_longest_refusal_wins():
    hour, day = Limit("person", "u", HOUR, 1), Limit("workspace", "w", 86400, 1)
    at = 86400 * 10 + 1800.5
    assert hour.seconds_left(at) == 1800
    refusal = invite_limits.refusal([hour, day], ["ConditionalCheckFailed"] * 2, at)
    assert refusal is not None and refusal.limit is day and refusal.retry_after == 84600
    assert invite_limits.refusal([hour, day], ["None", "None"], at) is None


def test_the_counter_stops_at_the_allowance_and_expires_after_its_window(database):
    ws, _ = workspace_with_admin(database)
    limits = [Limit("person", "owner-1", HOUR, 2)]
    make(database, ws, "a@example.com", limits, now=HOUR * 100 + 10)
    make(database, ws, "b@example.com", limits, now=HOUR * 100 + 20)
    with pytest.raises(RateLimited) as refused:
        make(database, ws, "c@example.com", limits, now=HOUR * 100 + 30)
    assert refused.value.retry_after == HOUR - 30
    (row,) = rows_with(database, keys.INVITE_RATE_PREFIX)
    assert row["invites"]["N"] == "2" and int(row["expiresAt"]["N"]) == HOUR * 102
    # The next window starts from zero.
    make(database, ws, "c@example.com", limits, now=HOUR * 101 + 1)


@pytest.mark.local_only("real concurrency needs a real server")
def test_racing_inviters_never_pass_the_allowance_together(database):
    ws, _ = workspace_with_admin(database)
    limits = [Limit("workspace", ws, HOUR, 3)]
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def attempt(number: int) -> None:
        barrier.wait()
        try:
            make(database, ws, f"p{number}@example.com", limits)
            outcomes.append("made")
        except RateLimited:
            outcomes.append("limited")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["limited"] * 5 + ["made"] * 3
    assert len(store_invites.pending_invites(database, ws)) == 3


def test_the_pending_cap_counts_only_other_addresses(database):
    ws, _ = workspace_with_admin(database)
    make(database, ws, "a@example.com", [], max_pending=1)
    with pytest.raises(store_invites.TooManyPending):
        make(database, ws, "b@example.com", [], max_pending=1)
    _, _, replaced = make(database, ws, "a@example.com", [], max_pending=1)
    assert replaced == 1


def test_an_accept_racing_the_makers_removal_is_refused_by_the_write(database, monkeypatch):
    """find() saw the maker still a member; they were removed before the accept's write."""
    ws, _ = workspace_with_admin(database)
    admin_row = store_workspaces.member_row(
        ws, "admin-1", role="admin", email="a@example.com", workspace_name="Acme", joined_at="t"
    )
    database.client.put_item(TableName=database.table, Item=admin_row)
    invite, token, _ = store_invites.create_invite(
        database,
        ws,
        email="new@example.com",
        role="member",
        invited_by="admin-1",
        lifetime_seconds=HOUR,
    )
    original_find = store_invites.find

    def find_then_remove(*args: Any, **kwargs: Any) -> Any:
        found = original_find(*args, **kwargs)
        database.client.delete_item(TableName=database.table, Key=keys.member(ws, "admin-1"))
        return found

    monkeypatch.setattr(store_invites, "find", find_then_remove)
    with pytest.raises(store_invites.InviterGone):
        store_invites.accept(database, token, user_id="new-1", email="new@example.com")
    assert database.get(keys.member(ws, "new-1"), consistent=True) is None
    assert store_invites.list_invites(database, ws)[0].state == "pending"
    assert invite.invited_by == "admin-1"


def test_withdrawing_a_makers_invites_leaves_everyone_elses(database):
    ws, _ = workspace_with_admin(database)
    mine, _, _ = make(database, ws, "a@example.com", [])
    others, _, _ = store_invites.create_invite(
        database, ws, email="b@example.com", role="member", invited_by="z", lifetime_seconds=HOUR
    )
    assert store_invites.withdraw_invites_of(database, ws, "owner-1") == 1
    states = {i.invite_id: i.state for i in store_invites.list_invites(database, ws)}
    assert states == {mine.invite_id: "revoked", others.invite_id: "pending"}
