"""Late v1 writes reach v2 by themselves while the app runs, and owners see the conflicts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from blueprints.migration import latesync
from store import items, keys
from store.db import Database, s
from store.migration.conflicts import read_conflicts
from store.migration.flag import read_flag
from store.migration.rows import same_data
from tests.support.app import make_app
from tests.support.helpers import WebClient, wait_for
from tests.support.late_writes import v1_edit, v1_item_ids

pytestmark = pytest.mark.stream_table


@pytest.fixture(params=["thread", "request"])
def app(request: pytest.FixtureRequest, ddb_client: Any, table_name: str) -> Iterator[Any]:
    built = make_app(
        ddb_client, table_name, MIGRATION_SYNC_SECONDS=0.2, MIGRATION_MODE=request.param
    )
    yield built
    latesync.stop(built)


def signed_in_owner(web: WebClient, accounts: list[Any]) -> None:
    owner = next(a for a in accounts if a.role == "owner")
    web.login(owner.email)
    web.get("/")
    wait_for(lambda: web.get("/preparing/progress?next=/").json["done"])


def test_late_v1_writes_arrive_by_themselves_and_owners_see_conflicts(
    app: Any, web: WebClient, database: Database, seed: Any
):
    signed_in_owner(web, seed(items=6, settings=1, members=2))
    workspace_id = read_flag(database).workspace_id
    late, conflicted = v1_item_ids(database)[:2]
    found = items.get_item(database, workspace_id, conflicted)
    items.update_item(database, found, items.ItemFields(title="people's title"))
    v1_edit(database, late, "late v1 title")
    v1_edit(database, conflicted, "v1's late title")

    def arrived() -> bool:
        web.get(f"/w/{workspace_id}/items")  # requests keep the app going (request mode)
        copy = database.get(keys.item(workspace_id, late), consistent=True)
        v1 = database.get(keys.v1_item(late), consistent=True)
        return same_data(v1, copy) and read_conflicts(database)[1] == 1

    wait_for(arrived, timeout=60, step=0.3)

    page = web.text(web.get("/migration"))
    assert "Late version 1 changes not applied" in page
    assert f"ITEM#{conflicted} / ITEM" in page and "changed in v2" in page
    kept = database.get(keys.item(workspace_id, conflicted), consistent=True)
    assert kept["title"] == s("people's title")
