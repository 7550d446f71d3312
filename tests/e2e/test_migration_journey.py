"""The first sign-in of a v1 user in Chromium: "Preparing your workspace", a progress bar that
moves, and then the page that was asked for (PRODUCT.md promise 9, R20), with JavaScript and
without it. The app runs under gunicorn behind the fault proxy, whose slowed copies
(tests.support.faults.COPIES: the migration copies 25 rows per BatchWriteItem) keep the
preparing page on screen long enough to look at."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from devtools.live_server import LiveServer
from store.migration.flag import read_flag
from tests.support.browser import PageFactory
from tests.support.faults import COPIES, FaultProxy

ASKED = "/workspaces?from=first-sign-in"
MIGRATION_TIMEOUT_MS = 60_000
SEEDED_ACCOUNT = re.compile(r"^\s+(\S+@\S+)\s+(.+?)\s{2,}(owner|admin|member)\s*$", re.M)


def v1_server(
    live_server_factory: Callable[..., LiveServer], fault_proxy: FaultProxy, items: int
) -> tuple[LiveServer, str, str]:
    """A server with a v1 data set from ``legacy seed``; a printed account and its password."""
    env = {"DYNAMODB_ENDPOINT": fault_proxy.url, "MIGRATION_LEASE_SECONDS": "3"}
    server = live_server_factory(extra_env=env)
    printed = server.run_flask(
        "legacy", "seed", "--items", str(items), "--settings", "5", "--members", "4"
    ).stdout
    password = re.search(r"password for every account: (.+)", printed)
    accounts = SEEDED_ACCOUNT.findall(printed)
    assert password and accounts, printed
    return server, accounts[0][0], password.group(1).strip()


def sign_in_from(page: Page, asked: str, email: str, password: str) -> None:
    """Ask for a signed-in page while signed out, and sign in on the page it leads to."""
    page.goto(asked)
    expect(page).to_have_url(re.compile(r"/login\?"))
    form = page.get_by_role("form", name="Sign in")
    form.get_by_label("E-mail").fill(email)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()


def expect_preparing(page: Page) -> None:
    expect(page).to_have_url(re.compile(r"/preparing\?next="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Preparing your workspace")
    expect(page.locator("progress#preparing-bar")).to_be_visible()


def expect_arrived(page: Page, asked: str) -> None:
    """The browser ends on the page it asked for; the app's start page may lead on into the
    workspace (``/w/...``), which counts as arriving too."""
    page.wait_for_url(lambda url: "/preparing" not in url, timeout=MIGRATION_TIMEOUT_MS)
    final = urlsplit(page.url)
    where = final.path + (f"?{final.query}" if final.query else "")
    assert where == asked or final.path.startswith("/w/"), f"ended on {page.url}"
    expect(page.get_by_role("heading", level=1)).not_to_have_text("Preparing your workspace")


def assert_flag(server: LiveServer, items: int) -> None:
    flag = read_flag(server.database)
    assert flag is not None and (flag.items, flag.settings, flag.members) == (items, 5, 4)


def test_first_sign_in_shows_a_moving_progress_bar_then_the_page_asked_for(
    live_server_factory: Callable[..., LiveServer],
    fault_proxy: FaultProxy,
    new_page: PageFactory,
) -> None:
    server, email, password = v1_server(live_server_factory, fault_proxy, items=2000)
    # About 20 copies per writer: slow until the bar has been seen to move.
    fault_proxy.delay(COPIES, 0.3)
    page = new_page(base_url=server.url)

    sign_in_from(page, ASKED, email, password)

    expect_preparing(page)
    page.wait_for_function(
        "() => { const bar = document.getElementById('preparing-bar');"
        " return bar !== null && bar.max > 1 && bar.value > 0; }",
        timeout=MIGRATION_TIMEOUT_MS,
    )
    # The total is the app's estimate (DescribeTable's ItemCount), so only its shape is checked.
    expect(page.locator("#preparing-status")).to_have_text(re.compile(r"\d+ of \d+ items copied"))
    fault_proxy.delay(COPIES, 0)
    expect_arrived(page, ASKED)
    assert new_page.page_errors == [] and new_page.dialogs == []
    assert_flag(server, items=2000)


def test_without_javascript_the_meta_refresh_carries_the_browser_to_the_page_asked_for(
    live_server_factory: Callable[..., LiveServer],
    fault_proxy: FaultProxy,
    new_page: PageFactory,
) -> None:
    server, email, password = v1_server(live_server_factory, fault_proxy, items=600)
    # Each writer sends about 6 copies, each slowed: several seconds, more than one refresh.
    fault_proxy.delay(COPIES, 0.5)
    page = new_page(base_url=server.url, java_script_enabled=False)

    sign_in_from(page, ASKED, email, password)

    expect_preparing(page)
    refresh = page.locator('meta[http-equiv="refresh"]')
    expect(refresh).to_have_count(1)
    assert re.fullmatch(r"\d+", refresh.get_attribute("content") or "")
    expect_arrived(page, ASKED)
    assert_flag(server, items=600)
