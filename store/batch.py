"""Batch reads and writes that keep DynamoDB's limits and back off when it pushes back.

boto3's ``batch_writer`` re-sends UnprocessedItems at once and forever; under sustained
throttling that neither backs off (as AWS asks) nor stops, so these helpers do both.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from .db import Database, RawItem, error_code

MAX_BATCH_WRITE = 25
MAX_BATCH_GET = 100
MAX_BATCH_BYTES = 16 * 1024 * 1024
RETRYABLE_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


def _sleep(seconds: float) -> None:
    """Backoff's pause; a seam so tests can record the delays instead of waiting."""
    time.sleep(seconds)


class BudgetExceeded(Exception):
    """DynamoDB kept refusing work until the time or attempt budget ran out."""


@dataclass
class Backoff:
    """Capped exponential backoff with full jitter (AWS Architecture Blog, "Exponential
    Backoff and Jitter"): concurrent writers spread out instead of retrying in lock-step."""

    base: float = 0.05
    cap: float = 2.0
    sleep: Callable[[float], None] = field(default=lambda seconds: _sleep(seconds))
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def pause(self, deadline: float) -> None:
        self.attempt += 1
        # The exponent stops growing once the cap is reached (and before a float overflows).
        ceiling = min(self.cap, self.base * 2 ** min(self.attempt, 32))
        delay = min(self.rng.uniform(0, ceiling), max(0.0, deadline - time.monotonic()))
        if delay > 0:
            self.sleep(delay)

    def reset(self) -> None:
        self.attempt = 0


def is_retryable(exc: ClientError) -> bool:
    return error_code(exc) in RETRYABLE_ERRORS


T = TypeVar("T")


def retry(
    call: Callable[[], T],
    *,
    transient: Callable[[Exception], bool],
    deadline: float,
    attempts: int | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    before_retry: Callable[[], None] | None = None,
    what: str = "a request",
) -> T:
    """``call()``, called again after a backoff pause for every error ``transient`` accepts.

    Without ``attempts`` it gives up with BudgetExceeded once ``deadline`` has passed. With
    ``attempts`` it re-raises the last error after that many calls, and the deadline only
    shortens the pauses: a write whose outcome is unknown is repeated that many times however
    long each call took. ``before_retry`` runs after each pause (for example, to stop when
    the caller's claim was lost meanwhile); ``what`` names the work in BudgetExceeded."""
    backoff = Backoff()
    calls = 0
    while True:
        calls += 1
        try:
            return call()
        except Exception as exc:
            if not transient(exc) or (attempts is not None and calls >= attempts):
                raise
            if attempts is None and monotonic() >= deadline:
                raise BudgetExceeded(f"{what} still refused when the budget ran out") from exc
        backoff.pause(deadline)
        if before_retry is not None:
            before_retry()


def _request_key(request: dict[str, Any]) -> tuple[str, str]:
    item = request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"]
    return item["PK"]["S"], item["SK"]["S"]


def _request_size(request: dict[str, Any]) -> int:
    # An upper bound on DynamoDB's own accounting, cheap enough for every row.
    return len(json.dumps(request, default=str))


def chunk_requests(
    requests: Iterable[dict[str, Any]],
    *,
    max_count: int = MAX_BATCH_WRITE,
    max_bytes: int = MAX_BATCH_BYTES,
    key: Callable[[dict[str, Any]], tuple[str, str]] = _request_key,
) -> Iterator[list[dict[str, Any]]]:
    """Group write requests into BatchWriteItem calls: ≤25 requests, ≤16 MB, no key twice.
    ``key`` names the row a request writes (another one for transaction actions)."""
    chunk: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    size = 0
    for request in requests:
        request_key = key(request)
        request_size = _request_size(request)
        if chunk and (
            len(chunk) >= max_count or request_key in seen or size + request_size > max_bytes
        ):
            yield chunk
            chunk, seen, size = [], set(), 0
        chunk.append(request)
        seen.add(request_key)
        size += request_size
    if chunk:
        yield chunk


def write_chunk(
    db: Database,
    chunk: list[dict[str, Any]],
    *,
    deadline: float,
    backoff: Backoff | None = None,
) -> None:
    """Write one chunk completely, retrying what DynamoDB leaves unprocessed, or raise."""
    backoff = backoff or Backoff()
    pending = {db.table: chunk}
    # The last refusal, named as the cause when the budget runs out (for the operator).
    refusal: ClientError | None = None
    while pending:
        sent = sum(len(requests) for requests in pending.values())
        try:
            response = db.client.batch_write_item(RequestItems=pending)
        except ClientError as exc:
            if not is_retryable(exc):
                raise
            response, refusal = {"UnprocessedItems": pending}, exc
        pending = response.get("UnprocessedItems") or {}
        if not pending:
            return
        if sum(len(requests) for requests in pending.values()) < sent:
            # Some got through: DynamoDB is keeping up again, so start the pauses afresh.
            backoff.reset()
        if time.monotonic() >= deadline:
            left = sum(len(v) for v in pending.values())
            raise BudgetExceeded(
                f"{left} writes still unprocessed when the time budget ran out"
            ) from refusal
        backoff.pause(deadline)


def get_many(
    db: Database,
    wanted: list[dict[str, Any]],
    *,
    consistent: bool = True,
    budget_seconds: float = 5.0,
) -> list[RawItem | None]:
    """Read rows by key in as few BatchGetItem calls as possible, in the order asked for."""
    if not wanted:
        return []
    if len(wanted) == 1:
        return [db.get(wanted[0], consistent=consistent)]
    found: dict[tuple[str, str], RawItem] = {}
    deadline = time.monotonic() + budget_seconds
    backoff = Backoff()
    unique = list({(k["PK"]["S"], k["SK"]["S"]): k for k in wanted}.values())
    for start in range(0, len(unique), MAX_BATCH_GET):
        pending: dict[str, Any] = {
            db.table: {"Keys": unique[start : start + MAX_BATCH_GET], "ConsistentRead": consistent}
        }
        while pending:
            response = db.client.batch_get_item(RequestItems=pending)
            for row in response.get("Responses", {}).get(db.table, []):
                found[(row["PK"]["S"], row["SK"]["S"])] = row
            pending = response.get("UnprocessedKeys") or {}
            if pending:
                if time.monotonic() >= deadline:
                    raise BudgetExceeded("keys still unprocessed when the read budget ran out")
                backoff.pause(deadline)
    return [found.get((k["PK"]["S"], k["SK"]["S"])) for k in wanted]
