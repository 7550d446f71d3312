"""store.batch: chunks within BatchWriteItem's limits (R4), backoff and budgets (R5), and
batch reads in order."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from store import batch, keys
from store.batch import Backoff, BudgetExceeded, chunk_requests, get_many, write_chunk
from store.db import Database
from tests.support.helpers import scan_all

# --- R4: the chunker ---------------------------------------------------------------------------


def _put(pk: str, sk: str, padding: int = 0) -> dict[str, Any]:
    return {"PutRequest": {"Item": {**keys.key(pk, sk), "pad": {"S": "x" * padding}}}}


def _delete(pk: str, sk: str) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": keys.key(pk, sk)}}


def _key(request: dict[str, Any]) -> tuple[str, str]:
    item = request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"]
    return item["PK"]["S"], item["SK"]["S"]


def _size(request: dict[str, Any]) -> int:
    return len(json.dumps(request))


requests_strategy = st.lists(
    st.one_of(
        st.builds(
            _put,
            st.sampled_from("ABCDE"),
            st.sampled_from("xyz"),
            st.integers(min_value=0, max_value=3000),
        ),
        st.builds(_delete, st.sampled_from("ABCDE"), st.sampled_from("xyz")),
    ),
    max_size=90,
)


@settings(max_examples=150, deadline=None)
@given(requests=requests_strategy, max_count=st.integers(1, 25), max_bytes=st.integers(1, 9000))
def test_chunks_keep_the_limits_and_give_back_the_input(
    requests: list[dict[str, Any]], max_count: int, max_bytes: int
):
    chunks = list(chunk_requests(requests, max_count=max_count, max_bytes=max_bytes))

    assert [request for chunk in chunks for request in chunk] == requests
    for chunk in chunks:
        assert 1 <= len(chunk) <= max_count
        keys_in_chunk = [_key(request) for request in chunk]
        assert len(set(keys_in_chunk)) == len(keys_in_chunk)  # BatchWriteItem refuses twins
        if len(chunk) > 1:  # one request larger than the limit still has to go alone
            assert sum(_size(request) for request in chunk) <= max_bytes


@settings(max_examples=60, deadline=None)
@given(requests=requests_strategy)
def test_the_default_limits_are_dynamodbs(requests: list[dict[str, Any]]):
    for chunk in chunk_requests(requests):
        assert len(chunk) <= 25
        assert len({_key(request) for request in chunk}) == len(chunk)


def test_sixteen_megabytes_is_never_exceeded():
    requests = [_put(f"P{number}", "S", 900_000) for number in range(40)]
    chunks = list(chunk_requests(requests))
    assert [request for chunk in chunks for request in chunk] == requests
    assert all(sum(_size(r) for r in chunk) <= 16 * 1024 * 1024 for chunk in chunks)
    assert len(chunks) >= 3


# --- R5: retries of UnprocessedItems and throttling ---------------------------------------------


class _Clock:
    """A fake ``time`` module for store.batch: sleeping advances the monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class _Ceiling(random.Random):
    """A jitter source that always picks the top of the range, to show the ceilings."""

    def uniform(self, a: float, b: float) -> float:
        return b


class _FlakyTable:
    """A BatchWriteItem that refuses some requests (UnprocessedItems) or raises, on script."""

    def __init__(self, refuse: Any) -> None:
        self.refuse = refuse  # (call number, pending requests) -> requests left unprocessed
        self.calls = 0
        self.written: list[tuple[str, str]] = []

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        [(table, requests)] = RequestItems.items()
        assert len(requests) <= 25
        refused = self.refuse(self.calls, requests)
        if isinstance(refused, Exception):
            raise refused
        self.written.extend(_key(r) for r in requests if r not in refused)
        return {"UnprocessedItems": {table: refused} if refused else {}}


def _db(table: _FlakyTable) -> Database:
    return Database(client=table, table="tbl")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(batch, "time", SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep))
    return fake


def _chunk(count: int = 20) -> list[dict[str, Any]]:
    return [_put(f"ITEM#{number}", "ITEM") for number in range(count)]


def test_partly_unprocessed_writes_are_retried_until_each_row_is_written_once(clock: _Clock):
    rng = random.Random(5)
    table = _FlakyTable(
        lambda call, pending: rng.sample(pending, len(pending) // 2) if call <= 4 else []
    )
    chunk = _chunk()

    write_chunk(_db(table), chunk, deadline=clock.now + 60, backoff=Backoff(sleep=clock.sleep))

    assert sorted(table.written) == sorted(_key(r) for r in chunk)
    assert table.calls == 5
    assert len(clock.sleeps) == 4


def test_refused_writes_back_off_with_growing_pauses(clock: _Clock):
    table = _FlakyTable(lambda call, pending: list(pending) if call <= 5 else [])
    backoff = Backoff(sleep=clock.sleep, rng=_Ceiling())

    write_chunk(_db(table), _chunk(), deadline=clock.now + 60, backoff=backoff)

    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6]


def test_throttling_errors_back_off_with_growing_capped_jittered_pauses(clock: _Clock):
    throttled = ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
        "BatchWriteItem",
    )
    table = _FlakyTable(lambda call, pending: throttled if call <= 8 else [])

    write_chunk(
        _db(table),
        _chunk(),
        deadline=clock.now + 60,
        backoff=Backoff(sleep=clock.sleep, rng=_Ceiling()),
    )
    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]  # capped at 2 s

    jittered = _Clock()
    backoff = Backoff(sleep=jittered.sleep, rng=random.Random(1))
    for attempt in range(1, 9):
        backoff.pause(deadline=clock.now + 60)
        assert 0 <= jittered.sleeps[-1] <= min(2.0, 0.05 * 2**attempt)
    assert len(set(jittered.sleeps)) == len(jittered.sleeps)  # jitter: no lock-step


def test_permanent_refusal_stops_within_the_budget_with_a_typed_error(clock: _Clock):
    table = _FlakyTable(lambda call, pending: list(pending))
    start = clock.now

    with pytest.raises(BudgetExceeded, match="20 writes still unprocessed"):
        write_chunk(_db(table), _chunk(), deadline=start + 5, backoff=Backoff(sleep=clock.sleep))

    assert clock.now - start <= 5 + 1e-9  # never sleeps past the deadline
    assert table.written == []


def test_an_error_that_retrying_cannot_fix_is_raised_at_once(clock: _Clock):
    invalid = ClientError(
        {"Error": {"Code": "ValidationException", "Message": "too big"}}, "BatchWriteItem"
    )
    table = _FlakyTable(lambda call, pending: invalid)

    with pytest.raises(ClientError, match="too big"):
        write_chunk(
            _db(table), _chunk(), deadline=clock.now + 60, backoff=Backoff(sleep=clock.sleep)
        )

    assert table.calls == 1 and clock.sleeps == []


# --- against a real server ---------------------------------------------------------------------


def test_a_logical_write_of_many_rows_arrives_whole(database: Database):
    rows = [
        {**keys.v1_item(f"{number:04d}"), "title": {"S": f"Item {number}"}, "n": {"N": "1.50"}}
        for number in range(63)
    ]
    deadline = batch.time.monotonic() + 60

    for chunk in chunk_requests({"PutRequest": {"Item": row}} for row in rows):
        write_chunk(database, chunk, deadline=deadline)

    stored = scan_all(database)
    assert [row["PK"]["S"] for row in stored] == [row["PK"]["S"] for row in rows]
    assert [row["title"] for row in stored] == [row["title"] for row in rows]


@pytest.mark.local_only("moto accepts 26 requests in one BatchWriteItem")
def test_the_server_really_refuses_26_requests_in_one_call(database: Database):
    requests = [{"PutRequest": {"Item": keys.v1_item(str(number))}} for number in range(26)]
    with pytest.raises(ClientError, match="ValidationException"):
        database.client.batch_write_item(RequestItems={database.table: requests})


def test_get_many_reads_past_100_keys_in_order_with_gaps_and_repeats(database: Database):
    written = [keys.v1_item(f"{number:03d}") for number in range(0, 240, 2)]
    deadline = batch.time.monotonic() + 60
    for chunk in chunk_requests({"PutRequest": {"Item": key}} for key in written):
        write_chunk(database, chunk, deadline=deadline)
    wanted = [keys.v1_item(f"{number:03d}") for number in range(239, -1, -1)]
    wanted += wanted[:5]

    found = get_many(database, wanted)

    assert len(found) == len(wanted)
    for key, row in zip(wanted, found, strict=True):
        present = int(key["PK"]["S"].removeprefix("ITEM#")) % 2 == 0
        assert (row is not None) is present
        if row is not None:
            assert row["PK"] == key["PK"]
    assert get_many(database, []) == []
