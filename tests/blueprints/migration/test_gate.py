"""The first signed-in page load: the preparing page, progress, return path and access."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from blueprints.migration import runner
from store import batch, keys
from store.migration import status
from store.migration.acquire import try_acquire
from store.migration.claim import ClaimObserver, read_claim
from store.migration.engine import Migration, Settings
from store.migration.flag import read_flag
from tests.support.auth import dynamodb_calls
from tests.support.faults import is_bulk_copy
from tests.support.helpers import WebClient, hooked, rows_with, scan_all, user_id_of, wait_for
from tests.support.migration import throttled


def finish(web: WebClient, next_path: str = "/") -> dict[str, Any]:
    """Poll the progress endpoint like the page's script does, until it reports done."""
    return wait_for(
        lambda: (r := web.get(f"/preparing/progress?next={next_path}").json)["done"] and r
    )


def test_a_fresh_install_never_shows_the_preparing_page(web, database):
    web.register("first@example.com")

    response = web.get("/")

    assert response.status_code == 200
    assert "Preparing your workspace" not in web.text(response)
    flag = read_flag(database)
    assert flag is not None and (flag.items, flag.settings, flag.members) == (0, 0, 0)
    assert flag.workspace_id is None
    assert not [r for r in scan_all(database) if r.get("origin") == {"S": "v1-migration"}]


def test_a_v1_members_first_request_reads_flag_claim_and_membership_in_one_call(web, app, seed):
    accounts = seed(items=5)
    app.config["MIGRATION_SLICE_SECONDS"] = 30.0  # the copy finishes inside the request
    web.login(accounts[0].email)
    with dynamodb_calls(app.extensions["db"].client) as calls:
        web.get("/")

    names = [name for name, _ in calls]
    before_claim = names[: names.index("TransactWriteItems")]
    # The session check, then the gate's one read: the flag, the claim and the person's own
    # v1 member row (which shows there is v1 data without a Query for it).
    assert before_claim == ["BatchGetItem", "BatchGetItem"], names


def test_gate_keys_left_unprocessed_send_people_to_the_retrying_page_not_an_error(
    web, app, seed, monkeypatch
):
    accounts = seed(items=3)
    web.login(accounts[0].email)
    client = app.extensions["db"].client
    original = client.batch_get_item
    flag_key = keys.migration_flag()

    def throttled_gate_read(**params: Any) -> Any:
        (asked,) = params["RequestItems"].values()
        if flag_key in asked["Keys"]:  # DynamoDB throttled every key of the gate's read
            return {"Responses": {}, "UnprocessedKeys": params["RequestItems"]}
        return original(**params)  # the session check reads as usual

    monkeypatch.setattr(client, "batch_get_item", throttled_gate_read)
    monkeypatch.setattr(status, "GATE_READ_BUDGET_SECONDS", 0.2)

    response = web.get("/workspaces")

    assert response.status_code == 303
    assert response.headers["Location"] == "/preparing?next=/workspaces"


def test_someone_who_was_not_a_v1_member_still_starts_the_copy(web, app, database, seed):
    seed(items=3, settings=1, members=2)
    app.config["MIGRATION_SLICE_SECONDS"] = 30.0
    web.register("new-to-the-team@example.com")

    response = web.get("/")

    assert response.status_code in (200, 302), response.headers.get("Location")
    flag = read_flag(database)
    assert flag is not None and (flag.items, flag.settings, flag.members) == (3, 1, 2)


def test_first_sign_in_shows_the_preparing_page_then_returns_to_the_page_asked_for(
    web, app, database, seed
):
    accounts = seed(items=40)
    # No inline slice: 40 items would otherwise be copied inside the first request
    # (test_slices.py shows that landing).
    app.config["MIGRATION_SLICE_SECONDS"] = 0
    web.login(accounts[0].email)

    response = web.get("/?view=mine")

    assert response.status_code == 303
    assert response.headers["Location"] == "/preparing?next=/?view%3Dmine"
    page = web.get(response.headers["Location"])
    if page.status_code == 200:  # it may already be done on a fast machine
        html = web.text(page)
        assert "Preparing your workspace" in html
        assert re.search(r'<meta http-equiv="refresh" content="\d+">', html)
        assert "preparing.js" in html
        assert "<progress" in html
        assert "items copied" in html and "built-in method" not in html
    done = finish(web, "/?view%3Dmine")
    assert done["next"] == "/?view=mine"
    assert web.get("/preparing?next=/?view%3Dmine").headers["Location"] == "/?view=mine"
    assert read_flag(database).items == 40


@pytest.mark.parametrize(
    "bad_next",
    [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil",
        "javascript:x",
        "http:/\\/evil.example",
        " //evil.example",
        "\x08//evil.example",
    ],
)
def test_the_preparing_page_only_ever_returns_to_a_same_site_path(web, seed, bad_next):
    accounts = seed(items=5)
    web.login(accounts[0].email)
    web.get("/")
    finish(web)

    response = web.client.get("/preparing", query_string={"next": bad_next})

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    progress = web.client.get("/preparing/progress", query_string={"next": bad_next}).json
    assert progress["next"] == "/"


def test_signed_out_visitors_are_not_sent_to_the_preparing_page(web, seed, database):
    seed(items=5)

    response = web.get("/")

    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert read_claim(database) is None


def test_v1_members_keep_their_roles_and_the_first_signer_in_gains_nothing(web, database, seed):
    accounts = seed(items=5, members=3)  # owner, admin, member; plus one non-member account
    outsider = next(a for a in accounts if a.role is None)
    web.login(outsider.email)

    web.get("/")
    finish(web)

    flag = read_flag(database)
    members = {
        r["SK"]["S"].removeprefix("MEMBER#"): r["role"]["S"]
        for r in rows_with(database, f"WORKSPACE#{flag.workspace_id}", "MEMBER#")
    }
    assert user_id_of(database, outsider.email) not in members
    expected = {user_id_of(database, a.email): a.role for a in accounts if a.role}
    assert members == expected
    assert flag.migrated_by == user_id_of(database, outsider.email)  # audit says who


def test_once_a_process_has_seen_the_flag_the_check_costs_no_dynamodb_call(
    web, app, database, seed
):
    accounts = seed(items=5)
    web.login(accounts[0].email)
    web.get("/")
    finish(web)
    client = app.extensions["db"].client
    flag_reads: list[dict[str, Any]] = []
    claim_reads: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == keys.migration_flag():
            flag_reads.append(params)
        if params.get("Key") == keys.migration_claim():
            claim_reads.append(params)

    with hooked(client, "provide-client-params.dynamodb.GetItem", record):
        for _ in range(50):
            response = web.get("/")
            assert response.status_code in (200, 302)
            assert not response.headers.get("Location", "").startswith("/preparing")

    assert flag_reads == [] and claim_reads == []


def test_progress_never_goes_down_and_the_user_lands_where_they_were_going(
    web, database, seed, monkeypatch, app
):
    accounts = seed(items=400)
    client = app.extensions["db"].client
    original = client.batch_write_item

    def slow(**params: Any) -> Any:
        time.sleep(0.01)
        return original(**params)

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        if "FilterExpression" in params and "Select" not in params:
            params["Limit"] = 20  # many pages, so progress is published many times

    monkeypatch.setattr(client, "batch_write_item", slow)
    app.config["MIGRATION_LEASE_SECONDS"] = 0.9  # heartbeats every 0.3 s publish progress
    # No inline slice: the first request answers at once and the polls watch the whole copy.
    app.config["MIGRATION_SLICE_SECONDS"] = 0
    # Re-read the claim at every poll (not every 2 s), so a quick copy is seen moving.
    monkeypatch.setattr(runner, "CLAIM_POLL_SECONDS", 0.0)
    web.login(accounts[0].email)
    seen: list[int] = []
    with hooked(client, "provide-client-params.dynamodb.Scan", small_pages):
        web.get("/")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            progress = web.get("/preparing/progress?next=/").json
            if progress["done"]:
                break
            seen.append(progress["items"])
            time.sleep(0.05)

    assert progress["done"] and progress["next"] == "/"
    assert seen == sorted(seen)
    assert len(set(seen)) > 1, "the progress never moved while it was polled"
    assert read_flag(database).items == 400


def test_throttling_shows_a_clear_retrying_page_and_a_later_request_finishes(
    web, app, database, seed, monkeypatch
):
    accounts = seed(items=60)
    monkeypatch.setattr(batch, "_sleep", lambda _s: None)
    app.config["MIGRATION_BUDGET_SECONDS"] = 0.2
    client = app.extensions["db"].client
    original = client.batch_write_item

    def throttle_copies(**params: Any) -> Any:
        if is_bulk_copy(params):
            raise throttled("BatchWriteItem")
        return original(**params)

    monkeypatch.setattr(client, "batch_write_item", throttle_copies)
    web.login(accounts[0].email)
    web.get("/")
    wait_for(lambda: (c := read_claim(database)) and c.state == "waiting")

    page = web.get("/preparing?next=/")
    assert read_flag(database) is None
    monkeypatch.setattr(client, "batch_write_item", original)

    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "retrying automatically" in web.text(page)
    finish(web)
    flag = read_flag(database)
    assert flag.items == 60
    assert len([r for r in scan_all(database) if r["SK"]["S"] == "WORKSPACE"]) == 1


def test_the_audit_page_shows_who_when_and_counts_to_owners_only(web, other_web, seed):
    accounts = seed(items=12, settings=5, members=3)
    owner = next(a for a in accounts if a.role == "owner")
    member = next(a for a in accounts if a.role == "member")
    web.login(owner.email)
    web.get("/")
    finish(web)

    page = web.get("/migration")

    assert page.status_code == 200
    html = web.text(page)
    assert owner.name in html and "Items copied" in html and ">12<" in html
    other_web.login(member.email)
    assert other_web.get("/migration").status_code == 403


def test_while_another_server_holds_the_claim_the_page_shows_its_progress(web, database, seed):
    accounts = seed(items=30)
    run = try_acquire(database, "elsewhere", ClaimObserver(), lease=30, segments=1)
    holder = Migration(database, run, Settings(lease=30, segments=1))
    holder.progress.page_done(0, 12, {"PK": {"S": "ITEM#x"}, "SK": {"S": "ITEM"}})
    assert holder.heartbeat()
    web.login(accounts[0].email)

    page = web.get("/preparing?next=/")

    assert page.status_code == 200
    html = web.text(page)
    assert "12 items copied so far." in html
    assert "built-in method" not in html
    claim_reads: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == keys.migration_claim():
            claim_reads.append(params)

    with hooked(database.client, "provide-client-params.dynamodb.GetItem", record):
        progress = web.get("/preparing/progress?next=/").json
    assert progress["done"] is False and progress["items"] == 12
    # At most one: the poll and the takeover check share the process's cached reading.
    assert len(claim_reads) <= 1
    assert read_claim(database).owner == run.run_id  # nobody took over a live claim
