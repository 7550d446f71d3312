"""The "form expired, send again" page only for requests a browser marks as our own; every
other token-less or stale POST gets a plain 403 that repeats nothing and mints no token.
``Origin: null`` counts only together with ``Sec-Fetch-Site: same-origin``."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.support.app import make_app
from tests.support.auth import CSRF_COOKIE, Person, form_csrf_values, signed_in
from tests.support.helpers import WebClient, scan_all

TYPED = "typed-by-someone-7f3a"
OURS = "http://localhost"
FORM = "/workspaces"  # "create a workspace": one a signed-in person can send

SAME_ORIGIN = {
    "fetch-same-origin": {"Sec-Fetch-Site": "same-origin"},
    "origin-ours": {"Origin": OURS},
    "origin-ours-slash": {"Origin": OURS + "/"},
    "both": {"Origin": OURS, "Sec-Fetch-Site": "same-origin"},
    "origin-null-fetch-same-origin": {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
}
NOT_PROVEN = {
    "no-headers": {},
    "origin-null": {"Origin": "null"},
    "fetch-same-site": {"Sec-Fetch-Site": "same-site"},
    "fetch-same-site-origin-null": {"Sec-Fetch-Site": "same-site", "Origin": "null"},
    "fetch-same-site-origin-ours": {"Sec-Fetch-Site": "same-site", "Origin": OURS},
    "fetch-none": {"Sec-Fetch-Site": "none"},
    "fetch-cross-site-origin-null": {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
    "sibling-origin": {"Origin": "http://sibling.localhost"},
    "sibling-origin-same-site": {"Origin": "http://evil.localhost", "Sec-Fetch-Site": "same-site"},
}


def stale_post(web: WebClient, headers: dict[str, str], token: str | None = "stale") -> Any:  # noqa: S107
    data = {"name": TYPED, "notes": TYPED + "-notes"}
    if token is not None:
        data["csrf_token"] = token
    return web.client.post(FORM, data=data, headers=headers)


TOKENS = {"stale token": "stale", "no token": None}


def test_our_own_stale_form_is_offered_again_with_what_was_typed(
    app: Any, alice: Person, database: Any
):
    """Every same-origin combination, with a stale or a missing token (one table, one
    sign-in: each case is a request)."""
    web = signed_in(app, alice)
    before = scan_all(database)
    for (case, headers), (kind, token) in itertools.product(SAME_ORIGIN.items(), TOKENS.items()):
        label = f"{case}, {kind}"
        response = stale_post(web, headers, token)
        page = web.text(response)
        assert response.status_code == 400, label
        assert "This form had expired, so nothing was saved" in page, label
        assert f'value="{TYPED}"' in page, label
        assert "Send the form again" in page, label
        assert form_csrf_values(page, FORM) == [web.cookie(CSRF_COOKIE)], label
    assert scan_all(database) == before


def test_anything_else_gets_a_plain_403_that_repeats_nothing(
    app: Any, alice: Person, database: Any
):
    web = signed_in(app, alice)
    before = scan_all(database)
    for (case, headers), (kind, token) in itertools.product(NOT_PROVEN.items(), TOKENS.items()):
        label = f"{case}, {kind}"
        response = stale_post(web, headers, token)
        page = web.text(response)
        assert response.status_code == 403, label
        assert TYPED not in page, label
        assert "Send the form again" not in page, label
        assert form_csrf_values(page, FORM) == [], label
    assert scan_all(database) == before
    # Still signed in: the refusals changed nothing.
    assert web.get("/workspaces").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "null"}, {"Origin": "null", "Sec-Fetch-Site": "same-site"}],
    ids=["origin-null", "origin-null-same-site"],
)
def test_origin_null_without_same_origin_fetch_metadata_is_refused_even_with_a_good_token(
    app: Any, alice: Person, headers: dict[str, str]
):
    web = signed_in(app, alice)
    response = web.post("/logout", form_page="/workspaces", headers=headers)
    assert response.status_code == 403
    assert "another site" in web.text(response)
    assert web.get("/workspaces").status_code == 200


def test_origin_null_with_same_origin_fetch_metadata_goes_through(app: Any, alice: Person):
    """What Chromium sends from our invite pages (Referrer-Policy: no-referrer)."""
    web = signed_in(app, alice)
    headers = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    assert web.post("/logout", form_page="/workspaces", headers=headers).status_code == 303


def test_behind_public_url_the_configured_origin_is_ours(
    ddb_client: Any, table_name: str, alice: Person
):
    app = make_app(ddb_client, table_name, PUBLIC_URL="https://team.example.com")
    web = signed_in(app, alice)
    mirror = stale_post(web, {"Origin": "https://team.example.com"})
    assert mirror.status_code == 400 and f'value="{TYPED}"' in web.text(mirror)
    host = stale_post(web, {"Origin": OURS})
    assert host.status_code == 403 and TYPED not in web.text(host)
