"""The start page takes a person to their last workspace, or explains what to do; the
switcher lists their workspaces from the ByUser index; anyone can create a workspace."""

from __future__ import annotations

from typing import Any

from store import keys
from store.db import s
from tests.support.workspaces import add_member, create_workspace


def open_workspace(who: Any, ws: str) -> Any:
    return who.web.post(f"/w/{ws}/open", form_page="/workspaces")


def test_someone_without_a_workspace_is_told_how_to_get_one_and_can_create_it(database, person):
    newcomer = person("new@example.com", "Nia New")
    home = newcomer.web.get("/")
    html = newcomer.web.text(home)
    assert home.status_code == 200
    assert "not in any workspace yet" in html and "Were you invited?" in html

    response = newcomer.web.post("/workspaces", {"name": "  Nia's   team "}, form_page="/")

    assert response.status_code == 303
    ws = response.headers["Location"].split("/")[2]
    assert database.get(keys.workspace(ws), consistent=True)["name"] == s("Nia's team")
    assert newcomer.web.get("/").headers["Location"] == f"/w/{ws}/items"


def test_a_workspace_needs_a_name(person):
    newcomer = person("new@example.com")
    response = newcomer.web.post("/workspaces", {"name": "   "}, form_page="/workspaces")
    assert response.status_code == 400
    assert "Enter a name for the workspace." in newcomer.web.text(response)


def test_the_start_page_opens_the_workspace_last_switched_to(database, person):
    olivia = person("olivia@example.com")
    first = create_workspace(olivia, "First")
    second = create_workspace(olivia, "Second")
    assert olivia.web.get("/").headers["Location"] == f"/w/{second}/items"

    response = open_workspace(olivia, first)

    assert response.status_code == 303 and response.headers["Location"] == f"/w/{first}/items"
    assert olivia.web.get("/").headers["Location"] == f"/w/{first}/items"


def test_the_start_page_skips_a_workspace_the_person_was_removed_from(database, person):
    olivia = person("olivia@example.com")
    bob = person("bob@example.com")
    shared = create_workspace(olivia, "Shared")
    add_member(database, shared, bob, "member")
    open_workspace(bob, shared)
    assert bob.web.get("/").headers["Location"] == f"/w/{shared}/items"

    database.client.delete_item(TableName=database.table, Key=keys.member(shared, bob.user_id))
    assert bob.web.get("/").status_code == 200  # the "no workspace yet" page

    own = create_workspace(bob, "Bob's")
    database.client.put_item(
        TableName=database.table,
        Item={**keys.user_prefs(bob.user_id), "lastWorkspaceId": s(shared)},
    )
    assert bob.web.get("/").headers["Location"] == f"/w/{own}/items"


def test_the_switcher_lists_only_the_persons_workspaces_with_one_query(app, database, person):
    olivia = person("olivia@example.com")
    bob = person("bob@example.com")
    create_workspace(olivia, "Olivia's own")
    shared = create_workspace(bob, "Bob's shared")
    create_workspace(bob, "Bob's private")
    add_member(database, shared, olivia, "admin")
    olivia.web.get("/workspaces")
    calls: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    client = app.extensions["db"].client
    client.meta.events.register("before-call.dynamodb", record)
    try:
        html = olivia.web.text(olivia.web.get("/workspaces"))
    finally:
        client.meta.events.unregister("before-call.dynamodb", record)

    assert "Olivia&#39;s own" in html and "Bob&#39;s shared" in html
    assert "Bob&#39;s private" not in html
    assert calls.count("Query") == 1 and "Scan" not in calls


def test_opening_someone_elses_workspace_is_404_and_remembers_nothing(database, person):
    olivia = person("olivia@example.com")
    bob = person("bob@example.com")
    theirs = create_workspace(bob, "Private")
    response = olivia.web.post(f"/w/{theirs}/open", csrf=olivia.web.csrf_from("/workspaces"))
    assert response.status_code == 404
    assert database.get(keys.user_prefs(olivia.user_id), consistent=True) is None


def test_workspace_pages_mark_the_current_section_for_screen_readers(person):
    olivia = person("olivia@example.com")
    ws = create_workspace(olivia, "Acme")
    for section, path in (("Items", "items"), ("Members", "members"), ("Settings", "settings")):
        html = olivia.web.text(olivia.web.get(f"/w/{ws}/{path}"))
        assert f'href="/w/{ws}/{path}" aria-current="page">{section}</a>' in html
        assert html.count('aria-current="page"') == 1
