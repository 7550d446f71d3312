"""Helpers for migration tests: v1 data sets, table snapshots and fault injection."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from werkzeug.security import generate_password_hash

from store.db import Database, build_client
from store.migration import legacy
from store.migration.claim import ClaimObserver, try_acquire
from store.migration.engine import Settings, run_migration
from store.migration.flag import Flag
from tests.support.helpers import PASSWORD, is_moto, scan_all

FAST = Settings(lease=30.0, budget=3.0, writers=4, segments=4)


@pytest.fixture
def seed(database: Database) -> Callable[..., list[legacy.SeededAccount]]:
    """Write a v1 data set whose accounts sign in with tests.support.helpers.PASSWORD."""
    password_hash = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")

    def write(items: int = 40, settings: int = 5, members: int = 4, seed: int = 7):
        rows, accounts = legacy.build_dataset(items, settings, members, password_hash, seed=seed)
        legacy.write_rows(database, rows)
        return accounts

    return write


@pytest.fixture
def raw_client(backend: str, ddb_client: Any) -> Any:
    """A second client with no fault hooks, for a fault handler to do real work with."""
    endpoint = ddb_client.meta.endpoint_url if backend == "local" else None
    return build_client(endpoint=endpoint, region="us-east-1", local_credentials=True)


@contextlib.contextmanager
def hooked(client: Any, event: str, handler: Callable[..., Any]) -> Iterator[None]:
    client.meta.events.register(event, handler)
    try:
        yield
    finally:
        client.meta.events.unregister(event, handler)


def is_copy(params: dict[str, Any]) -> bool:
    """Whether a TransactWriteItems call is one of the migration's fenced copies."""
    return any(
        a.get("ConditionCheck", {}).get("Key", {}).get("SK", {}).get("S", "").startswith("FENCE#")
        for a in params.get("TransactItems", [])
    )


def cancelled(reasons: list[str]) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": r} for r in reasons],
        },
        "TransactWriteItems",
    )


def throttled(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        operation,
    )


def rows_with(database: Database, pk_prefix: str, sk_prefix: str = "") -> list[dict[str, Any]]:
    return [
        r
        for r in scan_all(database)
        if r["PK"]["S"].startswith(pk_prefix) and r["SK"]["S"].startswith(sk_prefix)
    ]


def user_id_of(database: Database, email: str) -> str:
    row = database.get({"PK": {"S": f"EMAIL#{email}"}, "SK": {"S": "EMAIL"}}, consistent=True)
    assert row, f"no account for {email}"
    return row["userId"]["S"]


def for_backend(database: Database, settings: Settings) -> Settings:
    """One writer on moto, which is not safe under concurrent transactions."""
    return dataclasses.replace(settings, writers=1) if is_moto(database.client) else settings


def migrate(
    database: Database, user_id: str = "u-test", settings: Settings = FAST, **options: Any
) -> Flag | None:
    settings = for_backend(database, settings)
    run = try_acquire(
        database,
        user_id,
        ClaimObserver(),
        lease=settings.lease,
        segments=settings.segments,
    )
    assert run is not None, "the claim was not free"
    return run_migration(database, run, settings, **options)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")
