"""Promise 11 in the engine: failure classes, backoff across runs, the failed state, and
lost answers recognised on the heartbeat, claim, takeover and release (deliverable 4)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from store import batch, keys
from store.batch import BudgetExceeded
from store.db import parse_iso
from store.migration import heartbeat
from store.migration.acquire import try_acquire
from store.migration.claim import (
    STATE_FAILED,
    STATE_RUNNING,
    STATE_WAITING,
    ClaimObserver,
    read_claim,
)
from store.migration.engine import Migration, Settings, run_migration
from store.migration.errors import LostClaim, MigrationError, V1Changed, classify
from store.migration.flag import read_flag
from store.migration.lease import HANDOVER, Release, backoff_seconds, release, reset_for_retry
from tests.support.faults import is_bulk_copy
from tests.support.helpers import hooked
from tests.support.migration import after_backoff, cancelled, migrate, throttled


def client_error(
    code: str, status: int = 400, operation: str = "TransactWriteItems"
) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (throttled("TransactWriteItems"), "transient"),
        (client_error("ThrottlingException"), "transient"),
        (client_error("RequestLimitExceeded"), "transient"),
        (client_error("InternalServerError", 500), "transient"),
        (client_error("SomethingNew", 503), "transient"),
        (client_error("TransactionConflictException"), "transient"),
        (client_error("TransactionInProgressException"), "transient"),
        (cancelled(["None", "ThrottlingError", "TransactionConflict"]), "transient"),
        (cancelled(["None", "ValidationError"]), "permanent"),
        (ReadTimeoutError(endpoint_url="x"), "transient"),
        (ConnectTimeoutError(endpoint_url="x"), "transient"),
        (EndpointConnectionError(endpoint_url="x"), "transient"),
        (BudgetExceeded("still refused"), "transient"),
        (V1Changed("v1 rows changed during the copy"), "transient"),
        (client_error("UnknownOperationException"), "permanent"),
        (client_error("AccessDeniedException"), "permanent"),
        (client_error("UnrecognizedClientException"), "permanent"),
        (client_error("ResourceNotFoundException"), "permanent"),
        (client_error("ValidationException"), "permanent"),
        (client_error("SomethingNew"), "permanent"),
        (NoCredentialsError(), "permanent"),
        (MigrationError("unknown trouble"), "permanent"),
        (RuntimeError("a bug"), "permanent"),
    ],
)
def test_classify_sorts_failures_into_transient_and_permanent(exc, kind):
    assert classify(exc) == kind


@pytest.mark.backend_independent
def test_the_backoff_across_runs_doubles_up_to_a_minute_with_some_jitter():
    for failures, base in ((1, 2), (2, 4), (3, 8), (6, 60), (40, 60)):
        assert base <= backoff_seconds(failures) <= base * 1.2


def _fail_copies(monkeypatch, ddb_client, raw_client, error: Exception) -> None:
    def refuse(**params: Any) -> dict[str, Any]:
        if is_bulk_copy(params):
            raise error
        return raw_client.batch_write_item(**params)

    monkeypatch.setattr(ddb_client, "batch_write_item", refuse)


def test_transient_failures_back_off_across_runs_and_no_take_comes_early(
    database, seed, ddb_client, raw_client, monkeypatch
):
    seed(items=10)
    monkeypatch.setattr(batch, "_sleep", lambda _s: None)
    settings = Settings(lease=30, budget=0.2, writers=1, segments=1)
    _fail_copies(monkeypatch, ddb_client, raw_client, throttled("BatchWriteItem"))
    for attempt in (1, 2):
        assert migrate(database, settings=settings, when=after_backoff) is None
        claim = read_claim(database)
        assert claim.state == STATE_WAITING and claim.failures == attempt
        assert parse_iso(claim.next_attempt_at).timestamp() > time.time() - 1
        assert "ProvisionedThroughputExceeded" in claim.failed_reason
        assert "Provisioned" not in claim.last_error  # people's text has no internals
        # Nobody takes it before its time, however often asked.
        for _ in range(3):
            assert try_acquire(database, "early", ClaimObserver(), lease=30, segments=1) is None
    monkeypatch.undo()

    flag = migrate(database, settings=settings, when=after_backoff)

    assert flag is not None and flag.items == 10
    assert read_claim(database).failures == 0


def test_a_permanent_failure_stops_retrying_until_the_operator_retries(
    database, seed, ddb_client, raw_client, monkeypatch
):
    seed(items=10)
    settings = Settings(lease=30, budget=1, writers=1, segments=1)
    _fail_copies(monkeypatch, ddb_client, raw_client, client_error("UnknownOperationException"))

    assert migrate(database, settings=settings) is None

    claim = read_claim(database)
    assert claim.state == STATE_FAILED and claim.failures == 1
    assert claim.failed_reason.startswith("UnknownOperationException")
    assert "UnknownOperation" not in claim.last_error
    far_later = lambda: time.time() + 3600  # noqa: E731
    taken = try_acquire(database, "u", ClaimObserver(), lease=0, segments=1, wall=far_later)
    assert taken is None
    monkeypatch.undo()

    assert reset_for_retry(database, claim)
    cleared = read_claim(database)
    assert (cleared.state, cleared.failures, cleared.failed_reason) == (STATE_WAITING, 0, "")
    assert migrate(database, settings=settings) is not None


def test_a_claim_the_server_refuses_for_good_is_recorded_failed(database, seed, monkeypatch):
    seed(items=3)

    def no_transactions(**_: Any) -> None:
        raise client_error("UnknownOperationException")

    monkeypatch.setattr(database.client, "transact_write_items", no_transactions)
    with pytest.raises(ClientError):
        try_acquire(database, "u", ClaimObserver(), lease=30, segments=1)

    claim = read_claim(database)
    assert claim.state == STATE_FAILED and "UnknownOperationException" in claim.failed_reason
    assert try_acquire(database, "u", ClaimObserver(), lease=30, segments=1) is None


def _lose_answer(client: Any, operation: str, times: int = 1, when=lambda params: True):
    """An after-call hook: the call was carried out, then its answer is lost."""
    state = {"left": times, "lost": 0, "match": False}

    def spot(params: dict[str, Any], **_: Any) -> None:
        state["match"] = bool(when(params))

    def lose(**_: Any) -> None:
        if state["match"] and state["left"] > 0:
            state["left"] -= 1
            state["lost"] += 1
            raise ReadTimeoutError(endpoint_url="dynamodb")

    return state, [
        hooked(client, f"provide-client-params.dynamodb.{operation}", spot),
        hooked(client, f"after-call.dynamodb.{operation}", lose),
    ]


def test_a_heartbeat_survives_a_connection_error(database, seed, ddb_client):
    seed(items=3)
    run = try_acquire(database, "u", ClaimObserver(), lease=30, segments=1)
    holder = Migration(database, run, Settings(lease=30, segments=1))
    state = {"n": 0}

    def unreachable(**_: Any) -> None:
        state["n"] += 1
        if state["n"] == 1:
            raise EndpointConnectionError(endpoint_url="dynamodb")

    with hooked(ddb_client, "before-call.dynamodb.UpdateItem", unreachable):
        assert holder.heartbeat()  # no answer: logged, retried at the next beat
        assert not holder.lost.is_set()
        assert holder.heartbeat()
    assert read_claim(database).version == holder.version


def test_a_heartbeat_whose_answer_was_lost_is_recognised_as_our_own(database, seed, ddb_client):
    seed(items=3)
    run = try_acquire(database, "u", ClaimObserver(), lease=30, segments=1)
    holder = Migration(database, run, Settings(lease=30, segments=1))
    before = holder.version
    state, hooks = _lose_answer(ddb_client, "UpdateItem")
    with hooks[0], hooks[1]:
        assert holder.heartbeat()  # it landed; we do not know yet
    assert state["lost"] == 1 and holder.version == before
    landed = read_claim(database).version
    assert landed != before

    assert holder.heartbeat()  # refused (the version moved), and the old row shows it is ours

    assert not holder.lost.is_set()
    claim = read_claim(database)
    assert claim.owner == run.run_id and claim.version == holder.version == landed


def test_a_first_claim_and_a_takeover_whose_answers_were_lost_are_ours(database, seed, ddb_client):
    seed(items=3)
    state, hooks = _lose_answer(ddb_client, "TransactWriteItems")
    with hooks[0], hooks[1]:
        first = try_acquire(database, "u", ClaimObserver(), lease=30, segments=1)
    assert state["lost"] == 1
    assert first is not None and read_claim(database).owner == first.run_id
    assert release(database, first, HANDOVER)

    state, hooks = _lose_answer(ddb_client, "TransactWriteItems")
    with hooks[0], hooks[1]:
        second = try_acquire(database, "v", ClaimObserver(), lease=30, segments=1)
    assert state["lost"] == 1
    assert second is not None
    claim = read_claim(database)
    assert claim.owner == second.run_id and claim.state == STATE_RUNNING and claim.attempt == 2


def test_a_release_whose_answer_was_lost_is_recognised(database, seed, ddb_client):
    seed(items=3)
    run = try_acquire(database, "u", ClaimObserver(), lease=30, segments=1)
    state, hooks = _lose_answer(
        ddb_client, "UpdateItem", when=lambda p: p.get("Key") == keys.migration_claim()
    )
    with hooks[0], hooks[1]:
        assert release(database, run, Release.transient("ThrottlingException: slow down"))
    assert state["lost"] == 1
    claim = read_claim(database)
    assert claim.state == STATE_WAITING and claim.failures == 1
    assert claim.failed_reason == "ThrottlingException: slow down"


def test_a_first_claim_cancelled_for_a_permanent_reason_is_recorded_failed(
    database, seed, monkeypatch
):
    """A take the server cancels for a reason other than a condition or a race (here: it
    refuses our claim row) will not pass next time either: the claim is failed, not retried
    by every poll for ever."""
    seed(items=3)
    original = database.client.transact_write_items

    def refuse_claim(**params: Any) -> Any:
        if params["TransactItems"][0].get("Put", {}).get("Item", {}).get("SK") == {"S": "CLAIM"}:
            raise cancelled(["ValidationError", "None", "None"])
        return original(**params)

    monkeypatch.setattr(database.client, "transact_write_items", refuse_claim)

    with pytest.raises(ClientError):
        try_acquire(database, "u", ClaimObserver(), lease=30, segments=1)

    claim = read_claim(database)
    assert claim is not None and claim.state == STATE_FAILED
    assert "ValidationError" in claim.failed_reason or "cancelled" in claim.failed_reason


def test_a_run_that_lost_sight_of_its_heartbeat_hands_the_claim_back_at_once(
    database, seed, monkeypatch
):
    """No heartbeat confirmed for half a lease (a network blip) stops the copy to be safe;
    the claim may still be ours, so the run releases it instead of making everyone wait a
    whole lease for a takeover."""
    seed(items=5)
    run = try_acquire(database, "u", ClaimObserver(), lease=30, segments=1)

    def no_answer(*args: Any, **kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    # The blip itself: without it a heartbeat beating under load could confirm the claim.
    monkeypatch.setattr(heartbeat, "publish", no_answer)
    ticks = iter([0.0])  # the run's start; every later reading is a minute on

    def monotonic() -> float:
        return next(ticks, 60.0)

    assert (
        run_migration(database, run, Settings(lease=30, segments=1, writers=1), monotonic=monotonic)
        is None
    )

    claim = read_claim(database)
    assert claim.owner == run.run_id and claim.state == STATE_WAITING
    assert "heartbeat" in claim.failed_reason
    assert read_flag(database) is None


def test_every_part_of_the_copy_stops_with_the_first_reason_the_claim_was_lost(database, seed):
    """The parts of a copy run side by side: after the first one finds the claim lost, any
    other may fail next and be the one reported, so each must tell the first cause."""
    seed(items=5)
    run = try_acquire(database, "u", ClaimObserver(), lease=30, segments=1)
    now = [0.0]
    migration = Migration(database, run, Settings(lease=30, segments=1), monotonic=lambda: now[0])
    migration.check_fence()  # the claim is ours: nothing raised

    now[0] = 60.0
    for _ in range(2):  # the part that noticed, then any other
        with pytest.raises(LostClaim, match="no heartbeat confirmed"):
            migration.check_fence()
    # A later cause (a writer's fence refused) does not replace the first.
    with pytest.raises(LostClaim, match="no heartbeat confirmed"):
        raise migration.lose("another run took over: this writer's fence moved")
