"""Taking the claim: the first claim (which fixes the workspace id), a takeover of a lapsed
or released claim, and recording a claim the server refuses for good as ``failed``.

Every take is one transaction with a condition on what was seen, and it moves every writer's
fence with the claim, so the previous holder's late fenced writes fail inside DynamoDB; a take
of a lapsed claim also starts a new attempt in a new partition, where the previous holder's
late bulk copies land unseen. A take whose
answer was lost is recognised by reading the claim back: it names this run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import EllipsisType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from store import keys
from store.db import Database, cancellation_reasons, error_code, n, new_id, now_iso, s

from .claim import (
    STATE_COMPLETE,
    STATE_FAILED,
    STATE_RUNNING,
    STATE_WAITING,
    STOPPED_MESSAGE,
    Claim,
    ClaimObserver,
    Run,
    fence_puts,
    move_seen,
    new_attempt,
    read_claim,
)
from .errors import (
    CONDITION_FAILED,
    NETWORK_ERRORS,
    PERMANENT,
    TRANSIENT_CANCELLATIONS,
    classify,
    operator_reason,
)

log = logging.getLogger(__name__)


def try_acquire(
    db: Database,
    user_id: str,
    observer: ClaimObserver,
    *,
    lease: float,
    segments: int,
    monotonic: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    current: Claim | None | EllipsisType = ...,
) -> Run | None:
    """Take the claim if nobody holds it, if its holder gave up, or if it has lapsed.

    ``current`` is the claim as the caller has just read it (strongly consistent), so a page
    that also shows its progress reads it once; when not given it is read here. A stale
    value is harmless: every write below is conditional on what it saw."""
    run_id = new_id()
    if current is ...:
        current = read_claim(db)
    if current is None:
        fresh = _fresh_claim(run_id, user_id, segments, wall)
        return _claim_first(db, Run(run_id, user_id, fresh), lease, wall)
    if current.state in (STATE_COMPLETE, STATE_FAILED):
        # A failed claim waits for the operator (`migration retry`), however often asked.
        return None
    if current.state == STATE_WAITING and not current.due(wall):
        return None
    if current.state != STATE_WAITING and not observer.lapsed(current, lease, monotonic()):
        return None
    return _take_over(db, Run(run_id, user_id, current), lease, wall)


def _fresh_claim(run_id: str, user_id: str, segments: int, wall: Callable[[], float]) -> Claim:
    return Claim(
        workspace_id=new_id(),
        owner=run_id,
        version=new_id(),
        state=STATE_RUNNING,
        started_at=now_iso(wall),
        started_by=user_id,
        phase="starting",
        items_copied=0,
        settings_copied=0,
        members_copied=0,
        items_total=None,
        last_error="",
        cursors={},
        total_segments=segments,
        attempt=1,
    )


def _claim_first(db: Database, run: Run, lease: float, wall: Callable[[], float]) -> Run | None:
    """Create the claim row, and with it the workspace id every later run will fill."""
    first = {
        "Put": {
            "TableName": db.table,
            "Item": run.claim.to_row(lease=lease, heartbeat_at=now_iso(wall)),
            # Only the first claimant ever creates the row (and so the workspace id).
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }
    fences = fence_puts(db, run.run_id, run.claim.total_segments + 1)
    try:
        taken = _transact(db, run.run_id, [first, *fences])
    except ClientError as exc:
        if classify(exc) == PERMANENT:
            mark_failed(db, None, run, exc, lease=lease, wall=wall)
        raise
    return run if taken else None


def _take_over(db: Database, run: Run, lease: float, wall: Callable[[], float]) -> Run | None:
    """Move a lapsed or released claim to this run, conditional on the version last seen."""
    current, new_version = run.claim, new_id()
    sets, adds = ["heartbeatAt = :now"], ""
    values: dict[str, Any] = {}
    # A lapsed holder may be paused with a copy in flight towards its partition: this run
    # copies into a new one, where that late write cannot land. A released claim was let go
    # between pages, with nothing in flight: its attempt goes on where it stopped.
    lapsed = current.state == STATE_RUNNING
    if lapsed:
        sets, values, adds = new_attempt(current.workspace_id)
        sets.append("heartbeatAt = :now")
    takeover = {
        "Update": {
            "TableName": db.table,
            "Key": keys.migration_claim(),
            "UpdateExpression": (
                "SET #owner = :me, version = :new, #state = :running, leaseSeconds = :lease, "
                + ", ".join(sets)
                + " ADD attempt :one"
                + adds.replace(" ADD ", ", ")
            ),
            # Only if nobody else moved it since we looked: a lapsed or released claim.
            "ConditionExpression": "version = :seen AND NOT #state IN (:complete, :failed)",
            "ExpressionAttributeNames": {"#owner": "owner", "#state": "state"},
            "ExpressionAttributeValues": {
                **values,
                ":me": s(run.run_id),
                ":new": s(new_version),
                ":running": s(STATE_RUNNING),
                ":now": s(now_iso(wall)),
                ":lease": n(lease),
                ":one": n(1),
                ":seen": s(current.version),
                ":complete": s(STATE_COMPLETE),
                ":failed": s(STATE_FAILED),
            },
        }
    }
    # Moving every fence with the claim is what makes the old holder's late writes fail.
    actions = [takeover, *fence_puts(db, run.run_id, current.total_segments + 1)]
    try:
        taken = _transact(db, run.run_id, actions)
    except ClientError as exc:
        if classify(exc) == PERMANENT:
            mark_failed(db, current, run, exc, lease=lease, wall=wall)
        raise
    if not taken:
        return None
    log.info(
        "migration claim taken over (attempt %d%s)",
        current.attempt + 1,
        ", copying again into a new partition" if lapsed else "",
    )
    current.owner, current.version, current.state = run.run_id, new_version, STATE_RUNNING
    current.attempt += 1
    if lapsed:
        _start_afresh(current, values[":attemptWs"]["S"])
    return run


def _start_afresh(claim: Claim, workspace_id: str) -> None:
    """What ``new_attempt`` wrote, in this process's copy of the claim."""
    claim.abandoned = sorted({*claim.abandoned, claim.workspace_id})
    claim.workspace_id = workspace_id
    claim.cursors, claim.kept_by_kind = {}, {}
    claim.items_copied = claim.settings_copied = claim.members_copied = 0


def _transact(db: Database, run_id: str, actions: list[dict[str, Any]]) -> bool:
    """Run a claim transaction; False when a condition failed or it raced another writer.

    A refusal, or no answer at all, may hide our own earlier try that landed with its answer
    lost (the SDK sends it again): then the claim names ``run_id``, and it is ours."""
    try:
        db.client.transact_write_items(TransactItems=actions)
    except ClientError as exc:
        if error_code(exc) not in ("TransactionCanceledException", "TransactionConflictException"):
            raise
        if _names(db, run_id):
            return True
        # A condition that failed or a race is an ordinary "not ours"; a cancellation for any
        # other reason (a row the server refuses) will not pass next time either.
        reasons = set(cancellation_reasons(exc)) - {CONDITION_FAILED}
        if reasons and classify(exc) == PERMANENT and not reasons <= TRANSIENT_CANCELLATIONS:
            raise
        return False
    except NETWORK_ERRORS:
        if _names(db, run_id):
            return True
        raise
    return True


def _names(db: Database, run_id: str) -> bool:
    current = read_claim(db)
    landed = current is not None and current.owner == run_id
    if landed:
        log.info("migration claim: an earlier try landed with its answer lost; it is ours")
    return landed


def mark_failed(
    db: Database,
    seen: Claim | None,
    run: Run,
    exc: BaseException,
    *,
    lease: float,
    wall: Callable[[], float] = time.time,
) -> None:
    """A claim write was rejected for good (the server lacks transactions, access denied, a
    missing table): record the failed state with its reason, so no poll tries again until
    the operator's `migration retry`. With no claim row yet one is created, failed (it fixes
    the workspace id as any first claim does)."""
    reason = operator_reason(exc)
    try:
        if seen is None:
            row = run.claim.to_row(lease=lease, heartbeat_at=now_iso(wall))
            row.update(
                state=s(STATE_FAILED),
                failures=n(1),
                failedReason=s(reason),
                lastError=s(STOPPED_MESSAGE),
            )
            db.client.put_item(
                TableName=db.table, Item=row, ConditionExpression="attribute_not_exists(PK)"
            )
            return
        move_seen(
            db,
            seen,
            "SET #state = :failed, failedReason = :reason, lastError = :message, "
            "version = :new ADD failures :one REMOVE nextAttemptAt",
            {
                ":failed": s(STATE_FAILED),
                ":reason": s(reason),
                ":message": s(STOPPED_MESSAGE),
                ":one": n(1),
            },
            states=(STATE_RUNNING, STATE_WAITING),
        )
    except (ClientError, BotoCoreError) as failure:
        # Someone else moved the claim meanwhile, or this write is refused too: the log has it.
        log.error("could not record the failed migration claim: %s", operator_reason(failure))
