"""Helpers for migration tests: v1 data sets, table snapshots and fault injection."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from store.db import Database, build_client
from store.migration import legacy
from store.migration.acquire import try_acquire
from store.migration.claim import ClaimObserver
from store.migration.engine import Settings, run_migration
from store.migration.flag import Flag
from store.migration.rows import same_data
from tests.support.helpers import is_moto, rows_with, scan_all, seed_v1

FAST = Settings(lease=30.0, budget=3.0, writers=4, segments=4)


@pytest.fixture
def seed(database: Database) -> Callable[..., list[legacy.SeededAccount]]:
    """Write a v1 data set whose accounts sign in with tests.support.helpers.PASSWORD."""

    def write(items: int = 40, settings: int = 5, members: int = 4, seed: int = 7):
        return seed_v1(database, items=items, settings=settings, members=members, seed=seed)

    return write


@pytest.fixture
def raw_client(backend: str, ddb_client: Any) -> Any:
    """A second client with no fault hooks, for a fault handler to do real work with."""
    endpoint = ddb_client.meta.endpoint_url if backend == "local" else None
    return build_client(endpoint=endpoint, region="us-east-1", local_credentials=True)


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


def for_backend(database: Database, settings: Settings) -> Settings:
    """One writer on moto, which is not safe under concurrent transactions."""
    return dataclasses.replace(settings, writers=1) if is_moto(database.client) else settings


def after_backoff() -> float:
    """A wall clock past any backoff a failed run set (at most a minute and a fifth)."""
    return time.time() + 120


def migrate(
    database: Database,
    user_id: str = "u-test",
    settings: Settings = FAST,
    *,
    when: Callable[[], float] = time.time,
    **options: Any,
) -> Flag | None:
    """Take the claim (as of the wall clock ``when``) and run the migration."""
    settings = for_backend(database, settings)
    run = try_acquire(
        database,
        user_id,
        ClaimObserver(),
        lease=settings.lease,
        segments=settings.segments,
        wall=when,
    )
    assert run is not None, "the claim was not free"
    return run_migration(database, run, settings, **options)


def v1_rows(database: Database) -> dict[str, list[dict[str, Any]]]:
    rows = scan_all(database)
    return {
        "items": [r for r in rows if r["PK"]["S"].startswith("ITEM#") and r["SK"]["S"] == "ITEM"],
        "settings": [r for r in rows if r["PK"]["S"] == "SETTINGS"],
        "members": [r for r in rows if r["PK"]["S"] == "MEMBERS"],
    }


def assert_exact_copy(database: Database, flag: Flag) -> None:
    """Every v1 row has exactly one identical v2 copy in the flag's workspace."""
    ws = flag.workspace_id
    v1 = v1_rows(database)
    v2 = {(r["PK"]["S"], r["SK"]["S"]): r for r in rows_with(database, f"WORKSPACE#{ws}")}
    for row in v1["items"]:
        copy = v2[(f"WORKSPACE#{ws}", "ITEM#" + row["PK"]["S"][len("ITEM#") :])]
        assert same_data(row, copy)
    for row in v1["settings"]:
        assert same_data(row, v2[(f"WORKSPACE#{ws}", "SET#" + row["SK"]["S"])])
    for row in v1["members"]:
        copy = v2[(f"WORKSPACE#{ws}", "MEMBER#" + row["SK"]["S"])]
        assert same_data(row, copy)
        assert copy["role"] == row["role"]
        assert copy["GSI1PK"] == {"S": "USER#" + row["SK"]["S"]}
    counted = {k: len(v) for k, v in v1.items()}
    assert (flag.items, flag.settings, flag.members) == (
        counted["items"],
        counted["settings"],
        counted["members"],
    )
    v2_items = [k for k in v2 if k[1].startswith("ITEM#")]
    assert len(v2_items) == counted["items"]


def item_puts(params: dict[str, Any]) -> list[str]:
    """The sort keys of the items a BatchWriteItem request puts (a copy's page, say)."""
    return [
        r["PutRequest"]["Item"]["SK"]["S"]
        for rows in params.get("RequestItems", {}).values()
        for r in rows
        if r["PutRequest"]["Item"]["SK"]["S"].startswith("ITEM#")
    ]
