"""store.account_tokens and store.account_changes: mailed tokens are random, stored only as a
hash, scoped to one purpose, single use and expiring; each change they allow happens in the
same transaction as spending them."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from store import account_changes, account_tokens, accounts, keys
from store import workspaces as store_workspaces
from tests.support.auth import put_account
from tests.support.helpers import V1_PASSWORD_HASH, scan_all


def _new(database: Any, email: str = "ann@x.com") -> accounts.Account:
    return accounts.create_account(database, email, "Ann", "pbkdf2:sha256:1$a$b")


def _issue(database: Any, account: accounts.Account, purpose: str, **kw: Any) -> str:
    return account_tokens.issue(
        database,
        purpose,
        user_id=account.user_id,
        email=kw.get("email", account.email),
        lifetime_seconds=kw.get("lifetime", 600),
    )


def test_new_accounts_start_unconfirmed_and_v1_accounts_count_as_confirmed(database: Any):
    assert _new(database).confirmed is False
    v1_id = put_account(database, "old@x.com", V1_PASSWORD_HASH)
    assert accounts.get_account(database, v1_id).confirmed is True


def test_the_token_is_only_stored_as_its_hash_and_only_for_its_purpose(database: Any):
    account = _new(database)
    token = _issue(database, account, account_tokens.CONFIRM)

    assert len(token) >= 43  # 256 bits, URL-safe
    assert token not in str(scan_all(database))
    assert account_tokens.find(database, account_tokens.CONFIRM, token).user_id == account.user_id
    assert account_tokens.find(database, account_tokens.RESET, token) is None
    assert account_tokens.find(database, account_tokens.CONFIRM, token + "x") is None
    assert account_tokens.find(database, account_tokens.CONFIRM, "a" * 500) is None


def test_an_expired_token_is_unknown_even_before_ttl_removes_it(database: Any):
    account = _new(database)
    token = _issue(database, account, account_tokens.CONFIRM, lifetime=-1)
    assert account_tokens.find(database, account_tokens.CONFIRM, token) is None


def test_confirming_spends_the_token_once(database: Any):
    account = _new(database)
    token = _issue(database, account, account_tokens.CONFIRM)
    ticket = account_tokens.find(database, account_tokens.CONFIRM, token)

    account_changes.confirm_address(database, ticket)

    assert accounts.get_account(database, account.user_id).confirmed is True
    assert account_tokens.find(database, account_tokens.CONFIRM, token) is None
    with pytest.raises(account_changes.TokenUnusable):
        account_changes.confirm_address(database, ticket)


def test_a_reset_sets_the_password_and_moves_the_session_generation(database: Any):
    account = _new(database)
    ticket = account_tokens.find(
        database, account_tokens.RESET, _issue(database, account, account_tokens.RESET)
    )
    account_changes.reset_password(database, ticket, "pbkdf2:sha256:1$new$hash")
    after = accounts.get_account(database, account.user_id)
    assert after.password_hash == "pbkdf2:sha256:1$new$hash"
    assert after.session_generation == account.session_generation + 1
    with pytest.raises(account_changes.TokenUnusable):
        account_changes.reset_password(database, ticket, "pbkdf2:sha256:1$other$hash")


def test_changing_the_address_moves_the_pointer_and_the_membership_copies(database: Any):
    account = _new(database)
    workspace = store_workspaces.create_workspace(database, "Acme", account.user_id, account.email)
    token = _issue(database, account, account_tokens.EMAIL_CHANGE, email="new@x.com")
    ticket = account_tokens.find(database, account_tokens.EMAIL_CHANGE, token)

    account_changes.change_email(database, ticket, account.email)

    assert database.get(keys.email("ann@x.com"), consistent=True) is None
    assert accounts.find_by_email(database, "new@x.com").user_id == account.user_id
    member = store_workspaces.get_member(database, workspace.workspace_id, account.user_id)
    assert member.email == "new@x.com"


def test_an_address_taken_meanwhile_is_refused_and_nothing_moves(database: Any):
    account = _new(database)
    token = _issue(database, account, account_tokens.EMAIL_CHANGE, email="new@x.com")
    ticket = account_tokens.find(database, account_tokens.EMAIL_CHANGE, token)
    _new(database, "new@x.com")  # someone registers the address before the link is opened
    before = scan_all(database)

    with pytest.raises(accounts.EmailTaken):
        account_changes.change_email(database, ticket, account.email)

    assert scan_all(database) == before
    assert accounts.find_by_email(database, "ann@x.com").user_id == account.user_id


@pytest.mark.local_only("real concurrency: moto is not safe under threads")
def test_two_uses_of_one_reset_link_at_once_make_one_change(database: Any):
    account = _new(database)
    ticket = account_tokens.find(
        database, account_tokens.RESET, _issue(database, account, account_tokens.RESET)
    )
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def use(n: int) -> None:
        barrier.wait()
        try:
            account_changes.reset_password(database, ticket, f"pbkdf2:sha256:1$s{n}$h")
            outcomes.append("changed")
        except account_changes.TokenUnusable:
            outcomes.append("refused")

    threads = [threading.Thread(target=use, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["changed"] + ["refused"] * 7
    assert accounts.get_account(database, account.user_id).session_generation == 1
