"""Promise 11 on the web: the failed page says nothing internal, and however many tabs poll,
the app's DynamoDB calls while the copy cannot progress stay within the README's bound."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from store.migration.acquire import try_acquire
from store.migration.claim import STATE_FAILED, ClaimObserver, read_claim
from store.migration.lease import Release, release
from tests.support.auth import dynamodb_failure
from tests.support.helpers import WebClient, hooked, wait_for

REASON = "UnknownOperationException: An unknown operation was requested. KEY=MIGRATION#CLAIM"


def _fail_the_claim(database) -> None:
    run = try_acquire(database, "someone", ClaimObserver(), lease=30, segments=1)
    assert release(database, run, Release.permanent(REASON))
    assert read_claim(database).state == STATE_FAILED


def _wait_the_claim(database) -> None:
    run = try_acquire(database, "someone", ClaimObserver(), lease=30, segments=1)
    assert release(database, run, Release.transient("ThrottlingException: slow down"))


def test_people_get_a_clear_503_page_without_internals(web, database, seed):
    accounts = seed(items=5)
    _fail_the_claim(database)
    web.login(accounts[0].email)

    sent = web.get("/workspaces")
    assert sent.status_code == 303 and sent.headers["Location"].startswith("/preparing")
    page = web.get(sent.headers["Location"])

    assert page.status_code == 503
    assert page.headers["Retry-After"] == "30"
    html = web.text(page)
    assert "Your workspace can't be prepared yet. The site's operator has been told." in html
    assert '<meta http-equiv="refresh" content="30">' in html
    for internal in ("UnknownOperation", "MIGRATION", "CLAIM", "Exception", "DynamoDB"):
        assert internal not in html, internal
    poll = web.get("/preparing/progress?next=/workspaces")
    assert poll.status_code == 503 and poll.json == {
        "done": False,
        "failed": True,
        "next": "/workspaces",
    }
    assert "UnknownOperation" not in web.text(poll)


@pytest.mark.parametrize("mode", ["thread", "request"])
@pytest.mark.parametrize("state", ["failed", "waiting"])
def test_polls_from_many_tabs_read_the_claim_and_flag_at_most_every_two_seconds(
    app, web, database, seed, state, mode
):
    app.config["MIGRATION_MODE"] = mode  # request mode tries a slice on every poll
    accounts = seed(items=5)
    (_fail_the_claim if state == "failed" else _wait_the_claim)(database)
    browsers = [WebClient(app.test_client()) for _ in range(3)]
    for browser, account in zip(browsers, accounts[:3], strict=True):
        browser.login(account.email)
    process = app.extensions["migration"]
    now = {"t": time.monotonic() + 1000}  # a clock the test moves; nothing was read at it
    process.clock = lambda: now["t"]
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    polls = 0
    with hooked(app.extensions["db"].client, "before-call.dynamodb", count):
        for window in range(3):
            for _ in range(10):
                for browser in browsers:
                    browser.get("/preparing/progress?next=/")
                    browser.get("/preparing?next=/")
                    polls += 2
            print(f"{polls} polls, 3 browsers, {window + 1} cache windows: {len(calls)} calls")  # noqa: T201
            # Per process and window: one claim read and one flag read, and no take (the
            # claim is failed, or waiting out a backoff that is not over).
            assert len(calls) <= 2 * (window + 1), calls
            now["t"] += 2.0
    assert sorted(set(calls)) == ["GetItem"]


@pytest.mark.parametrize("mode", ["thread", "request"])
@pytest.mark.parametrize(
    "refusal", ["TransactionConflictException", "ProvisionedThroughputExceededException"]
)
def test_a_due_claim_is_tried_once_per_reading_however_many_polls(
    app, database, seed, monkeypatch, refusal, mode
):
    """A take refused by a race, or by throttling (an error, not a cancellation), is not
    tried again before this process's next reading of the claim."""
    app.config["MIGRATION_MODE"] = mode
    accounts = seed(items=5)
    _wait_the_claim(database)
    browsers = [WebClient(app.test_client()) for _ in range(3)]
    for browser, account in zip(browsers, accounts[:3], strict=True):
        browser.login(account.email)
    process = app.extensions["migration"]
    now = {"t": time.monotonic() + 1000}
    process.clock = lambda: now["t"]
    # The backoff is over, but every take is refused (another process won it, say).
    monkeypatch.setattr(
        "store.migration.claim.Claim.due", lambda self, wall=None: True, raising=True
    )
    takes: list[Any] = []

    def refuse(**params: Any) -> None:
        takes.append(params)
        raise ClientError({"Error": {"Code": refusal, "Message": "busy"}}, "TransactWriteItems")

    monkeypatch.setattr(app.extensions["db"].client, "transact_write_items", refuse)
    for _ in range(10):
        for browser in browsers:
            browser.get("/preparing/progress?next=/")

    assert len(takes) == 1


def test_status_shows_the_reason_and_retry_clears_it(runner, web, database, seed):
    accounts = seed(items=5)
    assert runner.invoke(args=["migration", "retry"]).exit_code == 2  # no claim yet
    _fail_the_claim(database)

    status = runner.invoke(args=["migration", "status"])
    assert "claim: failed" in status.output and f"failure reason: {REASON}" in status.output
    assert "failures in a row: 1" in status.output and "migration retry" in status.output

    retried = runner.invoke(args=["migration", "retry"])
    assert retried.exit_code == 0, retried.output
    claim = read_claim(database)
    assert (claim.state, claim.failures, claim.failed_reason) == ("waiting", 0, "")
    web.login(accounts[0].email)
    web.get("/workspaces")
    wait_for(lambda: web.get("/preparing/progress?next=/").json["done"])
    assert runner.invoke(args=["migration", "retry"]).exit_code == 2  # complete: nothing to do


@pytest.mark.parametrize("mode", ["thread", "request"])
def test_dynamodb_not_answering_shows_the_retrying_page_never_a_500(app, web, seed, mode):
    app.config["MIGRATION_MODE"] = mode
    accounts = seed(items=5)
    web.login(accounts[0].email)
    client = app.extensions["db"].client

    with dynamodb_failure(
        client, code="ProvisionedThroughputExceededException", operations=["GetItem", "Query"]
    ):
        page = web.get("/preparing?next=/workspaces")
        poll = web.get("/preparing/progress?next=/workspaces")
    with dynamodb_failure(
        client, code="InternalServerError", operations=["TransactWriteItems", "Scan"]
    ):
        gated = web.get("/workspaces")

    assert page.status_code == 503 and page.headers["Retry-After"] == "2"
    html = web.text(page)
    assert "retrying automatically" in html
    for internal in ("Throughput", "Exception", "DynamoDB", "GetItem"):
        assert internal not in html, internal
    assert poll.status_code == 503 and poll.json["retrying"] is True and not poll.json["done"]
    assert gated.status_code == 303 and gated.headers["Location"].startswith("/preparing")
