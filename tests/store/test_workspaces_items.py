"""Items in the store: pages from the ByCreated index, filters, edits that keep unknown
attributes, conditions against deleted rows and concurrent edits, DynamoDB's size limit."""

from __future__ import annotations

from typing import Any

import pytest

from store import items, keys
from store.db import Database, s
from store.migration import legacy

WS = "ws-items"
OTHER_WS = "ws-other"

# A v1 item's attributes of every DynamoDB type, as the migration copies them.
V1_EXTRAS: dict[str, Any] = legacy.EVERY_TYPE


def put(database: Database, item_id: str, created: str, workspace: str = WS, **attrs: Any) -> None:
    row = {
        **keys.item(workspace, item_id),
        "title": s(f"title {item_id}"),
        "status": s("open"),
        "createdAt": s(created),
        "updatedAt": s(created),
        "createdBy": s("u1"),
        **attrs,
    }
    database.client.put_item(TableName=database.table, Item=row)


def stamp(i: int) -> str:
    return f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000000Z"


def all_pages(database: Database, **kwargs: Any) -> list[list[str]]:
    pages, start = [], None
    while True:
        page = items.list_items(database, WS, start_key=start, **kwargs)
        pages.append([item.item_id for item in page.items])
        if page.next_key is None:
            return pages
        start = page.next_key


def test_items_come_newest_first_in_pages_and_other_rows_are_skipped(database):
    for i in range(12):
        put(database, f"i{i:02d}", stamp(i))
    # Rows of the same partition that also carry createdAt land in the index too.
    database.client.put_item(
        TableName=database.table,
        Item={**keys.workspace(WS), "name": s("W"), "createdAt": s(stamp(5))},
    )
    database.client.put_item(
        TableName=database.table,
        Item={**keys.invite(WS, "inv"), "email": s("x@example.com"), "createdAt": s(stamp(7))},
    )
    put(database, "elsewhere", stamp(50), workspace=OTHER_WS)

    pages = all_pages(database, per_page=5)

    assert pages == [
        ["i11", "i10", "i09", "i08", "i07"],
        ["i06", "i05", "i04", "i03", "i02"],
        ["i01", "i00"],
    ]


def test_an_empty_workspace_has_one_empty_page(database):
    assert all_pages(database, per_page=5) == [[]]


def test_filters_by_status_and_tag_keep_reading_until_a_page_is_full(database):
    for i in range(30):
        tags = {"tags": {"SS": ["rare"]}} if i % 10 == 0 else {"tags": {"SS": ["common"]}}
        put(database, f"i{i:02d}", stamp(i), status=s("done" if i % 3 == 0 else "open"), **tags)

    done = [i for i in reversed(range(30)) if i % 3 == 0]
    assert sum(all_pages(database, per_page=4, status="done"), []) == [f"i{i:02d}" for i in done]
    assert all_pages(database, per_page=5, tag="rare") == [["i20", "i10", "i00"]]
    assert all_pages(database, per_page=5, tag="rare", status="open") == [["i20", "i10"]]
    assert all_pages(database, per_page=5, tag="missing") == [[]]
    assert all_pages(database, per_page=5, tag="rare", status="done") == [["i00"]]


def test_a_filter_that_matches_little_stops_after_a_bounded_number_of_queries(
    database, monkeypatch
):
    monkeypatch.setattr(items, "FILTERED_QUERY_LIMIT", 3)
    for i in range(40):
        put(database, f"i{i:02d}", stamp(i), **({"tags": {"SS": ["x"]}} if i == 0 else {}))
    calls = []
    database.client.meta.events.register("before-call.dynamodb.Query", lambda **kw: calls.append(1))

    page = items.list_items(database, WS, per_page=5, tag="x", max_queries=4)

    assert page.items == [] and page.searched_partly and page.next_key is not None
    assert len(calls) == 4
    # Following the cursor carries on from where the reading stopped, and finds it.
    found = []
    start = page.next_key
    while start is not None:
        later = items.list_items(database, WS, per_page=5, tag="x", start_key=start)
        found += [item.item_id for item in later.items]
        start = later.next_key
    assert found == ["i00"]


def test_an_edit_keeps_every_attribute_the_form_does_not_know_exactly(database):
    put(database, "v1", stamp(1), notes=s("old notes"), tags={"SS": ["a"]}, **V1_EXTRAS)
    before = database.get(keys.item(WS, "v1"), consistent=True)

    item = items.get_item(database, WS, "v1")
    items.update_item(
        database, item, items.ItemFields(title="New", notes="", tags=(), status="done")
    )

    after = database.get(keys.item(WS, "v1"), consistent=True)
    assert {k: v for k, v in after.items() if k in V1_EXTRAS} == {
        k: v for k, v in before.items() if k in V1_EXTRAS
    }
    assert after["title"] == s("New") and after["status"] == s("done")
    assert "notes" not in after and "tags" not in after  # emptied: removed, an SS can't be empty
    assert after["createdAt"] == before["createdAt"] and after["createdBy"] == before["createdBy"]
    assert after["updatedAt"] != before["updatedAt"]


def test_a_form_field_stored_with_a_foreign_type_is_left_alone(database):
    put(database, "odd", stamp(1), notes={"L": [s("a"), s("b")]})
    item = items.get_item(database, WS, "odd")
    assert item.locked == {"notes"} and "notes" in item.other

    items.update_item(database, item, items.ItemFields(title="T", notes="", tags=("x",)))

    after = database.get(keys.item(WS, "odd"), consistent=True)
    assert after["notes"] == {"L": [s("a"), s("b")]}
    assert after["tags"] == {"SS": ["x"]}


def test_editing_a_deleted_item_does_not_recreate_it(database):
    put(database, "gone", stamp(1))
    item = items.get_item(database, WS, "gone")
    assert items.delete_item(database, WS, "gone") is True
    assert items.delete_item(database, WS, "gone") is False

    with pytest.raises(items.ItemGone):
        items.update_item(database, item, items.ItemFields(title="Back?"))
    with pytest.raises(items.ItemGone):
        items.set_status(database, WS, "gone", "done")
    assert database.get(keys.item(WS, "gone"), consistent=True) is None


def test_an_edit_over_a_colleagues_newer_save_is_refused(database):
    put(database, "shared", stamp(1))
    mine = items.get_item(database, WS, "shared")
    theirs = items.get_item(database, WS, "shared")
    items.update_item(database, theirs, items.ItemFields(title="Theirs"))

    with pytest.raises(items.ItemChanged):
        items.update_item(database, mine, items.ItemFields(title="Mine"))
    assert database.get(keys.item(WS, "shared"), consistent=True)["title"] == s("Theirs")


def test_an_item_without_updated_at_can_be_edited_once(database):
    put(database, "noupdate", stamp(1))
    database.client.update_item(
        TableName=database.table, Key=keys.item(WS, "noupdate"), UpdateExpression="REMOVE updatedAt"
    )
    item = items.get_item(database, WS, "noupdate")
    items.update_item(database, item, items.ItemFields(title="Edited"))
    with pytest.raises(items.ItemChanged):
        items.update_item(database, item, items.ItemFields(title="Again, from the stale read"))


def test_create_writes_only_the_allowed_attributes(database):
    created = items.create_item(
        database, WS, items.ItemFields(title="T", notes="N", tags=("b", "a")), "user-1"
    )
    row = database.get(keys.item(WS, created.item_id), consistent=True)
    assert set(row) == {
        "PK",
        "SK",
        "title",
        "notes",
        "tags",
        "status",
        "createdAt",
        "updatedAt",
        "createdBy",
        "v2ChangedAt",  # people's row: a late v1 write never overwrites it
    }
    assert row["tags"] == {"SS": ["a", "b"]} and row["createdBy"] == s("user-1")


def test_the_size_estimate_follows_dynamodbs_rules():
    assert items.value_size(s("héllo")) == 6
    assert items.value_size({"N": "12345"}) == 4
    assert items.value_size({"B": b"\x00" * 10}) == 10
    assert items.value_size({"BOOL": True}) == items.value_size({"NULL": True}) == 1
    assert items.value_size({"SS": ["ab", "c"]}) == 3
    assert items.value_size({"L": [s("ab")]}) == 3 + 1 + 2
    assert items.value_size({"M": {"k": s("ab")}}) == 3 + 1 + 1 + 2
    assert items.item_size({"title": s("abc")}) == 5 + 3


def test_a_row_that_would_pass_400_kb_is_refused_before_any_write(database):
    put(database, "big", stamp(1), blob={"B": b"x" * 300_000})
    item = items.get_item(database, WS, "big")
    with pytest.raises(items.ItemTooLarge) as caught:
        items.update_item(database, item, items.ItemFields(title="T", notes="n" * 110_000))
    assert caught.value.size > items.MAX_ITEM_BYTES - items.SIZE_MARGIN
    assert "notes" not in database.get(keys.item(WS, "big"), consistent=True)


@pytest.mark.local_only("DynamoDB Local enforces the 400 KB limit the way AWS does")
def test_a_row_just_under_the_size_check_is_accepted_by_dynamodb(database):
    item = items.create_item(database, WS, items.ItemFields(title="T"), "u")
    room = items.room_left(item.raw) - len("notes")
    items.update_item(database, item, items.ItemFields(title="T", notes="n" * room))
    assert len(database.get(keys.item(WS, item.item_id), consistent=True)["notes"]["S"]) == room
