"""What a holder writes on the claim while it holds it, and how it lets go: the heartbeat
(``publish``), the release after a run (``Release``: transient, permanent or hand-over), and
the operator's ``migration retry`` (``reset_for_retry``).

Every write here is conditional on the claim being this run's, and each recognises its own
earlier try whose answer was lost: the refusal carries the old row
(ReturnValuesOnConditionCheckFailure=ALL_OLD, or a consistent read where the server ignores
it), and a row showing this run's own new version means the earlier try landed. So a lost
answer never costs a lease.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from store import keys
from store.db import Database, RawItem, condition_failed, iso, n, new_id, now_iso, s

from .claim import (
    RETRYING_MESSAGE,
    STATE_FAILED,
    STATE_RUNNING,
    STATE_WAITING,
    STOPPED_MESSAGE,
    Claim,
    Progress,
    Run,
    move_seen,
    new_attempt,
    read_claim,
)
from .errors import operator_reason

log = logging.getLogger(__name__)
# Backoff across runs after a transient failure: 2, 4, 8 ... seconds, at most a minute,
# plus up to 20 % so processes that failed together do not come back together.
BACKOFF_CAP_SECONDS = 60
BACKOFF_JITTER = 0.2


def refused_claim(db: Database, exc: ClientError) -> Claim | None:
    """The claim as it stood when a conditional write on it was refused: the old row the
    server returned (ReturnValuesOnConditionCheckFailure=ALL_OLD), or a consistent read where
    the server does not return it."""
    row: RawItem | None = exc.response.get("Item")  # type: ignore[assignment]
    return Claim.from_row(row) if row else read_claim(db)


def _progress_update(
    progress: Progress, *, clear_trouble: bool = True
) -> tuple[list[str], dict[str, Any], str]:
    """The SET clauses, values and REMOVE clause that publish ``progress`` on the claim;
    ``clear_trouble``: a run that made progress also clears the earlier runs' failure (not
    when it is itself being released as failed: its own reason wins)."""
    values = progress.snapshot()
    sets = [
        "phase = :phase",
        "itemsCopied = :items",
        "settingsCopied = :settings",
        "membersCopied = :members",
        "cursors = :cursors",
        "keptBackByKind = :kept",
        "keptBack = :keptTotal",
    ]
    if ":total" in values:
        sets.append("itemsTotal = :total")
    removes = ""
    if progress.advanced and clear_trouble:
        # The earlier runs' trouble is over once this one makes progress.
        sets += ["lastError = :none", "failures = :zero"]
        values[":none"], values[":zero"] = s(""), n(0)
        removes = " REMOVE failedReason"
    return sets, values, removes


def publish(
    db: Database, run_id: str, seen: str, new_version: str, progress: Progress, now: str
) -> None:
    """A heartbeat: move the claim from version ``seen`` to ``new_version`` and publish the
    progress. Raises ConditionalCheckFailedException once the claim is not this run's."""
    sets, values, removes = _progress_update(progress)
    db.client.update_item(
        TableName=db.table,
        Key=keys.migration_claim(),
        UpdateExpression="SET version = :new, heartbeatAt = :now, " + ", ".join(sets) + removes,
        ConditionExpression="#owner = :me AND version = :current",
        # On a refusal the old row comes back: a lost answer shows our own version there.
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ExpressionAttributeNames={"#owner": "owner"},
        ExpressionAttributeValues={
            **values,
            ":new": s(new_version),
            ":now": s(now),
            ":me": s(run_id),
            ":current": s(seen),
        },
    )


@dataclass(frozen=True)
class Release:
    """How a run hands the claim back (``release``):

    * ``Release.transient(reason)``: the run failed in a way worth retrying; the claim goes
      back to ``waiting`` with ``nextAttemptAt`` = now + min(2 ** failures, 60) s (+ up to
      20 %), and nobody takes it before then. People read ``RETRYING_MESSAGE``.
    * ``Release.permanent(reason)``: the claim goes to ``failed``; nobody takes it until the
      operator's ``migration retry``. People read ``STOPPED_MESSAGE`` (the page says less).
    * ``HANDOVER``: a slice ended in good order (request mode); ``waiting``, due at once,
      cursors and counts kept, failures untouched: the next request takes it straight away.

    ``reason`` is the operator's (error code and message, stored as ``failedReason``)."""

    kind: Literal["transient", "permanent", "handover"]
    reason: str = ""
    # Start a new attempt in a fresh partition (``claim.new_attempt``) instead of handing
    # the progress on: the run may still have a write in flight, or the copy starts over.
    afresh: bool = False

    @classmethod
    def transient(cls, reason: str) -> Release:
        return cls("transient", reason)

    @classmethod
    def permanent(cls, reason: str) -> Release:
        return cls("permanent", reason)


HANDOVER = Release("handover")


def backoff_seconds(failures: int, rng: random.Random | None = None) -> float:
    base = float(min(2 ** min(failures, 16), BACKOFF_CAP_SECONDS))
    return base * (1 + (rng or random).uniform(0, BACKOFF_JITTER))


def _release_update(
    run: Run, outcome: Release, now: float, rng: random.Random | None
) -> tuple[list[str], dict[str, Any], str]:
    """What ``release`` writes for ``outcome``, besides the new version."""
    if outcome.kind == "handover":
        due = s(iso(datetime.fromtimestamp(now, UTC)))
        return (
            ["#state = :state", "nextAttemptAt = :next"],
            {":state": s(STATE_WAITING), ":next": due},
            "",
        )
    failures = run.claim.failures + 1
    sets = [
        "#state = :state",
        "failures = :failures",
        "failedReason = :reason",
        "lastError = :message",
    ]
    values: dict[str, Any] = {":failures": n(failures), ":reason": s(outcome.reason[:500])}
    if outcome.kind == "permanent":
        values[":state"], values[":message"] = s(STATE_FAILED), s(STOPPED_MESSAGE)
        return sets, values, " REMOVE nextAttemptAt"
    values[":state"], values[":message"] = s(STATE_WAITING), s(RETRYING_MESSAGE)
    retry_at = now + backoff_seconds(failures, rng)
    values[":next"] = s(iso(datetime.fromtimestamp(retry_at, UTC)))
    return [*sets, "nextAttemptAt = :next"], values, ""


def release(
    db: Database,
    run: Run,
    outcome: Release,
    *,
    progress: Progress | None = None,
    wall: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    attempts: int = 3,
) -> bool:
    """Hand the claim back after a run (see ``Release`` for the three cases), publishing
    ``progress`` with it when given; True once the claim shows the release.
    ``run.claim.failures`` is the failures before this run (the engine sets it to 0 when the
    run made progress).

    An answer lost on the way is recognised: a repeat finds the claim already released by
    this run (its own new version, returned with the refusal). False when another run holds
    the claim, or DynamoDB could not be reached ``attempts`` times: then the lease lapses."""
    new_version = new_id()
    sets, values, removes = _release_update(run, outcome, wall(), rng)
    adds = ""
    if outcome.afresh:
        more_sets, more_values, adds = new_attempt(run.claim.workspace_id)
        sets, values = [*sets, *more_sets], {**values, **more_values}
    elif progress is not None:
        more_sets, more_values, more_removes = _progress_update(
            progress, clear_trouble=outcome.kind == "handover"
        )
        # At most one side removes anything: a failure never clears, a hand-over never fails.
        sets, values = [*more_sets, *sets], {**more_values, **values}
        removes = removes or more_removes
    values.update({":new": s(new_version), ":me": s(run.run_id), ":running": s(STATE_RUNNING)})
    update = "SET version = :new, " + ", ".join(sets) + removes + adds
    for attempt in range(1, attempts + 1):
        try:
            db.client.update_item(
                TableName=db.table,
                Key=keys.migration_claim(),
                UpdateExpression=update,
                ConditionExpression="#owner = :me AND #state = :running",
                ExpressionAttributeNames={"#owner": "owner", "#state": "state"},
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True
        except ClientError as exc:
            if condition_failed(exc):
                found = refused_claim(db, exc)
                # Our own earlier try, whose answer was lost, already released it.
                return (
                    found is not None
                    and found.owner == run.run_id
                    and (found.version == new_version)
                )
            problem = operator_reason(exc)
        except BotoCoreError as exc:
            problem = operator_reason(exc)
        log.warning("could not release the migration claim (try %d): %s", attempt, problem)
    return False


def hand_over(db: Database, run: Run, progress: Progress, *, in_flight: bool = False) -> bool:
    """End a run that stopped between pages (its slice is over, or its process is exiting)
    without a failure: publish its verified progress and leave the claim ``waiting``, due at
    once, so the next request takes it straight away and resumes at these cursors. The new
    version also stops this run's own heartbeat should one still be beating.

    ``in_flight``: the run has not stopped (a hand-over from outside it), so a copy of its
    may still land: the next run starts a new attempt in a fresh partition instead."""
    return release(db, run, Release("handover", afresh=in_flight), progress=progress)


def reset_for_retry(db: Database, seen: Claim, wall: Callable[[], float] = time.time) -> bool:
    """The operator's ``migration retry``: a failed or waiting claim becomes waiting and due
    now, with no failures and no reason; False when it moved meanwhile."""
    try:
        move_seen(
            db,
            seen,
            "SET #state = :waiting, nextAttemptAt = :now, failures = :zero, "
            "lastError = :none, version = :new REMOVE failedReason",
            {":waiting": s(STATE_WAITING), ":now": s(now_iso(wall)), ":zero": n(0), ":none": s("")},
            states=(STATE_FAILED, STATE_WAITING),
        )
    except ClientError as exc:
        if condition_failed(exc):
            return False
        raise
    return True
