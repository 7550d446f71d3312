"""Why a run stopped, how to read a cancelled transaction's reasons by position, and which
failures are worth another run later (transient) and which need the operator (permanent)."""

from __future__ import annotations

from typing import Literal

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from store.batch import BudgetExceeded
from store.db import cancellation_reasons, error_code

CONDITION_FAILED = "ConditionalCheckFailed"

Failure = Literal["transient", "permanent"]
TRANSIENT: Failure = "transient"
PERMANENT: Failure = "permanent"

# Codes after which the same work, sent again later, can succeed.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)
# Cancellation reasons that say "try again" (None: the actions that were fine).
TRANSIENT_CANCELLATIONS = frozenset(
    {"None", None, "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
# Named for the reader: every code not in TRANSIENT_CODES is permanent, these among them.
PERMANENT_CODES = frozenset(
    {
        "UnknownOperationException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "ResourceNotFoundException",
        "ValidationException",
    }
)
# The SDK's "the answer did not come": the request may or may not have been carried out.
NETWORK_ERRORS = (
    ReadTimeoutError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ConnectionClosedError,
    BotoConnectionError,
    HTTPClientError,
)


class MigrationError(Exception):
    """The run stopped before the flag; the message is safe to show an operator."""


class LostClaim(MigrationError):
    """Another run took the claim over; this one must not write anything more."""


class Aborted(MigrationError):
    """A writer stopped because a sibling writer failed first."""


class RowRejected(MigrationError):
    """DynamoDB refused a page of copies as invalid, and no single row explains it (a row it
    refuses on its own is kept back instead, and the copy goes on)."""


class V1Changed(MigrationError):
    """The v1 rows counted before the flag differ from those copied and kept back: v1 changed
    during the copy. The claim's cursors and counts are reset, so the next run copies again
    from the start (every write is idempotent); a transient failure."""


class CopiesMissing(MigrationError):
    """The verification pass found fewer copies in the partition than were written, even
    after writing the missing ones again; a transient failure (the next run resumes)."""


def failed_at(reasons: list[str | None], position: int) -> bool:
    """Whether the transaction's action at ``position`` failed its condition."""
    return len(reasons) > position and reasons[position] == CONDITION_FAILED


def classify(exc: BaseException) -> Failure:
    """Whether a run that stopped with ``exc`` is worth another run after a pause
    (``transient``) or needs the operator first (``permanent``).

    A ValidationException is permanent here: on a claim, fence or flag write it means the
    server rejected our own row; a copy's is narrowed to the row that explains it before it
    gets here. Anything not known to be transient is permanent, so an unknown failure stops
    the retrying and is shown to the operator instead of being retried for ever."""
    if isinstance(exc, BudgetExceeded | V1Changed | CopiesMissing):
        return TRANSIENT
    if isinstance(exc, NETWORK_ERRORS):
        return TRANSIENT
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in TRANSIENT_CODES:
            return TRANSIENT
        if code == "TransactionCanceledException":
            reasons = cancellation_reasons(exc)
            return TRANSIENT if set(reasons) <= TRANSIENT_CANCELLATIONS else PERMANENT
        if code in PERMANENT_CODES:
            return PERMANENT
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return TRANSIENT if isinstance(status, int) and status >= 500 else PERMANENT
    return PERMANENT


def operator_reason(exc: BaseException) -> str:
    """What the operator reads in the log, the claim's ``failedReason`` and ``migration
    status``: the error code and message (<= 500 characters). Never shown to people."""
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        text = f"{error_code(exc)}: {message}"
    elif isinstance(exc, BotoCoreError):
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
        cause = exc.__cause__
        if isinstance(cause, ClientError | BotoCoreError):
            text += f" (last error {operator_reason(cause)})"
    return text[:500]
