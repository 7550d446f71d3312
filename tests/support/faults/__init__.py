"""A loopback HTTP proxy in front of DynamoDB Local that injects faults per operation.

For tests that run the app in other processes (gunicorn), where botocore hooks cannot reach:
point the app's ``DYNAMODB_ENDPOINT`` at ``proxy.url`` and steer the faults from the test::

    with FaultProxy(local_endpoint) as proxy:
        proxy.delay(COPIES, 0.05)                       # every copy waits 50 ms first
        proxy.throttle(COPIES, after=2, code=PROVISIONED)   # 2 pass, then 400 throttling
        proxy.cancel(FENCED_COPIES, reasons=("None", "ThrottlingError"), each=1)  # once
        held = proxy.hold(COPIES)                       # calls stall in flight ...
        held.release()                                  # ... until released
        held.answers                                    # ... and how they were answered
        proxy.count(COPIES), proxy.count("UpdateItem")  # requests seen so far
        proxy.answers(COPIES)                           # how each was answered
        proxy.unprocessed("BatchWriteItem", keep=0.5, times=10)   # partial success
        proxy.refuse("TransactWriteItems", UNKNOWN_OPERATION)    # a server without it
        proxy.lose_answer(HEARTBEATS, how="close")      # carried out, the answer lost
        proxy.clear()                                   # no faults any more

A fault is set on a *target*: an operation name (from the ``X-Amz-Target`` header,
``DynamoDB_20120810.<Operation>``), which matches every call of that operation, or a
``Target``: an operation plus a predicate on the request's JSON body. ``COPIES`` is the
migration's copies (store/migration/bulk.py): a BatchWriteItem whose every put goes into a
``WORKSPACE#`` partition. ``FENCED_COPIES`` is the copy's few fenced transactions (records
of kept-back rows, store/migration/fenced.py): a TransactWriteItems with a
``ConditionCheck`` on a ``MIGRATION``/``FENCE#<n>`` row. The claim, takeover and flag
transactions have no such check, so they pass untouched by faults on either. When a call
matches several targets with faults, a predicate target's faults win over its plain
operation's (one rule applies per call).

*Throttling* answers ``400`` with DynamoDB's JSON error body (``ThrottlingException`` or
``ProvisionedThroughputExceededException``), which botocore retries and then raises.

*Cancelling* answers a transaction with ``400 TransactionCanceledException`` and, at the top of
the body as DynamoDB does, ``CancellationReasons``: one per action of the request, the given
codes repeated in order (``("None", "ThrottlingError")`` → None, ThrottlingError, None, ...).
botocore does not retry it and puts the reasons in ``ClientError.response`` (checked by
``test_the_fault_proxy_...`` in tests/integration/test_multiprocess.py). Nothing is written.

*Partial success* forwards only some of a BatchWriteItem's requests and returns the rest as
``UnprocessedItems``, as DynamoDB does under load (``store.batch.write_chunk``, which the
migration's copies use, sends them again with backoff). The request body is rewritten, so
its SigV4 signature no longer matches: DynamoDB Local does not verify signatures (checked
by the same test), and the proxy says so loudly if an upstream ever does. Answers get a
fresh ``X-Amz-Crc32``, because botocore checks that header on DynamoDB answers and retries
on a mismatch.

*Refusing* answers every call (or a window of them) with any DynamoDB error body, unforwarded:
``refuse("TransactWriteItems", UNKNOWN_OPERATION)`` is a DynamoDB-compatible server without
transactions (400 ``UnknownOperationException``, which botocore does not retry).

*Losing an answer* forwards the call, so DynamoDB carries it out, and then either closes the
connection without answering (``how="close"``: botocore raises ConnectionClosedError) or answers
``500 InternalServerError`` (``how="500"``). botocore's standard retry mode (the app's) retries
both, sending the very same request again, ClientRequestToken and all: the app must recognise
its own write that already landed. ``lost(target)`` counts them; ``HEARTBEATS``,
``FIRST_CLAIM`` and ``FLAG_WRITES`` are the claim's heartbeat UpdateItem, the transaction that
creates the claim, and the flag's transaction.

Everything is thread-safe; ``stop()`` closes the listening socket and every open connection.

The modules follow the proxy's parts: ``targets`` (what a fault is set on), ``rules`` (the
faults on one target, and calls held in flight), ``proxy`` (``FaultProxy``: set faults, read
back counts and answers), ``handler`` (the HTTP relay) and ``wire`` (DynamoDB's error bodies,
answers and batches as the proxy reads and writes them).
"""

from __future__ import annotations

from tests.support.faults.proxy import FaultProxy
from tests.support.faults.rules import Hold
from tests.support.faults.targets import (
    COPIES,
    FENCED_COPIES,
    FIRST_CLAIM,
    FLAG_WRITES,
    HEARTBEATS,
    Target,
    copied_keys,
    is_bulk_copy,
    is_fenced_copy,
)
from tests.support.faults.wire import (
    CANCELLED,
    PROVISIONED,
    THROTTLING,
    UNKNOWN_OPERATION,
    Answer,
    FaultProxyError,
    cancellation_body,
    split_batch,
)

__all__ = [
    "CANCELLED",
    "COPIES",
    "FENCED_COPIES",
    "FIRST_CLAIM",
    "FLAG_WRITES",
    "HEARTBEATS",
    "PROVISIONED",
    "THROTTLING",
    "UNKNOWN_OPERATION",
    "Answer",
    "FaultProxy",
    "FaultProxyError",
    "Hold",
    "Target",
    "cancellation_body",
    "copied_keys",
    "is_bulk_copy",
    "is_fenced_copy",
    "split_batch",
]
