"""What one person does under ``make load``: sign in (the first ones meet the migration
under way and wait on the preparing page), then read the items page, add items and mark
them done or open again. Accounts come from ``LOAD_ACCOUNTS`` (``legacy seed``'s members,
comma-separated); the run.py beside this file sets it."""

from __future__ import annotations

import itertools
import os
import random
import re
import time
from html import unescape

from locust import HttpUser, between, task

PASSWORD = "correct horse battery staple"  # noqa: S105 - legacy seed's demo password
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')
STATUS_FORM = re.compile(r'action="(/w/[^/"]+/items/([^/"]+)/status)"')
_accounts = itertools.cycle(os.environ.get("LOAD_ACCOUNTS", "").split(","))


def _csrf(page: str) -> str:
    match = CSRF_FIELD.search(page)
    return unescape(match.group(1)) if match else ""


# Seconds a person waits between actions ("low,high"); run.py's --wait sets it.
_WAIT = [float(x) for x in os.environ.get("LOAD_WAIT", "0.5,2").split(",")]


class Member(HttpUser):
    wait_time = between(_WAIT[0], _WAIT[-1])

    def on_start(self) -> None:
        self.email = next(_accounts)
        self.workspace = ""
        self.items_page = ""
        page = self.client.get("/login", name="GET /login").text
        signed_in = self.client.post(
            "/login",
            {"email": self.email, "password": PASSWORD, "csrf_token": _csrf(page)},
            name="POST /login",
            allow_redirects=False,
        )
        self._land(signed_in.headers.get("Location", "/"))

    def _land(self, target: str) -> None:
        """Follow the sign-in to the items page, through the preparing page while the
        migration runs (polling its progress the way the page's script does)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            response = self.client.get(target, name=_name(target), allow_redirects=False)
            if response.status_code in (302, 303):
                target = response.headers["Location"].replace(self.host, "")
                continue
            if "/preparing" in target:
                time.sleep(1)
                self.client.get("/preparing/progress?next=/", name="GET /preparing/progress")
                continue
            break
        match = re.search(r"/w/([^/]+)/items", target)
        self.workspace = match.group(1) if match else ""

    @task(6)
    def items(self) -> None:
        if self.workspace:
            self.items_page = self.client.get(
                f"/w/{self.workspace}/items", name="GET /w/[ws]/items"
            ).text

    @task(1)
    def add_item(self) -> None:
        if not self.workspace:
            return
        form = self.client.get(f"/w/{self.workspace}/items/new", name="GET /w/[ws]/items/new")
        self.client.post(
            f"/w/{self.workspace}/items/new",
            {
                "title": f"load test {random.randrange(10**6)}",  # noqa: S311 - not security
                "notes": "added under load",
                "tags": "ops",
                "status": "open",
                "csrf_token": _csrf(form.text),
            },
            name="POST /w/[ws]/items/new",
        )

    @task(2)
    def toggle_item(self) -> None:
        forms = STATUS_FORM.findall(self.items_page)
        if not forms:
            return
        action, _ = random.choice(forms)  # noqa: S311 - not security
        self.client.post(
            unescape(action),
            {
                "status": random.choice(["done", "open"]),  # noqa: S311
                "csrf_token": _csrf(self.items_page),
            },
            name="POST /w/[ws]/items/[id]/status",
        )


def _name(path: str) -> str:
    """Group requests by route, not by id."""
    path = path.split("?")[0]
    path = re.sub(r"/w/[^/]+", "/w/[ws]", path)
    path = re.sub(r"/items/[^/]+/", "/items/[id]/", path)
    return f"GET {path}"
