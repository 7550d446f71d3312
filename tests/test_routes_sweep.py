"""A sweep over every rule in the app's URL map, so a new route is covered without anyone
writing a test for it (RELIABILITY-SECURITY Part D.5).

* S8-S10: every state-changing rule refuses a missing, wrong, foreign or stale CSRF value
  (and a cross-site post) with a 4xx HTML page, and the table is unchanged.
* S11: no GET or HEAD changes the table, as the owner, signed out, or with a bad cookie.
* S5, S34: no page is a 500 or a JSON ``{"msg": ...}``; HTML pages carry the security
  headers, and pages for a signed-in person are never stored.

The world: a v1 data set whose first owner signs in, so the migration makes a real
workspace, items and members; path parameters are filled with those real ids (a fake id
would 404 before any CSRF mistake could show). Unknown parameter names get a default.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.routing import IntegerConverter, Rule
from werkzeug.security import generate_password_hash

from store import keys
from store.migration import legacy
from tests.support.auth import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    assert_html_security_headers,
    set_access_cookie,
)
from tests.support.helpers import WebClient, scan_all
from web import sessions

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
# Every field name a form in the app uses, so a request that skipped the CSRF check would
# really change something.
SAMPLE_FIELDS = {
    "title": "Sweep title",
    "notes": "Sweep notes",
    "tags": "sweep",
    "status": "done",
    "email": "sweep@x.com",
    "role": "member",
    "name": "Sweep name",
    "value": "sweep value",
    "password": "a long enough sweep password",
    "confirm": "yes",
}
# Defaults for path parameters the world has no real value for.
DEFAULT_PARAMS = {"filename": "style.css"}
# Rows a GET may write: the "last workspace" preference (SK PREFS) is remembered when a
# person enters a workspace. It grants nothing and changes no shared data; every other row
# must stay byte-identical.
GET_BOOKKEEPING_SK = {keys.PREFS_SK}


@dataclass
class World:
    app: Any
    db: Any
    owner: WebClient
    admin: WebClient
    owner_name: str
    stale_csrf: str
    params: dict[str, str] = field(default_factory=dict)

    def snapshot(self, *, ignore_bookkeeping: bool = False) -> list[dict[str, Any]]:
        rows = scan_all(self.db)
        if ignore_bookkeeping:
            rows = [row for row in rows if row["SK"]["S"] not in GET_BOOKKEEPING_SK]
        return rows


def _sign_in(app: Any, email: str) -> WebClient:
    web = WebClient(app.test_client())
    response = web.login(email, legacy.DEMO_PASSWORD)
    assert response.status_code == 303, web.text(response)
    return web


def _wait_until_still(db: Any, *, flag_expected: bool, timeout: float = 30.0) -> None:
    """Wait for background work started by the first sign-in (the migration) to finish."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        rows = scan_all(db)
        flagged = any(
            row["PK"]["S"] == keys.MIGRATION_PK and row["SK"]["S"] == keys.MIGRATION_FLAG_SK
            for row in rows
        )
        if rows == previous and (flagged or not flag_expected):
            return
        previous = rows
        time.sleep(0.3)


def _discover_params(world: World, owner_id: str, admin_id: str) -> dict[str, str]:
    rows = scan_all(world.db)
    params = dict(DEFAULT_PARAMS)
    params["user_id"] = admin_id
    workspaces = [
        row["PK"]["S"].removeprefix(keys.WORKSPACE_PREFIX)
        for row in rows
        if row["PK"]["S"].startswith(keys.WORKSPACE_PREFIX)
        and row["SK"]["S"] == keys.MEMBER_PREFIX + owner_id
    ]
    if workspaces:
        ws_id = params["ws_id"] = workspaces[0]
        partition = [row for row in rows if row["PK"]["S"] == keys.workspace_pk(ws_id)]
        for sk_prefix, name in ((keys.ITEM_PREFIX, "item_id"), (keys.INVITE_PREFIX, "invite_id")):
            found = [row["SK"]["S"] for row in partition if row["SK"]["S"].startswith(sk_prefix)]
            if found:
                params[name] = found[0].removeprefix(sk_prefix)
    return params


def _make_invite(world: World, owner_id: str) -> None:
    """A live invite, so the invite pages and the revoke form act on a real one."""
    try:
        from store import invites
    except ImportError:  # the invites module is not there yet
        return
    if "ws_id" not in world.params:
        return
    invite, token, _ = invites.create_invite(
        world.db,
        world.params["ws_id"],
        email="dev@example.com",
        role="member",
        invited_by=owner_id,
        lifetime_seconds=3600,
    )
    world.params["token"] = token
    world.params["invite_id"] = invite.invite_id


@pytest.fixture
def world(app: Any, database: Any) -> World:
    v1_hash = generate_password_hash(legacy.DEMO_PASSWORD, method="pbkdf2:sha256:1000")
    rows, accounts = legacy.build_dataset(3, 2, 3, v1_hash, seed=11)
    legacy.write_rows(database, rows)
    owner_email = next(a.email for a in accounts if a.role == "owner")
    admin_email = next(a.email for a in accounts if a.role == "admin")

    first = _sign_in(app, owner_email)
    stale_csrf = first.cookie(CSRF_COOKIE) or ""
    first.get("/")  # the first signed-in page: the migration starts here
    _wait_until_still(database, flag_expected=True)
    owner = _sign_in(app, owner_email)  # a second sign-in: `first`'s CSRF value is stale
    admin = _sign_in(app, admin_email)
    owner.get("/")
    admin.get("/")
    user_ids = {
        row["email"]["S"]: row["PK"]["S"].removeprefix(keys.USER_PREFIX)
        for row in scan_all(database)
        if row["SK"]["S"] == keys.PROFILE_SK
    }
    world = World(
        app=app,
        db=database,
        owner=owner,
        admin=admin,
        owner_name=next(a.name for a in accounts if a.role == "owner"),
        stale_csrf=stale_csrf,
    )
    world.params = _discover_params(world, user_ids[owner_email], user_ids[admin_email])
    _make_invite(world, user_ids[owner_email])
    _wait_until_still(database, flag_expected=False)
    return world


def _rules(app: Any) -> list[Rule]:
    return sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule)


def _path(rule: Rule, params: dict[str, str]) -> str:
    values: dict[str, Any] = {}
    converters = getattr(rule, "_converters", {})
    for name in rule.arguments:
        if name in params:
            values[name] = params[name]
        elif isinstance(converters.get(name), IntegerConverter):
            values[name] = 1
        else:
            values[name] = f"sweep-{name}"
    built = rule.build(values, append_unknown=False)
    assert built is not None, rule.rule
    return built[1]


def _is_preauth(app: Any, rule: Rule) -> bool:
    return sessions.is_preauth_page(app.view_functions[rule.endpoint])


def _assert_not_json_error(response: Any, label: str) -> None:
    assert response.status_code < 500, label
    if response.mimetype == "application/json":
        assert "msg" not in (response.get_json(silent=True) or {}), label


def test_the_sweep_sees_real_objects(world: World):
    """If the world could not be built, the sweep below would only ever hit 404s."""
    assert {"ws_id", "item_id", "user_id", "token"} <= set(world.params), world.params
    assert any(m in rule.methods for rule in _rules(world.app) for m in UNSAFE)


# --- S8, S9, S10: state-changing routes --------------------------------------------------------


def test_every_state_changing_route_refuses_a_missing_wrong_foreign_or_stale_csrf_value(
    world: World,
):
    app = world.app
    bobs_csrf = world.admin.cookie(CSRF_COOKIE)
    variants: dict[str, dict[str, Any]] = {
        "missing (cookie only)": {"data": dict(SAMPLE_FIELDS)},
        "empty": {"data": {**SAMPLE_FIELDS, "csrf_token": ""}},
        "wrong": {"data": {**SAMPLE_FIELDS, "csrf_token": str(uuid.uuid4())}},
        "another user's": {"data": {**SAMPLE_FIELDS, "csrf_token": bobs_csrf}},
        "stale, from before signing in again": {
            "data": {**SAMPLE_FIELDS, "csrf_token": world.stale_csrf}
        },
        "wrong header": {"data": dict(SAMPLE_FIELDS), "headers": {"X-CSRF-TOKEN": "wrong"}},
    }
    checked = 0
    for rule in _rules(app):
        path = _path(rule, world.params)
        for method in sorted(set(UNSAFE) & rule.methods):
            for variant, request in variants.items():
                label = f"{method} {path} with a {variant} CSRF value"
                before = world.snapshot()
                # As the person's own browser sends it: the form-expired page is only for
                # same-origin requests (test_resend_origin.py covers the others).
                headers = {"Sec-Fetch-Site": "same-origin", **request.get("headers", {})}
                response = world.owner.client.open(
                    path, method=method, data=request["data"], headers=headers
                )
                page = response.get_data(as_text=True)

                assert 400 <= response.status_code < 500, label
                assert response.mimetype == "text/html", label
                assert ACCESS_COOKIE not in _values_set(response), label
                assert world.snapshot() == before, label
                if not _is_preauth(app, rule) and variant != "wrong header":
                    # The form-expired page keeps what was typed (S13).
                    assert 'value="Sweep title"' in page, label
                checked += 1
    assert checked >= 6 * 2


def test_every_state_changing_route_refuses_a_cross_site_post_with_the_right_value(
    world: World,
):
    csrf = world.owner.cookie(CSRF_COOKIE)
    for rule in _rules(world.app):
        path = _path(rule, world.params)
        for method in sorted(set(UNSAFE) & rule.methods):
            for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
                label = f"{method} {path} {headers}"
                before = world.snapshot()
                response = world.owner.client.open(
                    path, method=method, data={**SAMPLE_FIELDS, "csrf_token": csrf}, headers=headers
                )
                assert response.status_code == 403, label
                assert response.mimetype == "text/html", label
                assert world.snapshot() == before, label


def test_every_state_changing_route_changes_nothing_for_a_signed_out_browser(world: World):
    for rule in _rules(world.app):
        path = _path(rule, world.params)
        for method in sorted(set(UNSAFE) & rule.methods):
            for cookie in (None, "garbage"):
                browser = WebClient(world.app.test_client())
                if cookie:
                    set_access_cookie(browser.client, cookie)
                label = f"{method} {path} signed out, cookie={cookie}"
                before = world.snapshot()
                response = browser.client.open(
                    path, method=method, data={**SAMPLE_FIELDS, "csrf_token": "x"}
                )
                _assert_not_json_error(response, label)
                if response.status_code in (302, 303):
                    assert response.headers["Location"].startswith("/login"), label
                else:
                    assert 400 <= response.status_code < 500, label
                assert world.snapshot() == before, label


def _values_set(response: Any) -> list[str]:
    found = []
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if not rest.startswith(";"):
            found.append(name)
    return found


# --- S11, S5, S34: reading routes --------------------------------------------------------------


def _browsers(world: World) -> dict[str, WebClient]:
    garbage = WebClient(world.app.test_client())
    set_access_cookie(garbage.client, "garbage")
    return {
        "owner": world.owner,
        "admin": world.admin,
        "signed out": WebClient(world.app.test_client()),
        "garbage cookie": garbage,
    }


def test_no_get_or_head_changes_anything_and_every_page_is_safe(world: World):
    checked = 0
    for who, browser in _browsers(world).items():
        for rule in _rules(world.app):
            path = _path(rule, world.params)
            methods = ("GET", "HEAD") if "GET" in rule.methods else ("GET",)
            for method in methods:
                label = f"{method} {path} as {who}"
                if who == "garbage cookie":
                    set_access_cookie(browser.client, "garbage")
                before = world.snapshot(ignore_bookkeeping=True)
                response = browser.client.open(path, method=method)
                page = response.get_data(as_text=True)

                assert world.snapshot(ignore_bookkeeping=True) == before, label
                _assert_not_json_error(response, label)
                if not world.app.url_map.bind("localhost").test(path, method="GET"):
                    assert response.status_code == 405, label
                if response.mimetype == "text/html" and method == "GET":
                    assert_html_security_headers(response, production=False)
                    if who in ("owner", "admin") and world.owner_name in page:
                        assert response.headers.get("Cache-Control") == "no-store", label
                    if who in ("signed out", "garbage cookie"):
                        assert 'action="/logout"' not in page, label  # not signed in
                checked += 1
                response.close()
    assert checked > 4 * 10


def test_get_routes_work_in_production_mode_too(ddb_client: Any, table_name: str):
    """HSTS and Secure cookies on every HTML page; nothing breaks with production settings."""
    from tests.support.app import make_app

    app = make_app(
        ddb_client,
        table_name,
        APP_ENV="production",
        JWT_COOKIE_SECURE=True,
        SESSION_COOKIE_SECURE=True,
    )
    client = app.test_client()
    for rule in _rules(app):
        if "GET" not in rule.methods:
            continue
        response = client.get(_path(rule, DEFAULT_PARAMS), base_url="https://localhost")
        _assert_not_json_error(response, rule.rule)
        if response.mimetype == "text/html":
            assert_html_security_headers(response, production=True)
        for header in response.headers.getlist("Set-Cookie"):
            assert "Secure" in header, (rule.rule, header)
        response.close()
