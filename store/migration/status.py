"""The migration's state in one read: for a health check, and for the gate."""

from __future__ import annotations

from dataclasses import dataclass

from store import keys
from store.batch import get_many
from store.db import Database

from .claim import STATE_COMPLETE, Claim
from .flag import Flag

# No claim and no flag: nobody has signed in since the deploy (or a v1 table was never here).
STATE_NONE = "none"


def migration_state(db: Database) -> str:
    """``none``, ``running``, ``waiting``, ``failed`` or ``complete``, from the flag and the
    claim read together in one eventually consistent BatchGetItem (half a read unit each: a
    health check may be a second behind). Raises the client's error when the table does not
    answer."""
    flag, claim = get_many(
        db, [keys.migration_flag(), keys.migration_claim()], consistent=False, budget_seconds=2
    )
    if flag is not None:
        return STATE_COMPLETE
    if claim is not None:
        return Claim.from_row(claim).state or STATE_NONE
    return STATE_NONE


# Keys a throttled BatchGetItem leaves unprocessed are asked again for at most this long: a
# page request then shows "retrying" (BudgetExceeded) instead of hanging.
GATE_READ_BUDGET_SECONDS = 2.0


@dataclass(frozen=True)
class GateRows:
    """What the gate read: the flag, the claim (if asked for) and whether the signed-in
    person's own v1 member row exists (if asked for; False when not asked)."""

    flag: Flag | None
    claim: Claim | None
    v1_member: bool


def read_gate_rows(db: Database, *, claim: bool, v1_member_of: str | None) -> GateRows:
    """The flag, and when asked the claim and one person's v1 member row, strongly consistent,
    in one BatchGetItem: a first signed-in request knows in one round trip whether the copy
    is done, who holds it, and (from the member row, when the person was a v1 member)
    that there is v1 data to copy, which otherwise takes a Query."""
    wanted = [keys.migration_flag()]
    if claim:
        wanted.append(keys.migration_claim())
    if v1_member_of is not None:
        wanted.append(keys.v1_member(v1_member_of))
    rows = get_many(db, wanted, consistent=True, budget_seconds=GATE_READ_BUDGET_SECONDS)
    flag_row, claim_row = rows[0], rows[1] if claim else None
    return GateRows(
        flag=Flag.from_row(flag_row) if flag_row else None,
        claim=Claim.from_row(claim_row) if claim_row else None,
        v1_member=v1_member_of is not None and rows[-1] is not None,
    )
