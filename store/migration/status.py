"""The migration's state in one read, for a health check."""

from __future__ import annotations

from store import keys
from store.batch import get_many
from store.db import Database

from .claim import STATE_COMPLETE, Claim

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
