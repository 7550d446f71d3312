"""Fixtures for end-to-end tests: the real app under gunicorn, and real Chromium.

Every test in this folder needs DynamoDB Local and a server process, so each is marked
``local_only``: it runs with ``--backend=local`` and is skipped with ``--backend=moto``.

- ``live_server``, ``live_server_factory``, ``fault_proxy``: see tests/live_fixtures.py.
- ``browser``: one headless Chromium for the session.
- ``new_page(base_url=None, **context_options)``: a page in a NEW browser context, i.e. a
  separate person with their own cookies; ``base_url`` defaults to the server this test started
  last. ``new_page.dialogs`` and ``new_page.page_errors`` list what the pages raised; a test
  that lets a dialog fire fails unless marked ``allow_dialogs``.
- ``page``: one ``new_page()`` on ``live_server``.

On a failure each open page is saved to ``test-results/<test name>.png`` (tests/live_fixtures.py
adds the tail of each server's log).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from devtools.browser import CHROMIUM, CHROMIUM_ARGS
from devtools.live_server import LiveServer
from tests.support.browser import PageFactory
from tests.support.live_fixtures import SERVERS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RESULTS = ROOT / "test-results"

_PAGES = pytest.StashKey["PageFactory"]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_dialogs: the test expects a page dialog")


@pytest.hookimpl(tryfirst=True)  # before tests/conftest.py turns local_only into a skip
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.local_only("needs DynamoDB Local and a real server"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and report.when == "call":
        factory = item.stash.get(_PAGES, None)
        if factory is not None:
            for path in factory.screenshot_all(RESULTS, _safe_name(item.name)):
                report.sections.append(("screenshot", str(path)))
    return report


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "test"


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium")
    instance = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield instance
    instance.close()


@pytest.fixture
def new_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[PageFactory]:
    def latest_server_url() -> str | None:
        servers = request.node.stash.get(SERVERS, [])
        started = [server for server in servers if server.port is not None]
        return started[-1].url if started else None

    factory = PageFactory(browser, latest_server_url)
    request.node.stash[_PAGES] = factory
    yield factory
    factory.close()
    if factory.dialogs and request.node.get_closest_marker("allow_dialogs") is None:
        pytest.fail(f"page dialogs fired: {factory.dialogs}", pytrace=False)


@pytest.fixture
def page(live_server: LiveServer, new_page: PageFactory) -> Page:
    return new_page(base_url=live_server.url)
