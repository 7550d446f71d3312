"""Fenced writes: the records of kept-back rows (and the visible rows that do not fit beside
the flag) go in a transaction that holds only while the writer's fence row still names this
run (or the claim is still this run's), so DynamoDB itself refuses a late write from a run
that lost the claim; a transaction refused as invalid is narrowed down to the rows DynamoDB
will not take. The bulk of the copy is not fenced (``bulk``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from store import keys
from store.batch import chunk_requests, retry
from store.db import Database, RawItem, cancellation_reasons, error_code

from .claim import Run, fence_check, holder_check
from .errors import TRANSIENT, LostClaim, RowRejected, classify, failed_at

if TYPE_CHECKING:
    from .engine import Settings

log = logging.getLogger(__name__)

MAX_TRANSACTION_ITEMS = 100
# DynamoDB's 4 MB per transaction, less a margin for the request around the items.
TRANSACTION_BYTES = 4 * 1024 * 1024 - 64 * 1024
# A fenced copy's transaction: the writer's fence check first, then the rows.
FENCE_CHECK = 0
# The "writer" whose transactions check the claim itself (owner, version, running) instead
# of a fence: the rows that make the workspace visible, written after the heartbeat stopped,
# so that a run whose claim was released from outside can never write them.
HOLDER = -1

# One v1 row on its way: its kind, the v1 row, and its v2 copy.
Pair = tuple[str, RawItem, RawItem]
# A v2 key as a pair of strings; rows refused by DynamoDB are named by it.
RowKey = tuple[str, str]


def _action_key(action: dict[str, Any]) -> RowKey:
    body = action.get("Put", {}).get("Item") or action["Update"]["Key"]
    return body[keys.PK]["S"], body[keys.SK]["S"]


def _is_validation(exc: ClientError) -> bool:
    return error_code(exc) == "ValidationException" or "ValidationError" in cancellation_reasons(
        exc
    )


def row_key(row: RawItem) -> RowKey:
    return row[keys.PK]["S"], row[keys.SK]["S"]


def _message(exc: ClientError) -> str:
    """DynamoDB's own words: the cancellation reason's message when there is one."""
    for reason in exc.response.get("CancellationReasons", []):
        if reason.get("Code") == "ValidationError" and reason.get("Message"):
            return str(reason["Message"])
    return str(exc.response.get("Error", {}).get("Message", error_code(exc)))


def _transient_copy_error(exc: Exception) -> bool:
    """Whether a fenced copy that failed this way is worth sending again after a pause: the
    same rule as for a whole run (a refused fence is LostClaim, never sent again)."""
    return classify(exc) == TRANSIENT


class FencedWrites:
    """The copy's writes, for ``engine.Migration``: it provides the attributes below and
    ``check_fence`` and ``lose`` (``heartbeat.Heartbeating``)."""

    db: Database
    run: Run
    settings: Settings
    monotonic: Callable[[], float]
    version: str

    def check_fence(self) -> None:
        raise NotImplementedError

    def lose(self, reason: str) -> LostClaim:
        raise NotImplementedError

    def _write(
        self, rows: list[RawItem], records: list[dict[str, Any]], writer: int
    ) -> dict[RowKey, str]:
        """Put copies and records of kept-back rows in fenced transactions; return the
        copies DynamoDB refused on their own, by key, with its message."""
        deadline = self.monotonic() + self.settings.budget
        actions = [*records, *({"Put": {"TableName": self.db.table, "Item": r}} for r in rows)]
        rejected: dict[RowKey, str] = {}
        # <= 99 actions per transaction: the writer's fence check is the 100th.
        for chunk in chunk_requests(
            actions,
            max_count=MAX_TRANSACTION_ITEMS - 1,
            max_bytes=TRANSACTION_BYTES,
            key=_action_key,
        ):
            self.check_fence()
            rejected.update(self._write_fenced(chunk, writer, deadline))
        return rejected

    def _write_fenced(
        self, chunk: list[dict[str, Any]], writer: int, deadline: float
    ) -> dict[RowKey, str]:
        """Run actions in one transaction that holds only while this writer's fence is ours.

        DynamoDB itself rejects the write once another run has taken over, however late it
        arrives (a paused process, a request re-sent by the SDK, a slow network): no check
        made in this process before sending could promise that. A transaction refused as
        invalid is narrowed down to the rows DynamoDB will not take, which are returned."""
        if writer == HOLDER:
            check = holder_check(self.db, self.run.run_id, self.version)
        else:
            check = fence_check(self.db, writer, self.run.run_id)
        actions = [check, *chunk]

        def send() -> dict[RowKey, str]:
            try:
                self.db.client.transact_write_items(TransactItems=actions)
            except ClientError as exc:
                if failed_at(cancellation_reasons(exc), FENCE_CHECK):
                    raise self.lose("another run took over: this writer's fence moved") from exc
                if _is_validation(exc) and len(chunk) > 1:
                    return self._find_rejected_rows(chunk, writer, deadline, exc)
                if _is_validation(exc):
                    return self._rejected_alone(chunk[0], exc)
                raise
            return {}

        return retry(
            send,
            transient=_transient_copy_error,
            deadline=deadline,
            monotonic=self.monotonic,
            before_retry=self.check_fence,
            what=f"{len(chunk)} copies",
        )

    def _find_rejected_rows(
        self, chunk: list[dict[str, Any]], writer: int, deadline: float, cause: ClientError
    ) -> dict[RowKey, str]:
        """A transaction refused as invalid: send each action alone to find the rows
        DynamoDB will not take (the others land). None alone refused: the page is."""
        rejected: dict[RowKey, str] = {}
        for action in chunk:
            rejected.update(self._write_fenced([action], writer, deadline))
        if not rejected:
            raise RowRejected(
                f"DynamoDB refused a page of copies, but no single row: {_message(cause)}"
            ) from cause
        return rejected

    def _rejected_alone(self, action: dict[str, Any], exc: ClientError) -> dict[RowKey, str]:
        """A copy refused on its own is kept back; anything else refused is a real failure."""
        row = action.get("Put", {}).get("Item")
        if row is None or not row[keys.SK]["S"].startswith(
            (keys.ITEM_PREFIX, keys.SETTING_PREFIX, keys.MEMBER_PREFIX)
        ):
            raise RowRejected(f"DynamoDB refused {_action_key(action)}: {_message(exc)}") from exc
        log.warning("DynamoDB refused the copy %s: %s", _action_key(action), _message(exc))
        return {_action_key(action): "DynamoDB refused the copy: " + _message(exc)}
