"""store.sessions, store.limits and store.account_removal: the per-request session check (one
BatchGetItem with the profile), the session list, signing out one or all, atomic rate
limits, and deleting an account."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from store import account_removal, accounts, keys, limits
from store import sessions as store_sessions
from store import workspaces as store_workspaces
from store.sessions import SessionRef
from tests.support.auth import dynamodb_calls
from tests.support.helpers import rows_with


def _new(database: Any, email: str = "ann@x.com") -> accounts.Account:
    return accounts.create_account(database, email, "Ann", "pbkdf2:sha256:1$a$b")


def _record(
    database: Any, account: accounts.Account, sid: str, agent: str = "Firefox"
) -> SessionRef:
    ref = SessionRef(sid, account.user_id, account.session_generation)
    store_sessions.record(database, ref, user_agent=agent, until_epoch=2_000_000_000)
    return ref


def test_the_check_reads_revocation_profile_and_extra_rows_in_one_batch(database: Any):
    account = _new(database)
    with dynamodb_calls(database.client) as calls:
        found, [extra] = store_sessions.check(
            database, SessionRef("sid", account.user_id, 0), [keys.user_prefs(account.user_id)]
        )
    assert [name for name, _ in calls] == ["BatchGetItem"]
    assert found.user_id == account.user_id and extra is None


@pytest.mark.parametrize("what", ["revoked", "generation moved", "account deleted"])
def test_the_check_refuses_a_signed_out_session(database: Any, what: str):
    account = _new(database)
    ref = SessionRef("sid", account.user_id, 0)
    if what == "revoked":
        accounts.revoke_session(database, "sid", 2_000_000_000)
    elif what == "generation moved":
        assert store_sessions.next_generation(database, account.user_id) == 1
    else:
        database.client.delete_item(TableName=database.table, Key=keys.user(account.user_id))
    with pytest.raises(accounts.SessionRevoked):
        store_sessions.check(database, ref, [])


def test_sessions_are_listed_and_signed_out_one_or_all_but_one(database: Any):
    account = _new(database)
    first, second, third = (_record(database, account, f"s{i}", f"Agent {i}") for i in range(3))
    assert {s.session_id for s in store_sessions.list_sessions(database, account)} == {
        "s0",
        "s1",
        "s2",
    }
    assert store_sessions.sign_out_one(database, account.user_id, "s1", 2_000_000_000)
    assert not store_sessions.sign_out_one(database, "someone-else", "s0", 2_000_000_000)
    with pytest.raises(accounts.SessionRevoked):
        store_sessions.check(database, second, [])

    generation = store_sessions.next_generation(database, account.user_id)
    store_sessions.keep_only(
        database, account.user_id, SessionRef("s2", account.user_id, generation)
    )
    moved = accounts.get_account(database, account.user_id)
    assert [s.session_id for s in store_sessions.list_sessions(database, moved)] == ["s2"]
    with pytest.raises(accounts.SessionRevoked):
        store_sessions.check(database, first, [])
    store_sessions.check(database, SessionRef("s2", account.user_id, generation), [])


def test_a_limit_allows_its_count_per_window_then_says_how_long_to_wait(database: Any):
    waits = [limits.take(database, "t", "ann", limit=3, window_seconds=3600) for _ in range(5)]
    assert waits[:3] == [0, 0, 0]
    assert all(0 < wait <= 3601 for wait in waits[3:])
    assert limits.take(database, "t", "bob", limit=3, window_seconds=3600) == 0


@pytest.mark.local_only("real concurrency")
def test_a_limit_holds_under_concurrent_requests(database: Any):
    barrier = threading.Barrier(10)
    waits: list[int] = []

    def take() -> None:
        barrier.wait()
        waits.append(limits.take(database, "t", "ann", limit=3, window_seconds=3600))

    threads = [threading.Thread(target=take) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(w == 0 for w in waits) == [False] * 7 + [True] * 3


def _join_as_member(database: Any, workspace: Any, account: accounts.Account) -> None:
    database.client.put_item(
        TableName=database.table,
        Item=store_workspaces.member_row(
            workspace.workspace_id,
            account.user_id,
            role="member",
            email=account.email,
            workspace_name=workspace.name,
            joined_at="2026-01-01T00:00:00.000000Z",
        ),
    )


def test_deleting_the_last_owner_is_refused_naming_the_workspaces(database: Any):
    account = _new(database)
    other = _new(database, "bob@x.com")
    store_workspaces.create_workspace(database, "Zeta", account.user_id, account.email)
    shared = store_workspaces.create_workspace(database, "Alpha", other.user_id, other.email)
    store_workspaces.create_workspace(database, "Beta", account.user_id, account.email)
    _join_as_member(database, shared, account)
    with pytest.raises(account_removal.LastOwnerOf) as refused:
        account_removal.delete_account(database, account)
    assert refused.value.names == ["Beta", "Zeta"]
    assert accounts.get_account(database, account.user_id) is not None


def test_deleting_an_account_removes_memberships_pointer_profile_and_its_rows(database: Any):
    owner = _new(database, "bob@x.com")
    account = _new(database)
    shared = store_workspaces.create_workspace(database, "Alpha", owner.user_id, owner.email)
    _join_as_member(database, shared, account)
    _record(database, account, "s1")
    accounts.remember_workspace(database, account.user_id, shared.workspace_id)

    account_removal.delete_account(database, account)

    assert store_workspaces.get_member(database, shared.workspace_id, account.user_id) is None
    assert accounts.find_by_email(database, "ann@x.com") is None
    assert rows_with(database, keys.USER_PREFIX + account.user_id) == []
    with pytest.raises(accounts.SessionRevoked):
        store_sessions.check(database, SessionRef("s1", account.user_id, 0), [])
