"""store.accounts: accounts shared with v1, signed-out sessions (failed sign-ins:
tests/blueprints/auth/test_lockout.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from store import accounts, keys
from tests.support.auth import dynamodb_calls, put_account
from tests.support.helpers import scan_all

# --- accounts ----------------------------------------------------------------------------------


def test_create_account_writes_the_v1_shapes_with_a_lower_case_address(database: Any):
    account = accounts.create_account(database, " Alice@X.com ", "Alice", "pbkdf2:sha256:1$a$b")

    assert account.email == "alice@x.com" and account.name == "Alice"
    assert len(account.user_id) == 32
    pointer = database.get(keys.email("alice@x.com"), consistent=True)
    assert pointer == {**keys.email("alice@x.com"), "userId": {"S": account.user_id}}
    profile = database.get(keys.user(account.user_id), consistent=True)
    assert profile["email"] == {"S": "alice@x.com"}
    assert profile["passwordHash"] == {"S": "pbkdf2:sha256:1$a$b"}
    assert len(scan_all(database)) == 2


def test_a_second_account_for_an_address_is_refused_and_nothing_is_written(database: Any):
    accounts.create_account(database, "alice@x.com", "Alice", "h$a$b")
    before = scan_all(database)

    with pytest.raises(accounts.EmailTaken):
        accounts.create_account(database, "ALICE@x.com", "Mallory", "h$c$d")

    assert scan_all(database) == before


def test_a_v1_account_blocks_a_new_one_too(database: Any):
    put_account(database, "carol@x.com", "pbkdf2:sha256:260000$s$h")
    with pytest.raises(accounts.EmailTaken):
        accounts.create_account(database, "Carol@X.com", "Carol", "h$a$b")


def test_a_transaction_conflict_is_retried_not_shown_as_an_error(database: Any):
    """Real DynamoDB cancels a transaction that races another on the same item with
    TransactionConflict (not ConditionalCheckFailed); moto and DynamoDB Local serialise."""
    conflicts = []

    def conflict_once(model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems" and not conflicts:
            conflicts.append(1)
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [
                        {"Code": "TransactionConflict"},
                        {"Code": "None"},
                    ],
                },
                "TransactWriteItems",
            )

    database.client.meta.events.register("before-call.dynamodb", conflict_once)
    try:
        account = accounts.create_account(database, "alice@x.com", "Alice", "h$a$b")
    finally:
        database.client.meta.events.unregister("before-call.dynamodb", conflict_once)

    assert conflicts == [1]
    assert accounts.find_by_email(database, "alice@x.com") == account


def test_find_by_email_ignores_case_and_reads_consistently(database: Any):
    created = accounts.create_account(database, "alice@x.com", "Alice", "h$a$b")
    with dynamodb_calls(database.client) as calls:
        found = accounts.find_by_email(database, "  ALICE@x.COM")
    assert found == created
    assert [params.get("ConsistentRead") for _, params in calls] == [True, True]
    assert accounts.find_by_email(database, "nobody@x.com") is None


def test_a_dangling_email_pointer_is_no_account(database: Any):
    database.client.put_item(
        TableName=database.table, Item={**keys.email("ghost@x.com"), "userId": {"S": "gone"}}
    )
    assert accounts.find_by_email(database, "ghost@x.com") is None


def test_replacing_a_hash_only_succeeds_from_the_expected_old_one(database: Any):
    user_id = put_account(database, "carol@x.com", "old$s$h")

    assert accounts.replace_password_hash(database, user_id, "old$s$h", "new$s$h") is True
    assert accounts.replace_password_hash(database, user_id, "old$s$h", "newer$s$h") is False
    assert accounts.get_account(database, user_id).password_hash == "new$s$h"


# --- signed-out sessions -----------------------------------------------------------------------


def test_a_revoked_session_is_revoked_until_its_expiry(database: Any):
    accounts.revoke_session(database, "sid-1", int(time.time()) + 3600)

    revoked, rows = accounts.session_rows(database, "sid-1", [keys.user("nobody")])
    assert revoked is True and rows == [None]
    assert accounts.session_rows(database, "sid-2", [])[0] is False
    row = database.get(keys.revoked_session("sid-1"), consistent=True)
    assert "revokedAt" in row


def test_a_revocation_past_its_ttl_is_ignored_even_if_dynamodb_has_not_deleted_it(
    database: Any,
):
    accounts.revoke_session(database, "sid-old", int(time.time()) - 10)
    assert accounts.session_rows(database, "sid-old", [])[0] is False


def test_session_rows_reads_the_extra_rows_in_the_same_call(database: Any):
    user_id = put_account(database, "carol@x.com", "h$a$b")
    with dynamodb_calls(database.client) as calls:
        revoked, [profile, missing] = accounts.session_rows(
            database, "sid", [keys.user(user_id), keys.user("nobody")]
        )
    assert revoked is False and profile is not None and missing is None
    assert [name for name, _ in calls] == ["BatchGetItem"]


# --- preferences -------------------------------------------------------------------------------


def test_the_last_workspace_is_remembered_per_person(database: Any):
    assert accounts.last_workspace(database, "u1") is None
    accounts.remember_workspace(database, "u1", "ws-1")
    accounts.remember_workspace(database, "u1", "ws-2")
    assert accounts.last_workspace(database, "u1") == "ws-2"
    assert accounts.last_workspace(database, "u2") is None
