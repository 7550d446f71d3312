"""Screenshots of the main workspace pages, taken in Debian's Chromium.

Run from the repository root (needs Java for DynamoDB Local and /usr/bin/chromium)::

    .venv/bin/python docs/screenshots/take.py

It starts DynamoDB Local and the app under gunicorn on a fresh table, seeds a v1 data set,
signs in as its owner (the migration runs), invites a colleague, and saves PNGs of the main
pages next to this file, at a desktop width and, for the items page, a phone width.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from devtools import embedded_db  # noqa: E402
from devtools.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from devtools.live_server import LiveServer  # noqa: E402

SEEDED = re.compile(r"^\s+(\S+@\S+)\s+(.+?)\s{2,}(owner|admin|member)\s*$", re.M)
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    database = embedded_db.start_dynamodb_local(None)
    try:
        with LiveServer(database.endpoint, workers=2) as server:
            printed = server.run_flask(
                "legacy",
                "seed",
                "--items",
                "40",
                "--settings",
                "6",
                "--members",
                "3",
                "--seed",
                "4",
            ).stdout
            password = re.search(r"password for every account: (.+)", printed).group(1).strip()
            owner_email = next(a[0] for a in SEEDED.findall(printed) if a[2] == "owner")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
                )
                context = browser.new_context(base_url=server.url, viewport=DESKTOP)
                page = context.new_page()

                def shot(name: str, full_page: bool = True) -> None:
                    page.screenshot(path=str(HERE / f"{name}.png"), full_page=full_page)
                    sys.stdout.write(f"saved docs/screenshots/{name}.png\n")

                page.goto("/login")
                page.get_by_label("E-mail").fill(owner_email)
                page.get_by_label("Password").fill(password)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(re.compile(r"/w/[^/]+/items"), timeout=60_000)
                items_url = page.url
                page.goto(items_url)  # without the one-off welcome message
                shot("items", full_page=False)
                page.goto(items_url + "?status=open&tag=finance")
                shot("items-filtered", full_page=False)
                page.goto(items_url)
                page.locator(".item__title").nth(7).click()
                shot("item")
                page.get_by_role("link", name="Edit").click()
                shot("item-edit")
                page.get_by_role("navigation", name="Main").get_by_role(
                    "link", name="Settings"
                ).click()
                shot("settings")
                page.get_by_role("navigation", name="Main").get_by_role(
                    "link", name="Members"
                ).click()
                page.get_by_role("link", name="Invite someone").click()
                page.get_by_label("Their e-mail address").fill("grace@example.com")
                page.get_by_role("button", name="Create invite").click()
                expect(page.get_by_role("heading", level=1)).to_have_text("Invite created")
                link = page.get_by_label(re.compile("Invite link for")).input_value()
                shot("invite-created")
                page.get_by_role("link", name="Back to members").click()
                shot("members")
                page.goto("/workspaces")
                shot("workspaces")

                visitor = browser.new_context(base_url=server.url, viewport=DESKTOP).new_page()
                visitor.goto(link)
                visitor.screenshot(path=str(HERE / "invite-link.png"), full_page=True)
                sys.stdout.write("saved docs/screenshots/invite-link.png\n")

                phone = browser.new_context(base_url=server.url, viewport=PHONE)
                phone.add_cookies(context.cookies())
                mobile = phone.new_page()
                mobile.goto(items_url)
                mobile.screenshot(path=str(HERE / "items-phone.png"), full_page=False)
                sys.stdout.write("saved docs/screenshots/items-phone.png\n")
                browser.close()
    finally:
        database.stop()


if __name__ == "__main__":
    main()
