"""A browser that talks to the Lambda handler the way API Gateway and function URLs do: each
request is a recorded event (tests/deploy/events/) with its method, path, query, headers,
cookies and body put where that payload version carries them, and each answer is read back
the way the gateway reads it (multi-value headers, the 2.0 cookies list, base64 bodies)."""

from __future__ import annotations

import base64
import copy
import json
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, NamedTuple

EVENTS = Path(__file__).resolve().parents[1] / "deploy" / "events"
KINDS = ("rest-api-v1", "http-api-v2", "function-url")


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes
    raw: dict[str, Any]

    def header(self, name: str) -> str | None:
        for key, values in self.headers.items():
            if key.lower() == name.lower():
                return values[-1]
        return None

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def location(self) -> str:
        """The redirect's path and query, as the browser would ask for it next."""
        target = urllib.parse.urlsplit(self.header("Location") or "")
        return target.path + (f"?{target.query}" if target.query else "")


def recorded(kind: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{kind}.json").read_text())


@dataclass
class GatewayBrowser:
    kind: str
    handler: Any
    cookies: dict[str, str] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stage(self) -> str:
        """The path prefix the API's URL carries ("/Prod" on a REST API's execute-api URL)."""
        context = recorded(self.kind)["requestContext"]
        return f"/{context['stage']}" if self.kind == "rest-api-v1" else ""

    @property
    def origin(self) -> str:
        return "https://" + recorded(self.kind)["requestContext"]["domainName"]

    def get(self, path: str) -> Answer:
        return self.send("GET", path)

    def post(self, path: str, fields: dict[str, str]) -> Answer:
        return self.send("POST", path, urllib.parse.urlencode(fields).encode())

    def send(self, method: str, path: str, body: bytes | None = None) -> Answer:
        if self.stage and path.startswith(self.stage + "/"):
            path = path[len(self.stage) :]  # a link the app wrote, stage included
        event = self._event(method, path, body)
        self.sent.append(event)
        answer = _answer(self.handler(event, None))
        for value in _set_cookies(answer):
            for name, morsel in SimpleCookie(value).items():
                if morsel["max-age"] == "0" or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return answer

    def _event(self, method: str, path: str, body: bytes | None) -> dict[str, Any]:
        event = copy.deepcopy(recorded(self.kind))
        route, _, query = path.partition("?")
        extra = {"origin": self.origin, "sec-fetch-site": "same-origin"}
        if body is not None:
            extra["content-type"] = "application/x-www-form-urlencoded"
            extra["content-length"] = str(len(body))
        cookie_pairs = [f"{name}={value}" for name, value in self.cookies.items()]
        request = Request(method, route, query, extra, cookie_pairs)
        if self.kind == "rest-api-v1":
            _rest_request(event, request)
        else:
            _v2_request(event, request)
        # Form posts arrive base64-encoded: a REST API with */* binary media types, and
        # HTTP APIs and function URLs for any body that is not text.
        event["body"] = base64.b64encode(body).decode() if body is not None else None
        event["isBase64Encoded"] = body is not None
        return event


class Request(NamedTuple):
    method: str
    route: str
    query: str
    headers: dict[str, str]
    cookies: list[str]


def _rest_request(event: dict[str, Any], request: Request) -> None:
    method, route, query, extra, cookie_pairs = request
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = route
    event["pathParameters"] = {"proxy": route.lstrip("/")} if route != "/" else None
    event["resource"] = event["requestContext"]["resourcePath"] = (
        "/{proxy+}" if route != "/" else "/"
    )
    event["requestContext"]["path"] = f"/{event['requestContext']['stage']}{route}"
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    event["multiValueQueryStringParameters"] = multi or None
    event["queryStringParameters"] = {k: v[-1] for k, v in multi.items()} or None
    if cookie_pairs:
        extra = {**extra, "cookie": "; ".join(cookie_pairs)}
    for name, value in extra.items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]


def _v2_request(event: dict[str, Any], request: Request) -> None:
    method, route, query, extra, cookie_pairs = request
    event["rawPath"] = event["requestContext"]["http"]["path"] = route
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if pairs:
        event["queryStringParameters"] = {
            name: ",".join(v for n, v in pairs if n == name) for name, _ in pairs
        }
    if cookie_pairs:
        event["cookies"] = cookie_pairs  # 2.0 carries cookies in their own list
    event["headers"].update(extra)


def _answer(raw: dict[str, Any]) -> Answer:
    headers: dict[str, list[str]] = {}
    for name, values in (raw.get("multiValueHeaders") or {}).items():
        headers.setdefault(name, []).extend(values)
    for name, value in (raw.get("headers") or {}).items():
        headers.setdefault(name, []).append(value)
    body = raw.get("body") or ""
    data = base64.b64decode(body) if raw.get("isBase64Encoded") else body.encode()
    return Answer(raw["statusCode"], headers, data, raw)


def _set_cookies(answer: Answer) -> list[str]:
    if "cookies" in answer.raw:  # payload 2.0: Set-Cookie values in their own list
        return list(answer.raw["cookies"])
    return [v for k, values in answer.headers.items() if k.lower() == "set-cookie" for v in values]
