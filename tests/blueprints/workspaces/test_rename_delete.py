"""Renaming and deleting a workspace through the pages: owners only, the name follows
everywhere, a deletion takes the workspace from everyone at once and its rows in slices."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest

from blueprints.workspaces import background
from store import keys
from store import workspace_lifecycle as lifecycle
from store import workspaces as store_workspaces
from tests.support.app import make_app
from tests.support.auth import register
from tests.support.helpers import rows_with, wait_for
from tests.support.workspaces import Team, add_item


@pytest.fixture
def app(ddb_client: Any, table_name: str) -> Any:
    # Request mode: every step runs inside a request, so the tests see each one.
    return make_app(ddb_client, table_name, MIGRATION_MODE="request")


def switcher(who: Any) -> str:
    return unescape(who.web.text(who.web.get("/workspaces")))


def delete(who: Any, ws: str, typed: str) -> Any:
    return who.web.post(f"/w/{ws}/delete", {"confirm": typed}, form_page=f"/w/{ws}/delete")


def member_names(database: Any, ws: str) -> set[str]:
    return {r["workspaceName"]["S"] for r in rows_with(database, keys.workspace_pk(ws), "MEMBER#")}


def rename(who: Any, ws: str, name: str) -> Any:
    return who.web.post(f"/w/{ws}/rename", {"name": name}, form_page=f"/w/{ws}/rename")


def test_the_owner_renames_and_every_page_and_switcher_follows(database, team: Team):
    ws = team.workspace_id
    settings = team.owner.web.text(team.owner.web.get(f"/w/{ws}/settings"))
    assert "Rename it" in settings and "Danger zone" in settings

    response = rename(team.owner, ws, "Acme Rockets")

    assert response.status_code == 303
    items = unescape(team.member.web.text(team.member.web.get(f"/w/{ws}/items")))
    assert "Acme Rockets" in items
    for who in (team.owner, team.admin, team.member):
        assert "Acme Rockets" in switcher(who)
    assert not store_workspaces.get_workspace(database, ws).names_behind


def test_admins_and_members_can_neither_rename_nor_delete(team: Team):
    ws = team.workspace_id
    assert "Danger zone" not in team.admin.web.text(team.admin.web.get(f"/w/{ws}/settings"))
    for who in (team.admin, team.member):
        assert who.web.get(f"/w/{ws}/rename").status_code == 403
        assert who.web.get(f"/w/{ws}/delete").status_code == 403
        csrf = who.web.csrf_from("/workspaces")
        assert who.web.post(f"/w/{ws}/rename", {"name": "X"}, csrf=csrf).status_code == 403
        assert who.web.post(f"/w/{ws}/delete", {"confirm": "Acme"}, csrf=csrf).status_code == 403


def test_copies_left_behind_by_the_request_are_finished_by_later_requests(
    database, team: Team, monkeypatch
):
    monkeypatch.setattr(background, "NAMES_PER_REQUEST", 1)
    ws = team.workspace_id
    rename(team.owner, ws, "Renamed")
    assert store_workspaces.get_workspace(database, ws).names_behind  # 1 of 3 copied
    for _ in range(3):
        team.member.web.get(f"/w/{ws}/items")
    assert not store_workspaces.get_workspace(database, ws).names_behind
    assert {
        r["workspaceName"]["S"] for r in rows_with(database, keys.workspace_pk(ws), "MEMBER#")
    } == {"Renamed"}


def test_in_thread_mode_a_background_thread_finishes_the_copies(
    ddb_client, table_name, database, monkeypatch
):
    monkeypatch.setattr(background, "NAMES_PER_REQUEST", 1)
    app = make_app(ddb_client, table_name, MIGRATION_MODE="thread")
    owner = register(app, "r@example.com", "Rename Owner")
    created = owner.web.post("/workspaces", {"name": "Before"}, form_page="/workspaces")
    ws = created.headers["Location"].split("/")[2]
    for number in range(3):
        row = store_workspaces.member_row(
            ws, f"m{number}", role="member", email="m@x.com", workspace_name="Before", joined_at="t"
        )
        database.client.put_item(TableName=database.table, Item=row)

    assert rename(owner, ws, "After").status_code == 303

    assert background.wait_idle(30)
    assert member_names(database, ws) == {"After"}
    assert not store_workspaces.get_workspace(database, ws).names_behind


def test_a_wrong_typed_name_deletes_nothing(database, team: Team):
    ws = team.workspace_id
    page = team.owner.web.text(team.owner.web.get(f"/w/{ws}/delete"))
    assert "Type the workspace&#39;s name, Acme, to confirm" in page or "to confirm" in page
    response = team.owner.web.post(
        f"/w/{ws}/delete", {"confirm": "acme"}, form_page=f"/w/{ws}/delete"
    )
    assert response.status_code == 400
    assert "exactly as shown" in unescape(team.owner.web.text(response))
    assert store_workspaces.get_workspace(database, ws).lifecycle == ""


def test_deleting_takes_it_from_everyone_at_once_and_shows_the_owner_progress(
    app, database, team: Team, monkeypatch
):
    ws = team.workspace_id
    for number in range(12):
        add_item(database, ws, f"i{number}")
    monkeypatch.setattr(lifecycle, "PAGE", 5)
    app.config["MIGRATION_SLICE_SECONDS"] = 0  # one page of rows per request

    response = delete(team.owner, ws, "Acme")

    assert response.status_code == 303
    progress_path = response.headers["Location"]
    assert progress_path == f"/workspaces/deleted/{ws}"
    for who in (team.owner, team.admin, team.member):
        assert "Acme" not in switcher(who)
    gone = team.member.web.get(f"/w/{ws}/items")
    assert gone.status_code == 410
    assert "This workspace was deleted" in team.member.web.text(gone)
    assert team.admin.web.get(progress_path).status_code == 404  # the owner's page only

    counts = []
    page = ""
    for _ in range(10):
        page = unescape(team.owner.web.text(team.owner.web.get(progress_path)))
        counts.append(lifecycle.deletion(database, ws).deleted_rows)
        if "is deleted" in page:
            break
    assert "Acme is deleted" in page and "15 records were removed" in page
    assert counts == sorted(counts) and len(counts) > 1
    (tombstone,) = rows_with(database, keys.workspace_pk(ws))
    assert tombstone["SK"]["S"] == "WORKSPACE"


def test_in_thread_mode_a_background_thread_finishes_the_deletion(ddb_client, table_name, database):
    app = make_app(ddb_client, table_name, MIGRATION_MODE="thread")
    owner = register(app, "t@example.com", "Thread Owner")
    created = owner.web.post("/workspaces", {"name": "Threads"}, form_page="/workspaces")
    ws = created.headers["Location"].split("/")[2]
    for number in range(8):
        add_item(database, ws, f"i{number}")
    response = owner.web.post(
        f"/w/{ws}/delete", {"confirm": "Threads"}, form_page=f"/w/{ws}/delete"
    )
    assert response.status_code == 303
    assert background.wait_idle(30)
    assert wait_for(lambda: lifecycle.deletion(database, ws).done)
