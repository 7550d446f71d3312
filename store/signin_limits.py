"""How often a password may be tried: per-account backoff plus a per-client limit.

OWASP's Authentication cheat sheet ("Login Throttling", "Account Lockout") asks for a delay
that grows with consecutive failures per account, without letting an attacker lock the owner
out. So nothing here locks: after ``free_failures`` consecutive failures each further attempt
on that address must wait ``first_delay`` seconds, doubling per failure up to ``max_delay``.
Attempts made while waiting are refused without being counted or checked, so hammering
does not push the wait further out, and the right password works as soon as the wait is over.
Separately, one client address may fail ``client_max_failures`` times per ``client_window``
(OWASP Credential Stuffing, "Rate limiting"), whatever addresses it tries.

Both counters are claimed before the password is checked, by one conditional UpdateItem each
(``ADD`` with a ``ConditionExpression``), so concurrent wrong passwords are serialised by
DynamoDB: however many arrive at once, only as many are checked as the policy admits. A
successful sign-in gives both claims back.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from . import keys
from .accounts import normalise_email
from .db import Database, n, number, update_if


@dataclass(frozen=True)
class Policy:
    free_failures: int = 3
    first_delay: int = 1
    max_delay: int = 300
    client_max_failures: int = 50
    client_window: int = 900
    # A quiet day forgets an address's failures (TTL; readers compare the clock too).
    memory: int = 86_400

    def delay(self, failures: int) -> int:
        """Seconds to wait after ``failures`` consecutive failures before the next attempt."""
        if failures < self.free_failures:
            return 0
        exponent = failures - self.free_failures
        if exponent >= 32:  # far past the cap; keeps the power small
            return self.max_delay
        return int(min(self.max_delay, self.first_delay * 2**exponent))

    def capped_from(self) -> int:
        """The first failure count whose delay is the cap."""
        failures = self.free_failures
        while self.delay(failures) < self.max_delay:
            failures += 1
        return failures


@dataclass(frozen=True)
class Refusal:
    retry_after: int  # whole seconds, at least 1
    reason: str  # "account" or "client"


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _account_admission(policy: Policy, moment: int) -> tuple[str, dict[str, Any]]:
    """A condition true when the address is not inside its current wait.

    DynamoDB cannot compute ``2**failures``, so each failure count below the cap gets its own
    clause, "failures = k AND lastFailureAt <= now - delay(k)", and the cap one more.
    """
    clauses = ["attribute_not_exists(failures)", "failures < :free"]
    values: dict[str, Any] = {":free": n(policy.free_failures)}
    capped = policy.capped_from()
    for failures in range(policy.free_failures, capped):
        clauses.append(f"(failures = :f{failures} AND lastFailureAt <= :t{failures})")
        values[f":f{failures}"] = n(failures)
        values[f":t{failures}"] = n(moment - policy.delay(failures))
    clauses.append("(failures >= :fcap AND lastFailureAt <= :tcap)")
    values[":fcap"] = n(capped)
    values[":tcap"] = n(moment - policy.max_delay)
    # A row past its memory is as good as gone even before TTL deletes it.
    clauses.append("#ttl <= :now")
    values[":now"] = n(moment)
    return " OR ".join(clauses), values


def _claim_account(db: Database, key: keys.Key, policy: Policy, moment: int) -> bool:
    condition, values = _account_admission(policy, moment)
    return update_if(
        db,
        Key=key,
        UpdateExpression="ADD failures :one SET lastFailureAt = :now, #ttl = :forget",
        ConditionExpression=condition,
        ExpressionAttributeNames={"#ttl": keys.TTL_ATTRIBUTE},
        ExpressionAttributeValues={**values, ":one": n(1), ":forget": n(moment + policy.memory)},
    )


def _claim_client(db: Database, client: str, policy: Policy, moment: int) -> bool:
    window = moment // policy.client_window
    return update_if(
        db,
        Key=keys.login_client(client, window),
        UpdateExpression="ADD failures :one SET #ttl = :expires",
        ConditionExpression="attribute_not_exists(failures) OR failures < :max",
        ExpressionAttributeNames={"#ttl": keys.TTL_ATTRIBUTE},
        ExpressionAttributeValues={
            ":one": n(1),
            ":max": n(policy.client_max_failures),
            ":expires": n((window + 2) * policy.client_window),
        },
    )


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt: the address typed, the client address it came from, and the
    device id of a browser that signed in to that address before (a device cookie)."""

    email: str
    client: str
    device: str | None = None

    @property
    def backoff_key(self) -> keys.Key:
        return keys.login_backoff(normalise_email(self.email), self.device)


def account_wait(db: Database, attempt: Attempt, policy: Policy, now: float | None = None) -> int:
    """Seconds until the attempt's address may be tried again from where it comes (0: now)."""
    moment = _now(now)
    row = db.get(attempt.backoff_key, consistent=True)
    if row is None or number(row, keys.TTL_ATTRIBUTE) <= moment:
        return 0
    until = number(row, "lastFailureAt") + policy.delay(number(row, "failures"))
    return max(0, math.ceil(until - moment))


def claim_attempt(
    db: Database, attempt: Attempt, policy: Policy, now: float | None = None
) -> Refusal | None:
    """Admit one password check, counting it as a failure until ``succeeded`` says otherwise;
    or say why not and for how long. A known device is throttled apart from everyone else."""
    moment = int(_now(now))
    if not _claim_client(db, attempt.client, policy, moment):
        window_end = (moment // policy.client_window + 1) * policy.client_window
        return Refusal(max(1, window_end - moment), "client")
    if not _claim_account(db, attempt.backoff_key, policy, moment):
        # Still counted against the client: spraying a waiting account is not free.
        return Refusal(max(1, account_wait(db, attempt, policy, moment)), "account")
    return None


def succeeded(db: Database, attempt: Attempt, policy: Policy, now: float | None = None) -> None:
    """The password was right: the backoff it was counted on starts afresh and the client
    gets its claim back."""
    moment = int(_now(now))
    db.client.delete_item(TableName=db.table, Key=attempt.backoff_key)
    # False when the window turned between claim and success: nothing of ours to give back.
    update_if(
        db,
        Key=keys.login_client(attempt.client, moment // policy.client_window),
        UpdateExpression="ADD failures :minus",
        ConditionExpression="failures > :zero",
        ExpressionAttributeValues={":minus": n(-1), ":zero": n(0)},
    )
