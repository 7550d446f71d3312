"""The flag: read strongly consistent, written once, a lost answer recognised (R2, R8, R16)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ReadTimeoutError

from store import keys
from store.migration.flag import Flag, read_flag, write_flag
from tests.support.helpers import hooked
from tests.support.migration import (
    migrate,
)


def test_the_flag_read_is_strongly_consistent(database, seed, ddb_client):
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == keys.migration_flag():
            seen.append(dict(params))

    with hooked(ddb_client, "provide-client-params.dynamodb.GetItem", record):
        read_flag(database)

    assert seen and all(p.get("ConsistentRead") is True for p in seen)


def test_a_flag_write_whose_answer_was_lost_is_recognised_as_our_own(database, seed, ddb_client):
    seed(items=5)
    state = {"flag_call": False, "lost": False}

    def spot_the_flag(params: dict[str, Any], **_: Any) -> None:
        puts = [a["Put"]["Item"] for a in params.get("TransactItems", []) if "Put" in a]
        state["flag_call"] = any(item["SK"] == {"S": "V2_COMPLETE"} for item in puts)

    def lose_first_flag_answer(**_: Any) -> None:
        if state["flag_call"] and not state["lost"]:
            state["lost"] = True
            raise ReadTimeoutError(endpoint_url="dynamodb")

    with (
        hooked(ddb_client, "provide-client-params.dynamodb.TransactWriteItems", spot_the_flag),
        hooked(ddb_client, "after-call.dynamodb.TransactWriteItems", lose_first_flag_answer),
    ):
        flag = migrate(database)

    assert state["lost"]
    assert flag is not None
    assert read_flag(database).run_id == flag.run_id


def test_a_second_finisher_treats_an_existing_flag_as_done(database, seed):
    seed(items=5)
    first = migrate(database)
    late = Flag("late", "2030-01-01T00:00:00.000000Z", "other", 1, 1, 1, 1, "late-run")

    assert write_flag(database, late) is False
    assert read_flag(database) == first
