"""A loopback HTTP proxy in front of DynamoDB Local that injects faults per operation.

For tests that run the app in other processes (gunicorn), where botocore hooks cannot reach:
point the app's ``DYNAMODB_ENDPOINT`` at ``proxy.url`` and steer the faults from the test::

    with FaultProxy(local_endpoint) as proxy:
        proxy.delay(COPIES, 0.05)                       # every copy waits 50 ms first
        proxy.throttle(COPIES, after=2, code=PROVISIONED)   # 2 pass, then 400 throttling
        proxy.cancel(COPIES, reasons=("None", "ThrottlingError"), each=1)   # cancelled once
        held = proxy.hold(COPIES)                       # calls stall in flight ...
        held.release()                                  # ... until released
        held.answers                                    # ... and how they were answered
        proxy.count(COPIES), proxy.count("UpdateItem")  # requests seen so far
        proxy.answers(COPIES)                           # how each was answered
        proxy.unprocessed("BatchWriteItem", keep=0.5, times=10)   # partial success
        proxy.clear()                                   # no faults any more

A fault is set on a *target*: an operation name (from the ``X-Amz-Target`` header,
``DynamoDB_20120810.<Operation>``), which matches every call of that operation, or a
``Target``: an operation plus a predicate on the request's JSON body. ``COPIES`` is the
migration's copy transactions (store/migration.py ``Migration._write_fenced``): a
TransactWriteItems with a ``ConditionCheck`` on a ``MIGRATION``/``FENCE#<n>`` row. The claim,
takeover and flag transactions have no such check, so they pass untouched by faults on
``COPIES``. When a call matches several targets with faults, a predicate target's faults win
over its plain operation's (one rule applies per call).

*Throttling* answers ``400`` with DynamoDB's JSON error body (``ThrottlingException`` or
``ProvisionedThroughputExceededException``), which botocore retries and then raises.

*Cancelling* answers a transaction with ``400 TransactionCanceledException`` and, at the top of
the body as DynamoDB does, ``CancellationReasons``: one per action of the request, the given
codes repeated in order (``("None", "ThrottlingError")`` → None, ThrottlingError, None, ...).
botocore does not retry it and puts the reasons in ``ClientError.response`` (checked by
``test_the_fault_proxy_...`` in tests/migration/test_multiprocess.py). Nothing is written.

*Partial success* forwards only some of a BatchWriteItem's requests and returns the rest as
``UnprocessedItems``, as DynamoDB does under load (the migration no longer uses BatchWriteItem;
``store.batch.write_chunk`` does). The request body is rewritten, so its SigV4 signature no
longer matches: DynamoDB Local does not verify signatures (checked by the same test), and the
proxy says so loudly if an upstream ever does. Answers get a fresh ``X-Amz-Crc32``, because
botocore checks that header on DynamoDB answers and retries on a mismatch.

Everything is thread-safe; ``stop()`` closes the listening socket and every open connection.
"""

from __future__ import annotations

import contextlib
import hashlib
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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from store import keys

TARGET_PREFIX = "DynamoDB_20120810."
ERROR_TYPE_PREFIX = "com.amazonaws.dynamodb.v20120810#"
THROTTLING = "ThrottlingException"
PROVISIONED = "ProvisionedThroughputExceededException"
CANCELLED = "TransactionCanceledException"
THROTTLE_MESSAGE = "Rate of requests exceeds the allowed throughput (injected by the fault proxy)"
# What DynamoDB says for each cancellation reason it gives (AWS API reference,
# TransactWriteItems "Errors"); "None" carries no message.
REASON_MESSAGES = {
    "ConditionalCheckFailed": "The conditional request failed",
    "ThrottlingError": (
        "Throughput exceeds the current capacity of your table or index (injected by the "
        "fault proxy)"
    ),
    "ProvisionedThroughputExceeded": (
        "The level of configured provisioned throughput for the table was exceeded (injected "
        "by the fault proxy)"
    ),
    "TransactionConflict": "Transaction is ongoing for the item (injected by the fault proxy)",
    "ValidationError": "One or more parameter values were invalid (injected by the fault proxy)",
}
TRANSACTIONS = ("TransactWriteItems", "TransactGetItems")
# Hop-by-hop headers (RFC 9110 7.6.1) and the ones we recompute.
_NOT_FORWARDED = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te"}
_NOT_RETURNED = _NOT_FORWARDED | {"content-length", "x-amz-crc32", "date", "server"}


class FaultProxyError(RuntimeError):
    """The upstream behaved in a way the proxy's faults cannot be trusted with."""


# --- targets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Calls of ``operation`` whose JSON body satisfies ``where`` (all of them when None).
    ``name`` identifies the target in counts and rules; it defaults to the operation."""

    operation: str
    name: str = ""
    where: Callable[[dict[str, Any]], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.operation)
        if self.where is not None and self.name == self.operation:
            raise ValueError("a target with a predicate needs a name of its own")

    def matches(self, operation: str, body: dict[str, Any] | None) -> bool:
        if operation != self.operation:
            return False
        if self.where is None:
            return True
        try:
            return body is not None and bool(self.where(body))
        except (AttributeError, KeyError, TypeError):
            return False


def is_fenced_copy(body: dict[str, Any]) -> bool:
    """Whether a TransactWriteItems body is one of the migration's copies: it checks a
    writer's fence row (claim, takeover and flag transactions do not)."""
    return any(
        action.get("ConditionCheck", {})
        .get("Key", {})
        .get(keys.SK, {})
        .get("S", "")
        .startswith(keys.MIGRATION_FENCE_PREFIX)
        for action in body.get("TransactItems", [])
    )


COPIES = Target("TransactWriteItems", "migration copies", is_fenced_copy)


def copied_keys(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The (PK, SK) of every row a copy transaction puts."""
    return [
        (action["Put"]["Item"][keys.PK]["S"], action["Put"]["Item"][keys.SK]["S"])
        for action in body.get("TransactItems", [])
        if "Put" in action
    ]


@dataclass(frozen=True)
class Answer:
    """How the proxy answered one call: the status, the error code (None on success), the
    cancellation reason codes of a cancelled transaction, and whether the proxy made it up."""

    status: int
    code: str | None
    reasons: tuple[str, ...]
    injected: bool

    @property
    def fenced_off(self) -> bool:
        """A transaction refused because its first action's condition failed (for a copy:
        the writer's fence names another run)."""
        return self.code == CANCELLED and self.reasons[:1] == ("ConditionalCheckFailed",)


def _answer_of(status: int, body: bytes, injected: bool) -> Answer:
    if status == 200:
        return Answer(status, None, (), injected)
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return Answer(status, None, (), injected)
    code = str(parsed.get("__type", "")).rpartition("#")[2] or None
    reasons = tuple(str(r.get("Code")) for r in parsed.get("CancellationReasons") or [])
    return Answer(status, code, reasons, injected)


# --- the faults on one target ----------------------------------------------------------------


@dataclass
class _Window:
    """Which calls a fault applies to: ``times`` calls (None: all) after the first ``after``;
    ``hit`` counts the calls it applied to."""

    after: int = 0
    times: int | None = None
    seen: int = 0
    hit: int = 0

    def next_call(self) -> bool:
        self.seen += 1
        past = self.seen - self.after
        if past > 0 and (self.times is None or past <= self.times):
            self.hit += 1
            return True
        return False


@dataclass
class _Cancel:
    reasons: tuple[str, ...]
    window: _Window
    each: int | None
    bodies: Counter[str] = field(default_factory=Counter)


@dataclass
class _Rule:
    delay: float = 0.0
    throttle: tuple[str, _Window] | None = None
    cancel: _Cancel | None = None
    keep: tuple[float, _Window] | None = None
    partial: int = 0
    hold: Hold | None = None
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True)
class _Decision:
    targets: tuple[str, ...]
    delay: float = 0.0
    throttle: str | None = None
    cancel: tuple[str, ...] | None = None
    keep: float | None = None
    rule: str | None = None
    rng: random.Random | None = None
    hold: Hold | None = None


class Hold:
    """Calls of one target caught in flight: the proxy keeps them (unanswered, not forwarded)
    until ``release()``, as a stalled network would. ``close()`` stops catching new calls while
    the caught ones stay held. ``bodies`` are the caught requests' JSON bodies; ``answers``,
    how each caught call was answered once released (in the order they were answered)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._open = True
        self.bodies: list[dict[str, Any]] = []
        self.answers: list[Answer] = []

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.bodies)

    def answered(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

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

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 (a free port) forwarding to ``upstream``.

    Calls of every target in ``watch`` (and of every target a fault was ever set on) are
    counted and their answers recorded, faults or not."""

    def __init__(
        self, upstream: str, *, seed: int | None = None, watch: Iterable[Target] = (COPIES,)
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self.upstream = upstream
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self._seed = seed
        self._lock = threading.Lock()
        self._targets: dict[str, Target] = {}
        self._rules: dict[str, _Rule] = {}
        self._counts: Counter[str] = Counter()
        self._answers: dict[str, list[Answer]] = {}
        self._busy = 0
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        for target in watch:
            self.watch(target)

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

    def watch(self, target: str | Target) -> Target:
        """Count ``target``'s calls and record their answers from now on."""
        resolved = Target(target) if isinstance(target, str) else target
        with self._lock:
            known = self._targets.get(resolved.name)
            if known is not None and known.operation != resolved.operation:
                raise ValueError(f"two targets named {resolved.name!r}")
            self._targets.setdefault(resolved.name, resolved)
            self._answers.setdefault(resolved.name, [])
        return resolved

    def _rule(self, target: Target) -> _Rule:
        rule = self._rules.get(target.name)
        if rule is None:
            rng = random.Random(self._seed)  # noqa: S311 - test data, not security
            rule = self._rules[target.name] = _Rule(rng=rng)
        return rule

    def delay(self, target: str | Target, seconds: float) -> None:
        """Wait ``seconds`` before answering each call of ``target`` (0 removes it)."""
        resolved = self.watch(target)
        with self._lock:
            self._rule(resolved).delay = seconds

    def throttle(
        self,
        target: str | Target,
        *,
        after: int = 0,
        times: int | None = None,
        code: str = THROTTLING,
    ) -> None:
        """Let ``after`` calls through, then answer the next ``times`` (None: all) with a 400
        ``code`` error. Counting starts now."""
        if code not in (THROTTLING, PROVISIONED):
            raise ValueError(f"unknown throttling code {code!r}")
        resolved = self.watch(target)
        with self._lock:
            self._rule(resolved).throttle = (code, _Window(after, times))

    def cancel(
        self,
        target: str | Target,
        *,
        reasons: Sequence[str] = ("None", "ThrottlingError"),
        after: int = 0,
        times: int | None = None,
        each: int | None = None,
    ) -> None:
        """Answer transactions of ``target`` with a 400 TransactionCanceledException whose
        CancellationReasons has one entry per action, ``reasons`` repeated in order; for
        ``times`` calls (None: all) after the first ``after``. With ``each``, one request (the
        same body but for its ClientRequestToken, as a retry sends it) is cancelled at most
        ``each`` times and then goes through, so every writer makes progress (calls let
        through that way are not counted in ``after`` and ``times``). Counting starts now."""
        resolved = self.watch(target)
        if resolved.operation not in TRANSACTIONS:
            raise ValueError("only a transaction is cancelled with reasons")
        unknown = set(reasons) - set(REASON_MESSAGES) - {"None"}
        if not reasons or unknown:
            raise ValueError(f"cancellation reasons {sorted(unknown)} are not DynamoDB's")
        with self._lock:
            self._rule(resolved).cancel = _Cancel(tuple(reasons), _Window(after, times), each)

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
        resolved = self.watch(operation)
        with self._lock:
            rule = self._rule(resolved)
            rule.keep, rule.partial = (keep, _Window(after, times)), 0

    def hold(self, target: str | Target) -> Hold:
        """Catch the next calls of ``target`` and keep them in flight until the returned
        ``Hold`` is released (``clear()`` and ``stop()`` release it too)."""
        resolved = self.watch(target)
        caught = Hold(resolved)
        with self._lock:
            rule = self._rule(resolved)
            if rule.hold is not None:
                rule.hold.release()
            rule.hold = caught
        return caught

    def clear(self, target: str | Target | None = None) -> None:
        """Remove the faults of ``target`` (None: of every target); counts stay."""
        with self._lock:
            if target is None:
                removed = list(self._rules.values())
                self._rules.clear()
            else:
                name = target if isinstance(target, str) else target.name
                removed = [r for r in [self._rules.pop(name, None)] if r is not None]
        for rule in removed:
            if rule.hold is not None:
                rule.hold.release()

    # --- what happened ---------------------------------------------------------------------

    def count(self, target: str | Target) -> int:
        """Requests of ``target`` received so far (faulted ones included). Every operation is
        counted; a ``Target`` with a predicate from when it was first watched."""
        with self._lock:
            return self._counts[target if isinstance(target, str) else target.name]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def answers(self, target: str | Target) -> list[Answer]:
        """How each call of a watched ``target`` was answered, in the order answered."""
        with self._lock:
            return list(self._answers.get(target if isinstance(target, str) else target.name, []))

    def throttled(self, target: str | Target) -> int:
        """Calls of ``target`` answered with a throttling error since ``throttle()``."""
        with self._lock:
            rule = self._rules.get(target if isinstance(target, str) else target.name)
            return rule.throttle[1].hit if rule and rule.throttle else 0

    def cancelled(self, target: str | Target) -> int:
        """Calls of ``target`` answered with an injected cancellation since ``cancel()``."""
        with self._lock:
            rule = self._rules.get(target if isinstance(target, str) else target.name)
            return rule.cancel.window.hit if rule and rule.cancel else 0

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
            for answers in self._answers.values():
                answers.clear()

    # --- used by the handler ---------------------------------------------------------------

    def _decide(self, operation: str, body: bytes) -> _Decision:
        with self._lock:
            self._counts[operation] += 1
            candidates = [t for t in self._targets.values() if t.operation == operation]
        parsed: dict[str, Any] | None = None
        if any(t.where is not None for t in candidates) and body:
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        matched = [t for t in candidates if t.matches(operation, parsed)]
        with self._lock:
            names = tuple(t.name for t in matched)
            for name in names:
                if name != operation:
                    self._counts[name] += 1
            # A predicate target's rule is more specific than its plain operation's.
            ruled = sorted((t for t in matched if t.name in self._rules), key=lambda t: not t.where)
            if not ruled:
                return _Decision(names)
            name = ruled[0].name
            rule = self._rules[name]
            throttle = cancel = keep = None
            if rule.throttle is not None and rule.throttle[1].next_call():
                throttle = rule.throttle[0]
            if throttle is None and rule.cancel is not None:
                cancel = self._cancellation(rule.cancel, body, parsed)
            if throttle is None and cancel is None and rule.keep is not None:
                if rule.keep[1].next_call():
                    keep = rule.keep[0]
            return _Decision(names, rule.delay, throttle, cancel, keep, name, rule.rng, rule.hold)

    @staticmethod
    def _cancellation(
        fault: _Cancel, body: bytes, parsed: dict[str, Any] | None
    ) -> tuple[str, ...] | None:
        """The reason codes to cancel this call with, or None to let it through."""
        if parsed is None:
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        # The same request, however often sent: botocore fills in a fresh ClientRequestToken
        # for every call (an idempotency token), so a retry by the app differs only there.
        same = {k: v for k, v in (parsed or {}).items() if k != "ClientRequestToken"}
        digest = hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()
        if fault.each is not None and fault.bodies[digest] >= fault.each:
            return None
        if not fault.window.next_call():
            return None
        fault.bodies[digest] += 1
        actions = len((parsed or {}).get("TransactItems", [])) or 1
        return tuple(fault.reasons[i % len(fault.reasons)] for i in range(actions))

    def _count_partial(self, rule_name: str | None) -> None:
        with self._lock:
            rule = self._rules.get(rule_name or "")
            if rule is not None:
                rule.partial += 1

    def _record(self, decision: _Decision, answer: Answer, caught: Hold | None) -> None:
        with self._lock:
            for name in decision.targets:
                self._answers.setdefault(name, []).append(answer)
        if caught is not None:
            caught._record(answer)

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


def cancellation_body(reasons: Sequence[str]) -> dict[str, Any]:
    """DynamoDB's JSON error body for a cancelled transaction (as DynamoDB Local sends it:
    ``CancellationReasons`` beside ``__type`` and ``Message``, not inside an error object)."""
    return {
        "__type": ERROR_TYPE_PREFIX + CANCELLED,
        "CancellationReasons": [
            {"Code": code, "Message": REASON_MESSAGES[code]}
            if code in REASON_MESSAGES
            else {"Code": code}
            for code in reasons
        ],
        "Message": (
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            f"[{', '.join(reasons)}]"
        ),
    }


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
        decision = proxy._decide(operation, body)
        caught = None
        if decision.hold is not None and decision.hold._catch(body):
            caught = decision.hold
            caught._wait(timeout=300)
        if decision.delay > 0:
            time.sleep(decision.delay)
        if decision.throttle:
            error = {"__type": ERROR_TYPE_PREFIX + decision.throttle, "message": THROTTLE_MESSAGE}
            self._answer_error(decision, error, caught)
            return
        if decision.cancel:
            self._answer_error(decision, cancellation_body(decision.cancel), caught)
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
            answer = self._merge_unprocessed(decision, status, answer, withheld)
        # Recorded before answering: a client that gave up no longer reads the answer.
        proxy._record(decision, _answer_of(status, answer, injected=False), caught)
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in _NOT_RETURNED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Amz-Crc32", _crc32(answer))
        self.end_headers()
        self.wfile.write(answer)

    def _merge_unprocessed(
        self, decision: _Decision, status: int, answer: bytes, withheld: dict[str, list[Any]]
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
        proxy._count_partial(decision.rule)
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

    def _answer_error(
        self, decision: _Decision, error: dict[str, Any], caught: Hold | None
    ) -> None:
        answer = json.dumps(error).encode()
        self.server.proxy._record(decision, _answer_of(400, answer, injected=True), caught)
        self.send_response(400, "Bad Request")
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", uuid.uuid4().hex.upper())
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Amz-Crc32", _crc32(answer))
        self.end_headers()
        self.wfile.write(answer)
