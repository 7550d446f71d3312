"""Screenshots of the account pages, taken in Debian's Chromium (the one tests use).

Run from the repository root (needs Java for DynamoDB Local and /usr/bin/chromium)::

    .venv/bin/python -m devtools.screenshots

It starts DynamoDB Local and the app under gunicorn on a fresh table, registers a person
(whose mail lands in the development outbox), and saves PNGs into docs/screenshots/: the
confirmation notice, the development mail page and one message, the account page, the
forgotten-password page and the new-password form.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from devtools import embedded_db
from devtools.browser import CHROMIUM, CHROMIUM_ARGS
from devtools.live_server import LiveServer

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a demo password


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    database = embedded_db.start_dynamodb_local(None)
    try:
        with LiveServer(database.endpoint, workers=1) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_context(base_url=server.url, viewport=DESKTOP).new_page()

            def shot(name: str) -> None:
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                sys.stdout.write(f"saved docs/screenshots/{name}.png\n")

            page.goto("/register")
            page.get_by_label("E-mail").fill(EMAIL)
            page.get_by_label("Your name").fill("Ada Lovelace")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Create account").click()
            page.goto("/confirm")
            shot("confirm-notice")
            page.goto("/dev/mail")
            shot("dev-mail")
            page.locator("tr", has_text="Confirm your").first.get_by_role("link").click()
            shot("dev-mail-message")
            page.locator('.mail-body a[href*="/confirm/"]').click()
            page.get_by_role("button", name=re.compile("^Confirm ")).click()
            expect(page.get_by_role("status")).to_contain_text("confirmed")
            page.goto("/account")
            shot("account")

            visitor = browser.new_context(base_url=server.url, viewport=DESKTOP).new_page()
            page = visitor
            page.goto("/password/forgot")
            shot("forgot-password")
            page.get_by_label("E-mail").fill(EMAIL)
            page.get_by_role("button", name="Send me a reset link").click()
            page.goto("/dev/mail")
            page.locator("tr", has_text="Reset your").first.get_by_role("link").click()
            page.locator('.mail-body a[href*="/password/reset/"]').click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
            shot("reset-password")
            browser.close()
    finally:
        database.stop()


if __name__ == "__main__":
    main()
