"""A loopback HTTP proxy in front of DynamoDB Local that injects faults per operation.

For tests that run the app in other processes (gunicorn), where botocore hooks cannot reach:
point the app's ``DYNAMODB_ENDPOINT`` at ``proxy.url`` and steer the faults from the test::

    with FaultProxy(local_endpoint) as proxy:
        proxy.delay("BatchWriteItem", 0.05)             # every call waits 50 ms first
        proxy.throttle("BatchWriteItem", after=2)       # 2 calls pass, then 400 Throttling
        proxy.unprocessed("BatchWriteItem", keep=0.5, times=10)   # partial success
        held = proxy.hold("BatchWriteItem")             # calls stall in flight ...
        held.release()                                  # ... until released
        proxy.count("BatchWriteItem")                   # requests seen so far
        proxy.clear()                                   # no faults any more

The operation is read from the ``X-Amz-Target`` header (``DynamoDB_20120810.<Operation>``).

*Throttling* answers ``400`` with DynamoDB's JSON error body (``ThrottlingException`` or
``ProvisionedThroughputExceededException``), which botocore retries and then raises.

*Partial success* forwards only some of a BatchWriteItem's requests and returns the rest as
``UnprocessedItems``, as DynamoDB does under load. The request body is rewritten, so its SigV4
signature no longer matches: DynamoDB Local does not verify signatures (checked by
``test_the_fault_proxy_...`` in tests/migration/test_multiprocess.py), and the proxy says so
loudly if an upstream ever does. The answer gets a fresh ``X-Amz-Crc32``, because botocore
checks that header on DynamoDB answers and retries on a mismatch.

Everything is thread-safe; ``stop()`` closes the listening socket and every open connection.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import sys
import threading
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

TARGET_PREFIX = "DynamoDB_20120810."
ERROR_TYPE_PREFIX = "com.amazonaws.dynamodb.v20120810#"
THROTTLING = "ThrottlingException"
PROVISIONED = "ProvisionedThroughputExceededException"
# Hop-by-hop headers (RFC 9110 7.6.1) and the ones we recompute.
_NOT_FORWARDED = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te"}
_NOT_RETURNED = _NOT_FORWARDED | {"content-length", "x-amz-crc32", "date", "server"}


class FaultProxyError(RuntimeError):
    """The upstream behaved in a way the proxy's faults cannot be trusted with."""


@dataclass
class _Rule:
    """The faults set on one operation; counters count the calls each fault has seen."""

    delay: float = 0.0
    throttle_code: str | None = None
    throttle_after: int = 0
    throttle_times: int | None = None
    throttle_seen: int = 0
    throttled: int = 0
    keep: float | None = None
    keep_after: int = 0
    keep_times: int | None = None
    keep_seen: int = 0
    partial: int = 0
    hold: Hold | None = None
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True)
class _Decision:
    delay: float
    throttle: str | None
    keep: float | None
    rng: random.Random | None
    hold: Hold | None


class Hold:
    """Calls of one operation caught in flight: the proxy keeps them (unanswered, not
    forwarded) until ``release()``, as a stalled network would. ``close()`` stops catching new
    calls while the caught ones stay held. ``bodies`` are the caught requests' JSON bodies."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._open = True
        self.bodies: list[dict[str, Any]] = []

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.bodies)

    def close(self) -> None:
        with self._lock:
            self._open = False

    def release(self) -> None:
        self.close()
        self._released.set()

    def _catch(self, body: bytes) -> bool:
        with self._lock:
            if not self._open:
                return False
            self.bodies.append(json.loads(body) if body else {})
            return True

    def _wait(self, timeout: float) -> None:
        self._released.wait(timeout)


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 (a free port) forwarding to ``upstream``."""

    def __init__(self, upstream: str, *, seed: int | None = None) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self.upstream = upstream
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self._seed = seed
        self._lock = threading.Lock()
        self._rules: dict[str, _Rule] = {}
        self._counts: Counter[str] = Counter()
        self._busy = 0
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise FaultProxyError("the proxy has not been started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        if self._server is not None:
            raise FaultProxyError("already started")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.clear()  # held calls go on, so their handler threads can end
        server.shutdown()
        server.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:  # handler threads blocked on keep-alive reads end now
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- the faults ------------------------------------------------------------------------

    def _rule(self, operation: str) -> _Rule:
        rule = self._rules.get(operation)
        if rule is None:
            rng = random.Random(self._seed)  # noqa: S311 - test data, not security
            rule = self._rules[operation] = _Rule(rng=rng)
        return rule

    def delay(self, operation: str, seconds: float) -> None:
        """Wait ``seconds`` before forwarding each call of ``operation`` (0 removes it)."""
        with self._lock:
            self._rule(operation).delay = seconds

    def throttle(
        self,
        operation: str,
        *,
        after: int = 0,
        times: int | None = None,
        code: str = THROTTLING,
    ) -> None:
        """Let ``after`` calls through, then answer the next ``times`` (None: all) with a 400
        ``code`` error. Counting starts now."""
        if code not in (THROTTLING, PROVISIONED):
            raise ValueError(f"unknown throttling code {code!r}")
        with self._lock:
            rule = self._rule(operation)
            rule.throttle_code, rule.throttle_after, rule.throttle_times = code, after, times
            rule.throttle_seen = rule.throttled = 0

    def unprocessed(
        self,
        operation: str = "BatchWriteItem",
        *,
        keep: float = 0.5,
        after: int = 0,
        times: int | None = None,
    ) -> None:
        """Forward only a random share ``keep`` (at least one request when ``keep`` > 0) of each
        BatchWriteItem and return the others as ``UnprocessedItems``; for ``times`` calls
        (None: all) after the first ``after``. Counting starts now."""
        if operation != "BatchWriteItem":
            raise ValueError("UnprocessedItems is a BatchWriteItem answer")
        if not 0.0 <= keep <= 1.0:
            raise ValueError("keep is a share between 0 and 1")
        with self._lock:
            rule = self._rule(operation)
            rule.keep, rule.keep_after, rule.keep_times = keep, after, times
            rule.keep_seen = rule.partial = 0

    def hold(self, operation: str) -> Hold:
        """Catch the next calls of ``operation`` and keep them in flight until the returned
        ``Hold`` is released (``clear()`` and ``stop()`` release it too)."""
        caught = Hold(operation)
        with self._lock:
            rule = self._rule(operation)
            if rule.hold is not None:
                rule.hold.release()
            rule.hold = caught
        return caught

    def clear(self, operation: str | None = None) -> None:
        """Remove the faults of ``operation`` (None: of every operation); counts stay."""
        with self._lock:
            if operation is None:
                removed = list(self._rules.values())
                self._rules.clear()
            else:
                removed = [r for r in [self._rules.pop(operation, None)] if r is not None]
        for rule in removed:
            if rule.hold is not None:
                rule.hold.release()

    # --- what happened ---------------------------------------------------------------------

    def count(self, operation: str) -> int:
        """Requests of ``operation`` received so far (faulted ones included)."""
        with self._lock:
            return self._counts[operation]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def throttled(self, operation: str) -> int:
        """Calls of ``operation`` answered with a throttling error since ``throttle()``."""
        with self._lock:
            rule = self._rules.get(operation)
            return rule.throttled if rule else 0

    def partial(self, operation: str = "BatchWriteItem") -> int:
        """Calls answered with a non-empty UnprocessedItems since ``unprocessed()``."""
        with self._lock:
            rule = self._rules.get(operation)
            return rule.partial if rule else 0

    def in_flight(self) -> int:
        """Requests received and not yet answered."""
        with self._lock:
            return self._busy

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    # --- used by the handler ---------------------------------------------------------------

    def _decide(self, operation: str) -> _Decision:
        with self._lock:
            self._counts[operation] += 1
            rule = self._rules.get(operation)
            if rule is None:
                return _Decision(0.0, None, None, None, None)
            throttle = None
            if rule.throttle_code is not None:
                rule.throttle_seen += 1
                past = rule.throttle_seen - rule.throttle_after
                if past > 0 and (rule.throttle_times is None or past <= rule.throttle_times):
                    throttle = rule.throttle_code
                    rule.throttled += 1
            keep = None
            if rule.keep is not None and throttle is None:
                rule.keep_seen += 1
                past = rule.keep_seen - rule.keep_after
                if past > 0 and (rule.keep_times is None or past <= rule.keep_times):
                    keep = rule.keep
            return _Decision(rule.delay, throttle, keep, rule.rng, rule.hold)

    def _count_partial(self, operation: str) -> None:
        with self._lock:
            rule = self._rules.get(operation)
            if rule is not None:
                rule.partial += 1

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (killed, timed out) is part of the tests, not an error.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return
        self.proxy.errors.append(f"{client_address}: {error!r}")
        super().handle_error(request, client_address)


def _crc32(body: bytes) -> str:
    return str(zlib.crc32(body) & 0xFFFFFFFF)


def split_batch(
    body: dict[str, Any], keep: float, rng: random.Random
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A BatchWriteItem body cut in two: what to forward, and what to leave unprocessed."""
    forwarded: dict[str, list[Any]] = {}
    withheld: dict[str, list[Any]] = {}
    entries = [
        (table, request)
        for table, requests in body.get("RequestItems", {}).items()
        for request in requests
    ]
    if not entries:
        return body, {}
    wanted = round(len(entries) * keep)
    if keep > 0:
        wanted = max(1, wanted)
    if keep < 1 and len(entries) > 1:
        wanted = min(wanted, len(entries) - 1)  # something always comes back unprocessed
    chosen = set(rng.sample(range(len(entries)), wanted))
    for position, (table, request) in enumerate(entries):
        target = forwarded if position in chosen else withheld
        target.setdefault(table, []).append(request)
    return {**body, "RequestItems": forwarded}, withheld


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.upstream: http.client.HTTPConnection | None = None
        self.server.proxy._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.proxy._track(self.connection, False)
            if self.upstream is not None:
                self.upstream.close()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # quiet: the test's output is not the place for an access log

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._relay(b"")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        length = int(self.headers.get("Content-Length") or 0)
        self._relay(self.rfile.read(length) if length else b"")

    def _relay(self, body: bytes) -> None:
        proxy = self.server.proxy
        with proxy._lock:
            proxy._busy += 1
        try:
            self._relay_counted(body)
        finally:
            with proxy._lock:
                proxy._busy -= 1

    def _relay_counted(self, body: bytes) -> None:
        proxy = self.server.proxy
        target = self.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(TARGET_PREFIX) if target else f"{self.command} {self.path}"
        decision = proxy._decide(operation)
        if decision.hold is not None and decision.hold._catch(body):
            decision.hold._wait(timeout=300)
        if decision.delay > 0:
            time.sleep(decision.delay)
        if decision.throttle:
            self._answer_error(decision.throttle)
            return
        withheld: dict[str, list[Any]] = {}
        if decision.keep is not None and decision.rng is not None and body:
            request = json.loads(body)
            with proxy._lock:  # the rule's Random is shared by handler threads
                rewritten, withheld = split_batch(request, decision.keep, decision.rng)
            if withheld:
                body = json.dumps(rewritten).encode()
        try:
            status, reason, headers, answer = self._forward(body)
        except (http.client.HTTPException, OSError) as exc:
            proxy.errors.append(f"{operation}: upstream unreachable: {exc}")
            self.send_error(502, "upstream unreachable")
            self.close_connection = True
            return
        if withheld:
            answer = self._merge_unprocessed(operation, status, answer, withheld)
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in _NOT_RETURNED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Amz-Crc32", _crc32(answer))
        self.end_headers()
        self.wfile.write(answer)

    def _merge_unprocessed(
        self, operation: str, status: int, answer: bytes, withheld: dict[str, list[Any]]
    ) -> bytes:
        proxy = self.server.proxy
        if status != 200:
            text = answer.decode(errors="replace")
            if "signature" in text.lower():
                message = (
                    "the upstream verified the SigV4 signature of a rewritten BatchWriteItem: "
                    "partial success cannot be injected this way"
                )
                proxy.errors.append(message)
                raise FaultProxyError(message)
            return answer  # the smaller batch failed on its own; pass the error on
        parsed = json.loads(answer or b"{}")
        unprocessed = parsed.setdefault("UnprocessedItems", {})
        for table, requests in withheld.items():
            unprocessed.setdefault(table, []).extend(requests)
        proxy._count_partial(operation)
        return json.dumps(parsed).encode()

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() not in _NOT_FORWARDED and name.lower() != "content-length"
        }
        headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            reused = self.upstream is not None
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(
                    self.server.proxy.upstream_host, self.server.proxy.upstream_port, timeout=60
                )
            try:
                self.upstream.request(self.command, self.path, body=body, headers=headers)
                response = self.upstream.getresponse()
                answer = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive upstream connection closed while idle: once more on a fresh one,
                # as browsers do. A fresh connection's failure is passed on.
                self.upstream.close()
                self.upstream = None
                if attempt == 2 or not reused:
                    raise
                continue
            except (http.client.HTTPException, OSError):
                self.upstream.close()
                self.upstream = None
                raise
            if response.will_close:
                self.upstream.close()
                self.upstream = None
            return response.status, response.reason, response.getheaders(), answer
        raise AssertionError("unreachable")

    def _answer_error(self, code: str) -> None:
        answer = json.dumps(
            {
                "__type": ERROR_TYPE_PREFIX + code,
                "message": (
                    "Rate of requests exceeds the allowed throughput (injected by the fault proxy)"
                ),
            }
        ).encode()
        self.send_response(400, "Bad Request")
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", uuid.uuid4().hex.upper())
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Amz-Crc32", _crc32(answer))
        self.end_headers()
        self.wfile.write(answer)
