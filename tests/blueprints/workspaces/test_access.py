"""Who may do what in a workspace, checked through the pages with CSRF on (S21-S24).

The role matrix: owner, admin, member and non-member against every action. Allowed: the
action happens. A member whose role is too low: 403 and the table unchanged. Anyone who is
not a member: 404 (the workspace's existence is not confirmed) and the table unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from store import invites as store_invites
from store import keys
from store.db import Database
from tests.support.auth import Person
from tests.support.helpers import scan_all
from tests.support.workspaces import Team, add_item, add_member, create_workspace
from web import sessions

ITEM = "item-1"
TARGET = "target-user"  # a plain member the actions act on
CO_OWNER = "co-owner"  # a second owner, so owner-touching actions are not "last owner"


@dataclass
class Setup:
    team: Team
    database: Database
    invite_id: str


@pytest.fixture
def setup(team: Team, database: Database) -> Setup:
    ws = team.workspace_id
    add_item(database, ws, ITEM)
    for user_id, role in ((TARGET, "member"), (CO_OWNER, "owner")):
        add_member(database, ws, Person(f"{user_id}@example.com", user_id, user_id, None), role)
    made, _, _ = store_invites.create_invite(
        database,
        ws,
        email="pending@example.com",
        role="member",
        invited_by=team.owner.user_id,
        lifetime_seconds=3600,
    )
    return Setup(team, database, made.invite_id)


def role_of(setup: Setup, user_id: str) -> str | None:
    row = setup.database.get(keys.member(setup.team.workspace_id, user_id), consistent=True)
    return row["role"]["S"] if row else None


def item_row(setup: Setup) -> dict[str, Any] | None:
    return setup.database.get(keys.item(setup.team.workspace_id, ITEM), consistent=True)


@dataclass(frozen=True)
class Action:
    allowed: frozenset[str]
    run: Callable[[Setup, Person], Any]
    # For allowed roles: did it happen? (None: a page view, nothing to change.)
    happened: Callable[[Setup, Person], bool] | None = None


def _post(path: str, data: dict[str, str] | None = None) -> Callable[[Setup, Person], Any]:
    def run(setup: Setup, who: Person) -> Any:
        ws = setup.team.workspace_id
        url = path.format(
            ws=ws, item=ITEM, target=TARGET, owner=CO_OWNER, me=who.user_id, invite=setup.invite_id
        )
        # The CSRF value of the person's own session, from a page they can open.
        return who.web.post(url, data, csrf=who.web.csrf_from("/workspaces"))

    return run


def _get(path: str) -> Callable[[Setup, Person], Any]:
    def run(setup: Setup, who: Person) -> Any:
        url = path.format(
            ws=setup.team.workspace_id, item=ITEM, invite=setup.invite_id, target=TARGET
        )
        return who.web.get(url)

    return run


EVERYONE = frozenset({"owner", "admin", "member"})
MANAGERS = frozenset({"owner", "admin"})
OWNERS = frozenset({"owner"})

ACTIONS: dict[str, Action] = {
    "view items": Action(EVERYONE, _get("/w/{ws}/items")),
    "view an item": Action(EVERYONE, _get("/w/{ws}/items/{item}")),
    "open the new-item form": Action(EVERYONE, _get("/w/{ws}/items/new")),
    "create an item": Action(
        EVERYONE,
        _post("/w/{ws}/items/new", {"title": "Made by matrix", "status": "open"}),
        lambda s, who: "Made by matrix" in repr(scan_all(s.database)),
    ),
    "edit an item": Action(
        EVERYONE,
        lambda s, who: _post(
            "/w/{ws}/items/{item}/edit",
            {
                "title": f"edited by {who.user_id}",
                "status": "open",
                "seen": item_row(s)["updatedAt"]["S"],
            },
        )(s, who),
        lambda s, who: item_row(s)["title"]["S"] == f"edited by {who.user_id}",
    ),
    "mark an item done": Action(
        EVERYONE,
        _post("/w/{ws}/items/{item}/status", {"status": "done"}),
        lambda s, who: item_row(s)["status"]["S"] == "done",
    ),
    "delete an item": Action(
        EVERYONE,
        _post("/w/{ws}/items/{item}/delete"),
        lambda s, who: item_row(s) is None,
    ),
    "view settings": Action(MANAGERS, _get("/w/{ws}/settings")),
    "change settings": Action(
        MANAGERS,
        _post(
            "/w/{ws}/settings",
            {
                "teamName": "Matrix",
                "timezone": "UTC",
                "defaultStatus": "open",
                "itemsPerPage": "25",
            },
        ),
        lambda s, who: s.database.get(keys.setting(s.team.workspace_id, "teamName")) is not None,
    ),
    "view members": Action(EVERYONE, _get("/w/{ws}/members")),
    "open the invite form": Action(MANAGERS, _get("/w/{ws}/invites/new")),
    "invite a member": Action(
        MANAGERS,
        _post("/w/{ws}/invites/new", {"email": "fresh@example.com", "role": "member"}),
        lambda s, who: "fresh@example.com" in repr(scan_all(s.database)),
    ),
    "invite an admin": Action(
        OWNERS,
        _post("/w/{ws}/invites/new", {"email": "boss@example.com", "role": "admin"}),
        lambda s, who: "boss@example.com" in repr(scan_all(s.database)),
    ),
    "withdraw an invite": Action(
        MANAGERS,
        _post("/w/{ws}/invites/{invite}/revoke"),
        lambda s, who: store_invites.pending_invites(s.database, s.team.workspace_id) == [],
    ),
    "make a member an admin": Action(
        MANAGERS,
        _post("/w/{ws}/members/{target}/role", {"role": "admin"}),
        lambda s, who: role_of(s, TARGET) == "admin",
    ),
    "make a member an owner": Action(
        OWNERS,
        _post("/w/{ws}/members/{target}/role", {"role": "owner"}),
        lambda s, who: role_of(s, TARGET) == "owner",
    ),
    "demote an owner": Action(
        OWNERS,
        _post("/w/{ws}/members/{owner}/role", {"role": "member"}),
        lambda s, who: role_of(s, CO_OWNER) == "member",
    ),
    "remove a member": Action(
        MANAGERS,
        _post("/w/{ws}/members/{target}/remove"),
        lambda s, who: role_of(s, TARGET) is None,
    ),
    "remove an owner": Action(
        OWNERS,
        _post("/w/{ws}/members/{owner}/remove"),
        lambda s, who: role_of(s, CO_OWNER) is None,
    ),
    "leave": Action(
        EVERYONE,
        _post("/w/{ws}/members/{me}/remove"),
        lambda s, who: role_of(s, who.user_id) is None,
    ),
}


@pytest.mark.parametrize("role", ["owner", "admin", "member", "non-member"])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_the_role_matrix_is_enforced_on_the_server(setup, action, role):
    spec = ACTIONS[action]
    who = setup.team.by_role(role)
    before = scan_all(setup.database)

    response = spec.run(setup, who)

    if role in spec.allowed:
        assert response.status_code in (200, 303), (action, role, response.status_code)
        if spec.happened is not None:
            assert spec.happened(setup, who), (action, role)
        return
    expected = 404 if role == "non-member" else 403
    assert response.status_code == expected, (action, role, response.status_code)
    assert scan_all(setup.database) == before


# --- the sweep over every /w/ route (IDOR) ----------------------------------------------------


def workspace_rules(app: Any) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/w/"):
            continue
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            found.append((rule.rule, method))
    return found


def fill(rule: str, values: dict[str, str]) -> str:
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule)
    assert "<" not in path, rule
    return path


def test_every_workspace_route_is_covered_by_the_sweep(app):
    rules = {rule for rule, _ in workspace_rules(app)}
    assert len(rules) >= 12
    for rule in rules:
        assert set(re.findall(r"<(?:\w+:)?(\w+)>", rule)) <= {
            "ws_id",
            "item_id",
            "user_id",
            "invite_id",
        }, f"{rule}: add its parameter to the sweep"


def test_a_stranger_gets_404_on_every_workspace_route_and_changes_nothing(app, setup):
    team = setup.team
    values = {
        "ws_id": team.workspace_id,
        "item_id": ITEM,
        "user_id": team.member.user_id,
        "invite_id": setup.invite_id,
    }
    csrf = team.stranger.web.csrf_from("/workspaces")
    before = scan_all(setup.database)

    for rule, method in workspace_rules(app):
        path = fill(rule, values)
        if method == "GET":
            response = team.stranger.web.get(path)
        else:
            response = team.stranger.web.post(path, {"title": "x", "role": "owner"}, csrf=csrf)
        assert response.status_code == 404, (method, path, response.status_code)

    assert scan_all(setup.database) == before


def test_a_member_of_another_workspace_cannot_reach_this_ones_rows_through_their_own(app, setup):
    """Key confusion: the other workspace's ids put into one's own workspace's URLs."""
    team = setup.team
    own = create_workspace(team.stranger, "Stranger's own")
    add_item(setup.database, own, "own-item")
    csrf = team.stranger.web.csrf_from("/workspaces")
    before = scan_all(setup.database)

    for ws_id in (team.workspace_id, own):
        values = {
            "ws_id": ws_id,
            "item_id": ITEM,
            "user_id": team.member.user_id,
            "invite_id": setup.invite_id,
        }
        for rule, method in workspace_rules(app):
            if ws_id == own and not re.search(r"<(item_id|user_id|invite_id)>", rule):
                continue  # their own workspace's pages are theirs to use
            path = fill(rule, values)
            if method == "GET":
                response = team.stranger.web.get(path)
            else:
                data = {"title": "x", "status": "done", "role": "owner", "seen": ""}
                response = team.stranger.web.post(path, data, csrf=csrf)
            assert response.status_code == 404, (method, path, response.status_code)

    assert scan_all(setup.database) == before


def test_item_ids_are_random(setup):
    web = setup.team.member.web
    ws = setup.team.workspace_id
    for title in ("one", "two"):
        web.post(f"/w/{ws}/items/new", {"title": title, "status": "open"})
    ids = [
        row["SK"]["S"]
        for row in scan_all(setup.database)
        if row["SK"]["S"].startswith("ITEM#") and row["SK"]["S"] != f"ITEM#{ITEM}"
    ]
    assert len(ids) == 2 and all(re.fullmatch(r"ITEM#[0-9a-f]{32}", i) for i in ids)


# --- rights follow the table on the very next request (S21) -----------------------------------


def test_a_demoted_admin_is_refused_settings_on_the_next_request(setup):
    team = setup.team
    settings = f"/w/{team.workspace_id}/settings"
    data = {
        "teamName": "Mine now",
        "timezone": "UTC",
        "defaultStatus": "open",
        "itemsPerPage": "25",
    }
    assert team.admin.web.get(settings).status_code == 200
    csrf = team.admin.web.csrf()

    team.owner.web.post(
        f"/w/{team.workspace_id}/members/{team.admin.user_id}/role",
        {"role": "member"},
        form_page=f"/w/{team.workspace_id}/members",
    )

    response = team.admin.web.post(settings, data, csrf=csrf)
    assert response.status_code == 403
    assert setup.database.get(keys.setting(team.workspace_id, "teamName")) is None


def test_a_removed_member_gets_404_on_the_next_request(setup):
    team = setup.team
    items = f"/w/{team.workspace_id}/items"
    assert team.member.web.get(items).status_code == 200

    team.owner.web.post(
        f"/w/{team.workspace_id}/members/{team.member.user_id}/remove",
        form_page=f"/w/{team.workspace_id}/members/{team.member.user_id}/remove",
    )

    assert team.member.web.get(items).status_code == 404


def test_an_unknown_workspace_is_404_and_a_signed_out_visitor_is_sent_to_sign_in(app, setup):
    team = setup.team
    assert team.owner.web.get("/w/does-not-exist/items").status_code == 404
    visitor = app.test_client()
    response = visitor.get(f"/w/{team.workspace_id}/items")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_signed_in_workspace_pages_are_not_cached(setup):
    response = setup.team.member.web.get(f"/w/{setup.team.workspace_id}/items")
    assert response.headers["Cache-Control"] == "no-store"


def test_every_workspace_view_carries_the_sign_in_marker(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/w/") or rule.rule == "/workspaces":
            view = app.view_functions[rule.endpoint]
            assert sessions.is_signed_in_page(view), rule.rule
