"""The copy's bulk writes: parallel BatchWriteItem straight into the attempt's partition.

BatchWriteItem carries no condition, so these writes are not fenced. They need not be: the
partition belongs to one attempt (``claim.new_attempt``), and nobody reads it until its
``WORKSPACE`` row and member rows exist, which are written fenced, with the flag. A holder
that lost the claim while paused can only ever write here, into a partition the takeover
abandoned (the new attempt copies into a fresh one), and a holder that let go of the claim
between pages had nothing in flight. So a late copy can never overwrite what people changed
after the flag. The rows DynamoDB refuses on their own are found by sending them one by one,
and kept back; kept-back records (``MIGRATION`` rows, visible to operators) stay fenced.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from store import keys
from store.batch import chunk_requests, retry, write_chunk
from store.db import Database, RawItem, error_code, now_iso, s

from .errors import NETWORK_ERRORS, TRANSIENT, RowRejected, classify
from .fenced import FencedWrites, Pair, RowKey, row_key
from .kept import record_action
from .rows import COUNT_NAMES, WORKSPACE, storable_problem

log = logging.getLogger(__name__)

# The v2 prefixes the copy fills before the flag, with their count names.
BULK_PREFIXES = {"items": keys.ITEM_PREFIX, "settings": keys.SETTING_PREFIX}


class BulkCopies(FencedWrites):
    """The page copies of ``engine.Migration``, beside its fenced writes (``_write``, for
    the records of kept-back rows)."""

    wall: Callable[[], float]
    # Set once a copy got no answer: the run's release then starts a new attempt.
    copy_unanswered: bool = False

    def _copy_page(self, pairs: list[Pair], writer: int) -> Counter[str]:
        """Copy one page of v1 rows into the attempt's partition; return how many were kept
        back, per count name (with a fenced record each): the rows v2 cannot store as they
        are, found before writing, and any other row DynamoDB refuses on its own."""
        kept: list[tuple[str, RawItem, str]] = []
        pending: list[Pair] = []
        for kind, v1, copy in pairs:
            problem = None if kind == WORKSPACE else storable_problem(kind, v1, copy)
            if problem:
                kept.append((kind, v1, problem))
            else:
                pending.append((kind, v1, copy))
        rejected = self._put_copies([copy for *_, copy in pending])
        kept += [
            (kind, v1, rejected[row_key(c)]) for kind, v1, c in pending if row_key(c) in rejected
        ]
        if kept:
            now = now_iso(self.wall)
            records = [record_action(self.db.table, kind, v1, why, now) for kind, v1, why in kept]
            # The records of rows kept back never fail, so nothing comes back.
            if self._write([], records, writer):
                raise RowRejected("DynamoDB refused the record of a kept-back row")
        return Counter(COUNT_NAMES[kind] for kind, _, _ in kept)

    def _put_copies(self, rows: list[RawItem]) -> dict[RowKey, str]:
        """BatchWriteItem every row (25 a call, UnprocessedItems retried with backoff); the
        rows DynamoDB refuses on their own, by key, with its message."""
        deadline = self.monotonic() + self.settings.budget
        rejected: dict[RowKey, str] = {}
        for chunk in chunk_requests({"PutRequest": {"Item": row}} for row in rows):
            self.check_fence()
            try:
                write_chunk(self.db, chunk, deadline=deadline)
            except ClientError as exc:
                if error_code(exc) != "ValidationException":
                    raise
                rejected.update(self._find_refused([r["PutRequest"]["Item"] for r in chunk], exc))
            except NETWORK_ERRORS:
                # No answer (after botocore's retries): DynamoDB may still carry it out later,
                # after this run has let go, so the next run must not reuse this partition.
                self.copy_unanswered = True
                raise
        return rejected

    def _find_refused(self, rows: list[RawItem], cause: ClientError) -> dict[RowKey, str]:
        """A batch refused as invalid: put each row alone to find the ones DynamoDB will not
        take (the others land). None alone refused: the page is."""
        deadline = self.monotonic() + self.settings.budget
        refused: dict[RowKey, str] = {}
        for row in rows:

            def put(row: RawItem = row) -> None:
                self.db.client.put_item(TableName=self.db.table, Item=row)

            try:
                retry(put, transient=_transient, deadline=deadline, before_retry=self.check_fence)
            except NETWORK_ERRORS:
                self.copy_unanswered = True
                raise
            except ClientError as exc:
                if error_code(exc) != "ValidationException":
                    raise
                message = exc.response.get("Error", {}).get("Message", "ValidationException")
                log.warning("DynamoDB refused the copy %s: %s", row_key(row), message)
                refused[row_key(row)] = "DynamoDB refused the copy: " + message
        if not refused:
            raise RowRejected(
                "DynamoDB refused a batch of copies, but no single row: "
                + cause.response.get("Error", {}).get("Message", "ValidationException")
            ) from cause
        return refused


def _transient(exc: Exception) -> bool:
    return classify(exc) == TRANSIENT


def count_prefix(db: Database, workspace_id: str, prefix: str, *, consistent: bool = True) -> int:
    """How many rows of a workspace partition have a sort key starting with ``prefix``."""
    return sum(
        page["Count"]
        for page in db.query_pages(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={
                ":pk": s(keys.workspace_pk(workspace_id)),
                ":prefix": s(prefix),
            },
            Select="COUNT",
            ConsistentRead=consistent,
        )
    )


def partition_counts(db: Database, workspace_id: str) -> dict[str, int]:
    """The copies in an attempt's partition, per count name (items and settings), counted
    with strongly consistent Queries run side by side: the one verification pass."""
    with ThreadPoolExecutor(max_workers=len(BULK_PREFIXES)) as pool:
        counts = {
            name: pool.submit(count_prefix, db, workspace_id, prefix)
            for name, prefix in BULK_PREFIXES.items()
        }
        return {name: future.result() for name, future in counts.items()}


def partition_sort_keys(db: Database, workspace_id: str) -> Iterator[str]:
    """Every sort key in an attempt's partition, strongly consistent. (Whole rows: a
    projection saves no read capacity, and moto cannot project rows with 39-digit numbers.)"""
    for page in db.query_pages(
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": s(keys.workspace_pk(workspace_id))},
        ConsistentRead=True,
    ):
        for row in page.get("Items", []):
            yield row[keys.SK]["S"]
