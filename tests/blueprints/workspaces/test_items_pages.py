"""The items pages as a member uses them: the list and its cost, pages and cursors, filters,
the form's validation, edits that keep v1 data, confirmation before deleting."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from store import keys
from store.db import Database, s
from store.migration import legacy
from tests.support.helpers import scan_all
from tests.support.workspaces import Team, add_item

V1_EXTRAS: dict[str, Any] = legacy.EVERY_TYPE


def stamp(i: int) -> str:
    return f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000000Z"


def set_page_size(database: Database, ws: str, size: int) -> None:
    database.client.put_item(
        TableName=database.table,
        Item={**keys.setting(ws, "itemsPerPage"), "value": {"N": str(size)}, "updatedAt": s("x")},
    )


def titles(html: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'class="item__title"[^>]*>([^<]*)<', html)]


def next_link(html: str) -> str | None:
    match = re.search(r'<a rel="next" href="([^"]+)"', html)
    return unescape(match.group(1)) if match else None


def item(database: Database, ws: str, item_id: str) -> dict[str, Any] | None:
    return database.get(keys.item(ws, item_id), consistent=True)


@pytest.fixture
def ws(team: Team) -> str:
    return team.workspace_id


@pytest.fixture
def web(team: Team) -> Any:
    return team.member.web


# --- the list --------------------------------------------------------------------------------


def count_calls(database_client: Any) -> tuple[list[str], Any]:
    calls: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    database_client.meta.events.register("before-call.dynamodb", record)
    return calls, record


def test_a_signed_in_items_page_costs_at_most_two_dynamodb_calls(app, database, ws, web):
    for i in range(30):
        add_item(database, ws, f"i{i:02d}", createdAt=s(stamp(i)))
    web.get(f"/w/{ws}/items")  # first request: anything once-per-process happens here
    client = app.extensions["db"].client
    calls, record = count_calls(client)
    try:
        response = web.get(f"/w/{ws}/items")
        unfiltered = list(calls)
        calls.clear()
        web.get(f"/w/{ws}/items?status=open")
        filtered = list(calls)
    finally:
        client.meta.events.unregister("before-call.dynamodb", record)

    assert response.status_code == 200 and len(titles(web.text(response))) == 25
    assert unfiltered == ["BatchGetItem", "Query"]
    assert filtered == ["BatchGetItem", "Query"]  # every item is open: the first Query fills it


def test_items_come_newest_first_across_pages_with_a_signed_cursor(database, ws, web):
    set_page_size(database, ws, 5)
    for i in range(12):
        add_item(database, ws, f"i{i:02d}", createdAt=s(stamp(i)), title=s(f"Item {i:02d}"))

    seen, url, pages = [], f"/w/{ws}/items", 0
    while url:
        html = web.text(web.get(url))
        seen += titles(html)
        url = next_link(html)
        pages += 1
        if url:
            cursor = re.search(r"cursor=([^&]+)", url).group(1)
            assert "ITEM#" not in cursor and "LastEvaluatedKey" not in cursor

    assert pages == 3
    assert seen == [f"Item {i:02d}" for i in reversed(range(12))]


def test_filters_by_status_and_tag_page_through_the_matches(database, ws, web):
    set_page_size(database, ws, 5)
    for i in range(20):
        add_item(
            database,
            ws,
            f"i{i:02d}",
            createdAt=s(stamp(i)),
            title=s(f"Item {i:02d}"),
            status=s("done" if i % 2 else "open"),
            tags={"SS": ["even" if i % 2 == 0 else "odd", "all"]},
        )

    html = web.text(web.get(f"/w/{ws}/items?status=done"))
    assert titles(html) == [f"Item {i:02d}" for i in (19, 17, 15, 13, 11)]
    html = web.text(web.get(next_link(html)))
    assert titles(html) == [f"Item {i:02d}" for i in (9, 7, 5, 3, 1)]
    assert next_link(html) is None

    html = web.text(web.get(f"/w/{ws}/items?tag=even&status=open"))
    assert titles(html)[:2] == ["Item 18", "Item 16"]
    html = web.text(web.get(f"/w/{ws}/items?tag=nothing"))
    assert titles(html) == [] and "No items match these filters" in html


@pytest.mark.parametrize("tamper", ["flip", "foreign-workspace", "other-filter", "garbage"])
def test_a_tampered_or_foreign_cursor_gets_a_clear_400(database, team, ws, web, tamper):
    set_page_size(database, ws, 5)
    for i in range(8):
        add_item(database, ws, f"i{i}", createdAt=s(stamp(i)))
    link = next_link(web.text(web.get(f"/w/{ws}/items")))
    cursor = re.search(r"cursor=([^&]+)", link).group(1)

    if tamper == "flip":
        url = link.replace(cursor, cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:])
    elif tamper == "foreign-workspace":
        # A member of both workspaces carries a valid cursor of one into the other.
        other = team.owner.web.post("/workspaces", {"name": "Other"}, form_page="/workspaces")
        other_ws = re.search(r"/w/([^/]+)/", other.headers["Location"]).group(1)
        url = f"/w/{other_ws}/items?cursor={cursor}"
        web = team.owner.web
    elif tamper == "other-filter":
        url = link + "&status=done"
    else:
        url = f"/w/{ws}/items?cursor=not-a-cursor"

    response = web.get(url)
    assert response.status_code == 400
    assert "That page link does not work" in web.text(response)


def test_an_empty_workspace_explains_what_items_are(ws, web):
    html = web.text(web.get(f"/w/{ws}/items"))
    assert "No items yet" in html and "Add the first item" in html


# --- create and validate -----------------------------------------------------------------------


def test_a_new_item_is_created_with_trimmed_deduplicated_tags(database, ws, web):
    response = web.post(
        f"/w/{ws}/items/new",
        {
            "title": "  Plan the offsite ",
            "notes": "Line 1\r\nLine 2",
            "tags": " ops, , ops,Fun ",
            "status": "open",
        },
    )
    assert response.status_code == 303
    rows = [r for r in scan_all(database) if r["SK"]["S"].startswith("ITEM#")]
    assert len(rows) == 1
    row = rows[0]
    assert row["title"] == s("Plan the offsite")
    assert row["notes"] == s("Line 1\nLine 2")
    assert row["tags"] == {"SS": ["Fun", "ops"]}
    assert row["status"] == s("open")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"title": ""}, "title", "Enter a title."),
        ({"title": "x" * 201}, "title", "Keep the title to 200 characters"),
        ({"title": "ok", "tags": "a, " + "b" * 41}, "tags", "Keep each tag to 40 characters"),
        ({"title": "ok", "tags": ",".join(f"t{i}" for i in range(21))}, "tags", "at most 20"),
        ({"title": "ok", "status": "archived"}, "status", "Choose open or done."),
        ({"title": "ok", "notes": "n" * (351 * 1024)}, "notes", "Notes can hold about 350 KB"),
    ],
)
def test_invalid_input_comes_back_with_a_message_and_what_was_typed(
    database, ws, web, data, field, message
):
    typed = {"title": "", "notes": "My careful notes", "tags": "keep, these", "status": "open"}
    typed.update(data)
    before = scan_all(database)

    response = web.post(f"/w/{ws}/items/new", typed)

    html = web.text(response)
    assert response.status_code == 400
    assert message in unescape(html)
    assert 'id="f-' + field + '-error"' in html
    if field != "notes":
        assert "My careful notes" in html
    assert 'value="' + typed["tags"].replace("'", "&#39;")[:50] in html or field == "tags"
    assert scan_all(database) == before


def test_extra_form_fields_are_ignored(database, team, ws, web):
    web.post(
        f"/w/{ws}/items/new",
        {
            "title": "Just an item",
            "status": "open",
            "PK": "WORKSPACE#evil",
            "SK": "MEMBER#x",
            "workspaceId": "evil",
            "createdBy": "someone-else",
            "role": "owner",
            "GSI1PK": "x",
        },
    )
    rows = [r for r in scan_all(database) if r["SK"]["S"].startswith("ITEM#")]
    assert len(rows) == 1
    assert set(rows[0]) == {
        *("PK", "SK", "title", "status", "createdAt", "updatedAt", "createdBy"),
        "v2ChangedAt",  # people's row: a late v1 write never overwrites it
    }
    assert rows[0]["PK"] == s(keys.workspace_pk(ws))
    assert rows[0]["createdBy"] == s(team.member.user_id)


def test_a_form_body_over_the_request_limit_gets_a_friendly_413(database, ws, web):
    before = scan_all(database)
    response = web.post(f"/w/{ws}/items/new", {"title": "Big", "notes": "x" * 2_000_000})
    assert response.status_code == 413
    assert "larger than this site accepts" in web.text(response)
    assert scan_all(database) == before


# --- edit, v1 data, conflicts --------------------------------------------------------------------


def test_editing_a_migrated_item_keeps_every_other_attribute_exactly(database, ws, web):
    add_item(database, ws, "v1item", notes=s("old"), tags={"SS": ["a", "b"]}, **V1_EXTRAS)
    before = item(database, ws, "v1item")
    form = web.get(f"/w/{ws}/items/v1item/edit")
    assert 'value="a, b"' in web.text(form)

    response = web.post(
        f"/w/{ws}/items/v1item/edit",
        {
            "title": "Renamed",
            "notes": "",
            "tags": "",
            "status": "done",
            "seen": before["updatedAt"]["S"],
        },
        form_page=f"/w/{ws}/items/v1item/edit",
    )

    assert response.status_code == 303
    after = item(database, ws, "v1item")
    unknown = set(V1_EXTRAS) | {"createdAt", "createdBy", "PK", "SK"}
    assert {k: after[k] for k in unknown} == {k: before[k] for k in unknown}
    assert after["title"] == s("Renamed") and after["status"] == s("done")
    assert "notes" not in after and "tags" not in after
    assert set(after) == unknown | {"title", "status", "updatedAt", "v2ChangedAt"}


def test_a_migrated_items_other_data_is_shown_read_only_and_exact(database, ws, web):
    add_item(database, ws, "v1item", **V1_EXTRAS)
    html = unescape(web.text(web.get(f"/w/{ws}/items/v1item")))
    assert "Other data" in html
    assert "1234567895171680000000000000000000000000" in html
    assert "3.1415926535897932384626433832795028841" in html
    assert "base64:AAH+/w==" in html
    assert "{alice, bob}" in html
    assert 'name="bigCounter"' not in html  # not a form field


def test_editing_an_item_deleted_meanwhile_says_so_and_does_not_recreate_it(database, ws, web):
    add_item(database, ws, "doomed")
    web.get(f"/w/{ws}/items/doomed/edit")
    csrf = web.csrf()
    seen = item(database, ws, "doomed")["updatedAt"]["S"]
    database.client.delete_item(TableName=database.table, Key=keys.item(ws, "doomed"))

    response = web.post(
        f"/w/{ws}/items/doomed/edit", {"title": "Back?", "status": "open", "seen": seen}, csrf=csrf
    )

    assert response.status_code == 404
    assert "may have been deleted" in web.text(response)
    assert item(database, ws, "doomed") is None


def test_an_edit_over_a_colleagues_save_keeps_the_typing_and_explains(database, team, ws, web):
    add_item(database, ws, "shared", title=s("Original"))
    web.get(f"/w/{ws}/items/shared/edit")
    csrf = web.csrf()
    seen = item(database, ws, "shared")["updatedAt"]["S"]
    team.owner.web.post(
        f"/w/{ws}/items/shared/edit",
        {"title": "Owner's version", "status": "open", "seen": seen},
        form_page=f"/w/{ws}/items/shared/edit",
    )

    response = web.post(
        f"/w/{ws}/items/shared/edit",
        {"title": "Member's version", "notes": "typed notes", "status": "open", "seen": seen},
        csrf=csrf,
    )

    html = web.text(response)
    assert response.status_code == 409
    assert "Someone else saved this item" in html
    assert "Member&#39;s version" in html and "typed notes" in html
    assert item(database, ws, "shared")["title"] == s("Owner's version")
    # Saving again from that page is a deliberate overwrite, and it works.
    new_seen = re.search(r'name="seen" value="([^"]+)"', html).group(1)
    again = web.post(
        f"/w/{ws}/items/shared/edit",
        {"title": "Member's version", "status": "open", "seen": new_seen},
        csrf=csrf,
    )
    assert again.status_code == 303
    assert item(database, ws, "shared")["title"] == s("Member's version")


def test_notes_that_would_push_a_migrated_row_past_400_kb_are_refused_clearly(database, ws, web):
    add_item(database, ws, "heavy", attachment={"B": b"\x00" * 300_000})
    seen = item(database, ws, "heavy")["updatedAt"]["S"]
    response = web.post(
        f"/w/{ws}/items/heavy/edit",
        {"title": "Heavy", "notes": "n" * 150_000, "status": "open", "seen": seen},
        form_page=f"/w/{ws}/items/heavy/edit",
    )
    html = unescape(web.text(response))
    assert response.status_code == 400
    assert "DynamoDB keeps at most 400 KB per item" in html
    assert "notes" not in item(database, ws, "heavy")


# --- status and delete --------------------------------------------------------------------------


def test_marking_done_and_reopening_from_the_list_returns_to_the_same_list(database, ws, web):
    add_item(database, ws, "task", tags={"SS": ["ops"]})
    listing = f"/w/{ws}/items?tag=ops"
    web.get(listing)
    csrf = web.csrf()
    response = web.post(
        f"/w/{ws}/items/task/status", {"status": "done", "next": listing}, csrf=csrf
    )
    assert response.status_code == 303 and response.headers["Location"] == listing
    assert item(database, ws, "task")["status"] == s("done")

    response = web.post(
        f"/w/{ws}/items/task/status",
        {"status": "open", "next": "https://evil.example/"},
        csrf=csrf,
    )
    assert response.headers["Location"] == f"/w/{ws}/items"
    assert item(database, ws, "task")["status"] == s("open")


def test_delete_asks_first_and_deletes_only_on_post(database, ws, web):
    add_item(database, ws, "bye", title=s("Old task"))
    confirm = web.get(f"/w/{ws}/items/bye/delete")
    assert confirm.status_code == 200
    assert "Delete this item?" in web.text(confirm) and "cannot be undone" in web.text(confirm)
    assert item(database, ws, "bye") is not None

    response = web.post(f"/w/{ws}/items/bye/delete", form_page=f"/w/{ws}/items/bye/delete")
    assert response.status_code == 303
    assert item(database, ws, "bye") is None
    assert "Deleted “Old task”." in web.text(web.get(response.headers["Location"]))


def test_a_v1_page_size_outside_the_allowed_range_is_clamped(database, ws, web):
    set_page_size(database, ws, 1000)
    for i in range(105):
        add_item(database, ws, f"i{i:03d}", createdAt=s(stamp(i)))
    html = web.text(web.get(f"/w/{ws}/items"))
    assert len(titles(html)) == 100 and next_link(html)
