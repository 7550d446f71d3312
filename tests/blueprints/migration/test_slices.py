"""Promise 12 in one process: the copy advances in slices on requests (any host).

A small table is copied inside the first request, which lands on the page asked for with a
one-time note; a larger one, with a tiny slice in request mode, is moved on by the progress
polls alone, each slice resuming where the last one handed over. MIGRATION_MODE=auto picks
request mode on hosts that give the app no time outside requests. The first page after the
flag is right even while the ByUser index lags behind it.
"""

from __future__ import annotations

import sys
import time
import types
from typing import Any

import pytest
from gunicorn.workers.base import Worker

from blueprints.migration import hosting, runner
from store import keys
from store.migration.claim import STATE_WAITING, read_claim
from store.migration.flag import read_flag
from tests.support.faults import is_bulk_copy
from tests.support.helpers import hooked, scan_all, wait_for

NOTE = "Your workspace was just prepared: 40 items, 5 settings and 4 members moved."


def workspaces_in(database: Any) -> list[dict[str, Any]]:
    return [r for r in scan_all(database) if r["SK"]["S"] == keys.WORKSPACE_SK]


@pytest.mark.parametrize("mode", ["thread", "request"])
def test_a_small_table_is_copied_inside_the_first_request_which_lands_with_a_note(
    web, app, database, seed, mode
):
    accounts = seed(items=40, settings=5, members=4)
    app.config["MIGRATION_MODE"] = mode
    # Thread mode waits up to a slice for its run: generous here, as the machine is shared
    # (the wait ends as soon as the run does). Request mode copies one page per segment
    # before it looks at the deadline, and 40 items fit in one page.
    app.config["MIGRATION_SLICE_SECONDS"] = 30.0
    web.login(accounts[0].email)

    first = web.get("/workspaces?view=first")

    assert first.status_code == 200, first.headers.get("Location")
    html = web.text(first)
    assert NOTE in html
    assert "Preparing your workspace" not in html
    flag = read_flag(database)
    assert (flag.items, flag.settings, flag.members) == (40, 5, 4)
    assert NOTE not in web.text(web.get("/workspaces")), "the note shows once"


def test_the_note_survives_the_start_pages_redirect(web, app, seed):
    accounts = seed(items=3, settings=1, members=2)
    app.config["MIGRATION_SLICE_SECONDS"] = 30.0
    web.login(accounts[0].email)

    landing = web.get("/")

    assert landing.status_code == 302 and landing.headers["Location"].endswith("/items")
    page = web.text(web.get(landing.headers["Location"]))
    assert "Your workspace was just prepared: 3 items, 1 setting and 2 members moved." in page


def test_request_mode_with_a_tiny_slice_advances_by_polls_into_one_workspace(
    web, app, database, seed
):
    # Enough items that the polls need several slices whatever the first one managed.
    accounts = seed(items=600)
    app.config["MIGRATION_MODE"] = "request"
    app.config["MIGRATION_SLICE_SECONDS"] = 0.001  # one page per segment per request
    client = app.extensions["db"].client

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        if "FilterExpression" in params and "Select" not in params:
            params["Limit"] = 20  # many pages, so many slices

    web.login(accounts[0].email)
    seen: list[tuple[int, str, int]] = []
    with hooked(client, "provide-client-params.dynamodb.Scan", small_pages):
        first = web.get("/workspaces")
        assert first.status_code == 303
        assert first.headers["Location"].startswith("/preparing")
        handed_over = read_claim(database)
        assert handed_over.state == STATE_WAITING and not handed_over.last_error
        assert 0 < handed_over.items_copied < 600
        for _ in range(500):
            progress = web.get("/preparing/progress?next=/workspaces").json
            if progress["done"]:
                break
            assert progress["retrying"] is False, progress
            claim = read_claim(database)
            seen.append((progress["items"], claim.workspace_id, claim.attempt))

    assert progress["done"] and progress["next"] == "/workspaces"
    counts = [items for items, _, _ in seen]
    assert counts == sorted(counts), "the count went down between slices"
    assert len(set(counts)) > 3, "the polls did not move the copy on"
    assert {ws for _, ws, _ in seen} == {handed_over.workspace_id}
    assert seen[-1][2] > handed_over.attempt, "each slice took the claim over"
    flag = read_flag(database)
    assert flag.items == 600 and flag.workspace_id == handed_over.workspace_id
    assert len(workspaces_in(database)) == 1
    assert read_claim(database).state == "complete"
    page = web.get("/workspaces")
    assert page.status_code == 200 and "Preparing your workspace" not in web.text(page)


def test_a_handed_over_claim_shows_progress_not_retrying_on_the_preparing_page(
    web, app, database, seed
):
    accounts = seed(items=120)
    app.config["MIGRATION_MODE"] = "request"
    app.config["MIGRATION_SLICE_SECONDS"] = 0.001
    client = app.extensions["db"].client

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        if "FilterExpression" in params and "Select" not in params:
            params["Limit"] = 10

    web.login(accounts[0].email)
    with hooked(client, "provide-client-params.dynamodb.Scan", small_pages):
        web.get("/")
        page = web.get("/preparing?next=/")

    assert page.status_code == 200
    html = web.text(page)
    assert "Preparing your workspace" in html and "retrying" not in html
    assert read_claim(database).items_copied > 0


# --- which mode a host gets -------------------------------------------------------------


class _FakeWorker(Worker):
    """A gunicorn worker as far as the stack walk can tell (its __init__ needs a real server)."""

    def __new__(cls, max_requests: int) -> _FakeWorker:
        worker = object.__new__(cls)
        worker.cfg = types.SimpleNamespace(max_requests=max_requests)
        return worker

    def __init__(self, max_requests: int) -> None:  # noqa: D107 - set up in __new__
        pass

    def serve(self, environ: dict[str, Any]) -> tuple[str, str]:
        return hosting.detect_mode(environ, {})


GUNICORN_SYNC = {"SERVER_SOFTWARE": "gunicorn/27.0.1", "wsgi.multithread": False}


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    ("environ", "env", "max_requests", "expected"),
    [
        ({"SERVER_SOFTWARE": "Werkzeug/3.1"}, {}, None, "thread"),
        ({}, {"AWS_LAMBDA_FUNCTION_NAME": "teamapp"}, None, "request"),
        ({**GUNICORN_SYNC, "wsgi.multithread": True}, {}, 4, "thread"),
        (GUNICORN_SYNC, {}, 4, "request"),
        (GUNICORN_SYNC, {}, 0, "thread"),
        (GUNICORN_SYNC, {}, None, "thread"),  # no worker found on the stack
    ],
    ids=["werkzeug", "lambda", "gunicorn-gthread", "gunicorn-sync-recycled", "sync", "no-worker"],
)
def test_auto_detection_picks_request_mode_where_the_host_gives_no_time_outside_requests(
    environ, env, max_requests, expected
):
    if max_requests is None:
        mode, why = hosting.detect_mode(environ, env)
    else:
        mode, why = _FakeWorker(max_requests).serve(environ)

    assert mode == expected, why


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "request"),
        ({"enable-threads": True}, "thread"),
        ({"enable-threads": b"true"}, "thread"),
        ({"threads": b"4"}, "thread"),
        ({"threads": [b"0"]}, "request"),
    ],
)
def test_auto_detection_under_uwsgi_depends_on_its_threads(monkeypatch, options, expected):
    monkeypatch.setitem(sys.modules, "uwsgi", types.SimpleNamespace(opt=options))

    mode, why = hosting.detect_mode({"SERVER_SOFTWARE": "uWSGI"}, {})

    assert mode == expected, why


def test_a_configured_mode_wins_over_detection(app, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "teamapp")
    app.config["MIGRATION_MODE"] = "thread"
    with app.test_request_context("/"):
        assert runner.mode(app) == "thread"
    app.config["MIGRATION_MODE"] = "auto"
    with app.test_request_context("/"):
        assert runner.mode(app) == "request"


# --- the first page after the flag --------------------------------------------------------


def test_the_start_page_finds_the_migrated_workspace_while_the_by_user_index_lags(
    web, app, database, seed, monkeypatch
):
    accounts = seed(items=5, members=3)
    member = next(a for a in accounts if a.role == "member")
    app.config["MIGRATION_SLICE_SECONDS"] = 30.0
    client = app.extensions["db"].client
    original = client.query
    by_user_queries: list[dict[str, Any]] = []

    def lagging(**params: Any) -> Any:
        if params.get("IndexName") == keys.BY_USER_INDEX:
            by_user_queries.append(params)
            return {"Items": [], "Count": 0, "ScannedCount": 0}
        return original(**params)

    monkeypatch.setattr(client, "query", lagging)
    web.login(member.email)

    landing = web.get("/")

    assert by_user_queries, "the index was not asked"
    flag = read_flag(database)
    assert landing.status_code == 302
    assert landing.headers["Location"] == f"/w/{flag.workspace_id}/items"


def test_the_start_page_still_says_no_workspace_to_someone_who_was_not_a_v1_member(
    web, other_web, app, seed
):
    accounts = seed(items=5, members=3)
    outsider = next(a for a in accounts if a.role is None)
    app.config["MIGRATION_SLICE_SECONDS"] = 30.0
    web.login(accounts[0].email)
    web.get("/")
    wait_for(lambda: runner.state(app).flag_seen)
    other_web.login(outsider.email)

    page = other_web.get("/")

    assert page.status_code == 200
    assert "you are not in any workspace yet" in other_web.text(page)


# --- a process that exits -----------------------------------------------------------------


def test_stopping_the_process_hands_a_running_background_copy_over_with_its_progress(
    web, app, database, seed, monkeypatch
):
    accounts = seed(items=400)
    app.config["MIGRATION_MODE"] = "thread"
    app.config["MIGRATION_SLICE_SECONDS"] = 0
    app.config["MIGRATION_LEASE_SECONDS"] = 600.0  # a lapse could not explain a waiting claim
    client = app.extensions["db"].client
    original = client.batch_write_item
    copies: list[int] = []

    def slow(**params: Any) -> Any:
        if is_bulk_copy(params):
            copies.append(1)
            time.sleep(0.1)  # slow enough that stopping lands mid-copy on any backend
        return original(**params)

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        if "FilterExpression" in params and "Select" not in params:
            params["Limit"] = 10

    monkeypatch.setattr(client, "batch_write_item", slow)
    web.login(accounts[0].email)
    with hooked(client, "provide-client-params.dynamodb.Scan", small_pages):
        assert web.get("/").status_code == 303
        wait_for(lambda: len(copies) >= 6, timeout=60)

        runner.stop_runs(runner.state(app), join_seconds=60)

    assert not runner.state(app).thread.is_alive()
    claim = read_claim(database)
    assert claim.state == STATE_WAITING and not claim.last_error
    assert 0 < claim.items_copied < 400 and claim.cursors
    assert read_flag(database) is None
