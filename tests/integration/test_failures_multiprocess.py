"""Promise 11 across processes: failures seen through the fault proxy by gunicorn workers.

tests/store/migration/test_failures.py and tests/blueprints/migration/test_failed_pages.py
show the failure classes in one process with botocore hooks; these run the app under gunicorn
(devtools/live_server.py) against DynamoDB Local through the fault proxy
(tests/support/faults/), and drive it over HTTP (tests/support/visitor.py):

- a server without transactions (``UnknownOperationException`` for every TransactWriteItems):
  people get the clear 503 page, the operator's ``migration status`` names the cause, the
  DynamoDB calls counted at the proxy stay within the README's bound, and after the fault is
  lifted ``migration retry`` lets the next visits finish the migration exactly once;
- answers lost after DynamoDB carried a write out (heartbeat, first claim, copy, flag): the
  migration still finishes exactly once, on the first attempt, with the copy exact;
- ``db init`` through such a server refuses, naming TransactWriteItems.

Every wait is on a condition with a generous timeout; the calls per minute are printed for
the README (run with ``-s``), and only the bound (a count) is asserted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devtools.live_server import LiveServer
from store.migration.claim import STATE_FAILED, read_claim
from store.migration.flag import read_flag
from tests.support.faults import (
    COPIES,
    FIRST_CLAIM,
    FLAG_WRITES,
    HEARTBEATS,
    UNKNOWN_OPERATION,
    FaultProxy,
    Target,
)
from tests.support.helpers import seed_v1, wait_for
from tests.support.multiprocess import (
    assert_migrated_exactly_once,
    parallel,
    proxied_table,
    server_env,
    wait_for_claim,
)
from tests.support.visitor import PREPARING, Reply, Visitor, preparing_url, sent_to_preparing

pytestmark = [pytest.mark.local_only("runs gunicorn against DynamoDB Local"), pytest.mark.slow]

FAILED_TEXT = "Your workspace can't be prepared yet"
# Nothing of DynamoDB, the error or the table's keys may reach a person's page.
INTERNALS = re.compile(
    r"UnknownOperation|TransactWriteItems|Exception|DynamoDB|MIGRATION|CLAIM|FENCE|"
    r"failedReason|attempt|Traceback",
    re.IGNORECASE,
)


def _dynamodb_calls(proxy: FaultProxy) -> int:
    """Every DynamoDB call the proxy saw (operation names; targets' own names have spaces)."""
    return sum(count for name, count in proxy.counts().items() if name.isalpha())


# --- the proxy's new faults ----------------------------------------------------------------


def test_the_fault_proxy_refuses_operations_and_loses_answers_after_carrying_them_out(
    fault_proxy: FaultProxy, local_endpoint: str
) -> None:
    client, direct = proxied_table(fault_proxy, local_endpoint)
    row = {"PK": {"S": "R"}, "SK": {"S": "1"}}
    try:
        # A server without transactions: 400 UnknownOperationException, not retried, nothing
        # forwarded; other operations pass.
        fault_proxy.refuse("TransactWriteItems", UNKNOWN_OPERATION)
        with pytest.raises(ClientError) as raised:
            client.transact_write_items(
                TransactItems=[{"Put": {"TableName": direct.table, "Item": row}}]
            )
        response = raised.value.response
        assert response["Error"]["Code"] == UNKNOWN_OPERATION
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert response["ResponseMetadata"]["RetryAttempts"] == 0
        assert direct.get(row, consistent=True) is None
        assert fault_proxy.refused("TransactWriteItems") == 1
        (answer,) = fault_proxy.answers("TransactWriteItems")
        assert (answer.status, answer.code, answer.injected) == (400, UNKNOWN_OPERATION, True)
        fault_proxy.clear("TransactWriteItems")

        # A lost answer (connection closed): DynamoDB carried the conditional Put out, and
        # botocore's retry of the very same request is refused by its own write.
        fault_proxy.lose_answer("PutItem", how="close")
        with pytest.raises(ClientError) as raised:
            client.put_item(
                TableName=direct.table, Item=row, ConditionExpression="attribute_not_exists(PK)"
            )
        assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
        assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 1
        assert direct.get(row, consistent=True) == row
        assert fault_proxy.lost("PutItem") == 1 and fault_proxy.count("PutItem") == 2
        assert [a.status for a in fault_proxy.answers("PutItem")] == [200, 400]

        # A lost answer (500 after the write): retried too, so an ADD lands twice.
        fault_proxy.lose_answer("UpdateItem", how="500")
        client.update_item(
            TableName=direct.table,
            Key=row,
            UpdateExpression="ADD hits :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        stored = direct.get(row, consistent=True)
        assert stored is not None and stored["hits"] == {"N": "2"}
        assert fault_proxy.lost("UpdateItem") == 1 and fault_proxy.count("UpdateItem") == 2

        # times=1 by default: the next call is answered as usual.
        client.put_item(TableName=direct.table, Item={**row, "SK": {"S": "2"}})
        assert fault_proxy.count("PutItem") == 3
        with pytest.raises(ValueError):
            fault_proxy.lose_answer("PutItem", how="drop")
        assert fault_proxy.errors == []
    finally:
        direct.client.delete_table(TableName=direct.table)


# --- 1. a server without transactions ------------------------------------------------------


def _failed_page(reply: Reply) -> bool:
    if reply.status != 503 or FAILED_TEXT not in reply.text:
        return False
    assert reply.headers["Retry-After"] == "30"
    leaked = INTERNALS.search(reply.text)
    assert leaked is None, f"the failed page shows {leaked.group(0)!r}: {reply.text[:500]}"
    return True


def test_a_server_without_transactions_shows_the_clear_page_with_bounded_calls_until_retried(
    live_server_factory: Callable[..., LiveServer], fault_proxy: FaultProxy
) -> None:
    """Promise 11: every TransactWriteItems is refused with UnknownOperationException. Four
    people keep the preparing page open and poll for ~12 s on 3 workers: each sees the clear
    503 page (no codes, keys or DynamoDB words), ``migration status`` shows the failed state
    and the reason, and the DynamoDB calls the proxy counts stay within the README's bound
    (60 per minute per process, no page loads in the window). Once the server has
    transactions, ``migration retry`` and the next visits finish the migration exactly once."""
    workers = 3
    server = live_server_factory(workers=workers, extra_env=server_env(fault_proxy, lease=3))
    db = server.database
    accounts = seed_v1(db, items=200)
    people = [Visitor(server.url) for _ in range(4)]
    parallel(lambda i: people[i].login(accounts[i].email), len(people))
    fault_proxy.refuse("TransactWriteItems", UNKNOWN_OPERATION)
    asked = [f"/workspaces?person={i}" for i in range(len(people))]

    first = parallel(lambda i: people[i].get(asked[i]), len(people))
    assert all(sent_to_preparing(reply, asked[i]) for i, reply in enumerate(first))
    failed = wait_for_claim(db, lambda c: c.state == STATE_FAILED)
    assert UNKNOWN_OPERATION in failed.failed_reason
    assert read_flag(db) is None
    # Every person sees the failed page (each worker's reading of the claim is <= 2 s old).
    for i, person in enumerate(people):
        wait_for(lambda p=person, a=asked[i]: _failed_page(p.get(preparing_url(a))), timeout=30)
    time.sleep(2.5)  # not asserted: lets every worker's cached reading expire once more

    fault_proxy.reset_counts()
    started = time.monotonic()
    pages: list[list[int]] = [[] for _ in people]

    def keep_polling(i: int) -> None:
        person, page = people[i], preparing_url(asked[i])
        while time.monotonic() - started < 12:
            reply = person.get(page)
            assert _failed_page(reply), f"{reply.status}: {reply.text[:300]}"
            poll = person.get("/preparing/progress?next=" + asked[i])
            assert poll.status == 503 and poll.json() == {
                "done": False,
                "failed": True,
                "next": asked[i],
            }, poll.text[:300]
            pages[i].append(reply.status)
            time.sleep(0.2)

    parallel(keep_polling, len(people))
    window = time.monotonic() - started
    calls = _dynamodb_calls(fault_proxy)
    requests = 2 * sum(len(p) for p in pages)
    per_minute = calls / window * 60
    print(  # noqa: T201 - the measured figure, for the README
        f"\n[bounded calls] {len(people)} people, {requests} page loads and polls in "
        f"{window:.1f} s on {workers} workers: {calls} DynamoDB calls = {per_minute:.1f}/min "
        f"(bound {workers} x 60 = {workers * 60}/min); by operation {fault_proxy.counts()}"
    )
    # Per process: a claim read and a flag read at most every 2 s (README), so in `window`
    # seconds at most window/2 + 1 of each; no page loads were gated in the window.
    bound = workers * 2 * (window / 2 + 1)
    assert calls <= bound, f"{calls} calls in {window:.1f} s, bound {bound:.0f}"
    assert fault_proxy.count("TransactWriteItems") == 0, "a failed claim was tried again"

    status = server.run_flask("migration", "status", check=False)
    assert status.returncode == 0, status.stderr
    assert "claim: failed" in status.stdout
    assert f"failure reason: {UNKNOWN_OPERATION}" in status.stdout
    assert "migration retry" in status.stdout
    assert re.search(
        r"could not claim the migration: UnknownOperationException", server.log_tail(50_000_000)
    )

    # The operator moves to a server with transactions and retries.
    fault_proxy.clear()
    retried = server.run_flask("migration", "retry", check=False)
    assert retried.returncode == 0, retried.stderr

    def lands(i: int) -> list[int]:
        person, page, seen = people[i], preparing_url(asked[i]), []
        deadline = time.monotonic() + 120
        while True:
            reply = person.get(page)
            if reply.status in (302, 303):
                assert reply.location == asked[i], reply.location
                break
            assert reply.status in (200, 503), f"{reply.status}: {reply.text[:300]}"
            # A worker whose reading predates the retry still shows the failed page (<= 2 s).
            assert _failed_page(reply) or PREPARING in reply.text, reply.text[:300]
            seen.append(reply.status)
            assert time.monotonic() < deadline, f"not landed after 120 s: {seen[-5:]}"
            time.sleep(0.2)
        final = person.get(asked[i])
        assert final.status == 200, final.status
        return seen

    parallel(lands, len(people))
    flag = assert_migrated_exactly_once(db, (200, 5, 4))
    claim = read_claim(db)
    assert claim is not None and claim.failures == 0 and not claim.failed_reason
    assert flag.run_id == claim.owner


# --- 2. lost answers -----------------------------------------------------------------------


LOST: dict[str, tuple[Target, dict[str, Any]]] = {
    # The copy is slowed so it outlives a few heartbeats (one a second).
    "heartbeat": (HEARTBEATS, {"delay": 0.3}),
    "first claim": (FIRST_CLAIM, {}),
    "copy": (COPIES, {}),
    "flag": (FLAG_WRITES, {}),
}


@pytest.mark.parametrize("write", list(LOST))
def test_a_write_whose_answer_is_lost_costs_no_lease_and_the_copy_is_exact(
    write: str, live_server_factory: Callable[..., LiveServer], fault_proxy: FaultProxy
) -> None:
    """Deliverable 4: DynamoDB carries out the first ``write`` and the proxy closes the
    connection instead of answering (botocore then sends the same request again). The run
    recognises its own write, so the migration finishes exactly once on the first attempt
    (the claim's ``attempt`` counts takeovers: it stays 1), with no failure recorded and no
    run stopped, and the copy is exact."""
    target, options = LOST[write]
    # A lease long enough that botocore's retry backoff (up to a second) never outlasts the
    # half-lease fence by itself; what is tested is the recognition, not the timing.
    server = live_server_factory(workers=2, extra_env=server_env(fault_proxy, lease=10))
    db = server.database
    accounts = seed_v1(db, items=1000)
    if options.get("delay"):
        fault_proxy.delay(COPIES, options["delay"])
    fault_proxy.lose_answer(target, how="close")
    visitor = Visitor(server.url)
    visitor.login(accounts[0].email)
    asked = f"/workspaces?lost={write.replace(' ', '-')}"

    reply = visitor.get(asked)
    if sent_to_preparing(reply, asked):

        def landed() -> bool:
            again = visitor.get(preparing_url(asked))
            if again.status in (302, 303):
                assert again.location == asked
                return True
            assert again.status == 200, f"{again.status}: {again.text[:300]}"
            return False

        wait_for(landed, timeout=120, step=0.2)
    assert visitor.get(asked).status == 200

    assert fault_proxy.lost(target) == 1, f"no {write} answer was lost"
    assert fault_proxy.answers(target)[0].status == 200, "the lost write was carried out"
    flag = assert_migrated_exactly_once(db, (1000, 5, 4))
    claim = read_claim(db)
    assert claim is not None
    assert claim.attempt == 1, f"a lease was lost: attempt {claim.attempt}"
    assert claim.failures == 0 and not claim.failed_reason
    assert flag.run_id == claim.owner
    log = server.log_tail(2_000_000)
    assert not re.search(r"migration run \S+ (stopped|failed|crashed)", log), log[-3000:]


# --- 3. db init on a server without transactions -------------------------------------------


def test_db_init_through_a_server_without_transactions_refuses_naming_them(
    local_endpoint: str | None, fault_proxy: FaultProxy
) -> None:
    """Deliverable 3, from outside: ``flask --app app db init`` against a server that answers
    UnknownOperationException for TransactWriteItems exits 2 and names what is missing."""
    assert local_endpoint is not None
    server = LiveServer(local_endpoint, extra_env=server_env(fault_proxy, lease=3))
    fault_proxy.refuse("TransactWriteItems", UNKNOWN_OPERATION)
    try:
        result = server.run_flask("db", "init", check=False)
        assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
        assert "TransactWriteItems" in result.stderr and UNKNOWN_OPERATION in result.stderr
        assert "is ready" not in result.stdout
        assert fault_proxy.refused("TransactWriteItems") >= 1
    finally:
        server.stop()
