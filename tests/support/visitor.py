"""A browser without JavaScript, on the standard library, for apps served by other processes
(gunicorn under devtools.live_server): its own cookies, redirects returned rather than
followed, forms' CSRF fields read like a browser would, and the migration's preparing page
followed the way its meta refresh would."""

from __future__ import annotations

import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from html import unescape
from typing import Any

from tests.support.helpers import CSRF_FIELD, PASSWORD

PREPARING = "Preparing your workspace"


@dataclass
class Reply:
    status: int
    headers: Message
    text: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def json(self) -> Any:
        return json.loads(self.text)


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the test sees every redirect and decides what to follow


class Visitor:
    """One person: their own cookies; redirects are returned, not followed."""

    def __init__(self, base_url: str, jar: http.cookiejar.CookieJar | None = None) -> None:
        self.base_url = base_url
        self.jar = jar if jar is not None else http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _KeepRedirects()
        )

    def get(self, path: str) -> Reply:
        return self._open(urllib.request.Request(self.base_url + path))  # noqa: S310 - http

    def post(self, path: str, fields: dict[str, str]) -> Reply:
        data = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(  # noqa: S310 - our own http:// server
            self.base_url + path, data=data, method="POST"
        )
        return self._open(request)

    def _open(self, request: urllib.request.Request) -> Reply:
        try:
            with self.opener.open(request, timeout=60) as response:
                return Reply(response.status, response.headers, response.read().decode())
        except urllib.error.HTTPError as exc:
            with exc:
                return Reply(exc.code, exc.headers, exc.read().decode(errors="replace"))

    def _form_token(self, path: str) -> str:
        page = self.get(path)
        match = CSRF_FIELD.search(page.text)
        assert match, f"no CSRF field on {path} ({page.status})"
        return unescape(match.group(1))

    def login(self, email: str, password: str = PASSWORD) -> None:
        token = self._form_token("/login")
        reply = self.post("/login", {"email": email, "password": password, "csrf_token": token})
        assert reply.status == 303, f"sign-in of {email} failed: {reply.status} {reply.text[:300]}"

    def register(self, email: str, name: str, password: str = PASSWORD) -> None:
        token = self._form_token("/register")
        fields = {"email": email, "name": name, "password": password, "csrf_token": token}
        reply = self.post("/register", fields)
        assert reply.status in (302, 303), f"registration failed: {reply.status}"

    def progress(self, next_path: str = "/") -> dict[str, Any]:
        reply = self.get("/preparing/progress?next=" + urllib.parse.quote(next_path, safe="/"))
        assert reply.status == 200, reply.status
        return reply.json()


def preparing_url(asked: str) -> str:
    return "/preparing?next=" + urllib.parse.quote(asked, safe="/")


def sent_to_preparing(reply: Reply, asked: str) -> bool:
    """Whether ``reply`` sends the visitor to the preparing page, to come back to ``asked``."""
    if reply.status != 303 or not reply.location.startswith("/preparing?"):
        return False
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(reply.location).query)
    assert query.get("next") == [asked], f"{reply.location} would not return to {asked}"
    return True


def follow_preparing(
    visitor: Visitor, preparing: str, asked: str, *, timeout: float = 90.0, pause: float = 0.2
) -> list[int]:
    """Reload the preparing page until the app sends the visitor on; that must be to ``asked``.
    Returns the statuses of the preparing pages seen (200, or 503 while retrying)."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        reply = visitor.get(preparing)
        if reply.status in (301, 302, 303):
            assert reply.location == asked, f"sent to {reply.location!r}, asked for {asked!r}"
            return seen
        assert reply.status in (200, 503), f"{reply.status}: {reply.text[:300]}"
        assert PREPARING in reply.text
        seen.append(reply.status)
        if time.monotonic() > deadline:
            raise AssertionError(f"still preparing after {timeout}s (statuses {seen[-5:]})")
        time.sleep(pause)


def arrive(visitor: Visitor, asked: str, *, timeout: float = 90.0) -> bool:
    """Ask for a signed-in page; follow the preparing page if sent there; end on the page.
    True if the visitor was sent to the preparing page."""
    first = visitor.get(asked)
    detour = sent_to_preparing(first, asked)
    if detour:
        follow_preparing(visitor, first.location, asked, timeout=timeout)
    else:
        assert first.status == 200, f"{asked}: {first.status} {first.location}"
    final = visitor.get(asked)
    assert final.status == 200, f"{asked} answered {final.status} {final.location}"
    assert PREPARING not in final.text
    return detour
