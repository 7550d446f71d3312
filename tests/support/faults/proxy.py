"""The fault proxy: where faults are set and what happened is read back (see the package)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import socket
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from tests.support.faults.handler import ProxyHandler, ProxyServer
from tests.support.faults.rules import Cancel, Decision, Hold, Lose, Refuse, Rule, Window
from tests.support.faults.targets import COPIES, Target
from tests.support.faults.wire import (
    LOSE_HOW,
    PROVISIONED,
    REASON_MESSAGES,
    THROTTLING,
    TRANSACTIONS,
    Answer,
    FaultProxyError,
)


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
        self._rules: dict[str, Rule] = {}
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
        server = ProxyServer(("127.0.0.1", 0), ProxyHandler)
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

    def _rule(self, target: Target) -> Rule:
        rule = self._rules.get(target.name)
        if rule is None:
            rng = random.Random(self._seed)  # noqa: S311 - test data, not security
            rule = self._rules[target.name] = Rule(rng=rng)
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
            self._rule(resolved).throttle = (code, Window(after, times))

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
            self._rule(resolved).cancel = Cancel(tuple(reasons), Window(after, times), each)

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
            rule.keep, rule.partial = (keep, Window(after, times)), 0

    def refuse(
        self,
        target: str | Target,
        code: str,
        *,
        message: str | None = None,
        status: int = 400,
        after: int = 0,
        times: int | None = None,
    ) -> None:
        """Answer ``times`` calls (None: all) of ``target`` after the first ``after`` with a
        ``status`` error carrying DynamoDB's JSON error body for ``code``, without forwarding
        them: e.g. ``refuse("TransactWriteItems", UNKNOWN_OPERATION)`` is a DynamoDB-compatible
        server that has no transactions. Counting starts now."""
        resolved = self.watch(target)
        text = message if message is not None else f"{code} (injected by the fault proxy)"
        with self._lock:
            self._rule(resolved).refuse = Refuse(status, code, text, Window(after, times))

    def lose_answer(
        self,
        target: str | Target,
        *,
        how: str = "close",
        after: int = 0,
        times: int | None = 1,
    ) -> None:
        """Forward ``times`` calls (None: all) of ``target`` after the first ``after`` to the
        upstream, which carries them out, and then lose the answer: ``how="close"`` closes
        the client's connection without a byte of it (botocore raises ConnectionClosedError
        and, in both its retry modes, sends the same request again), ``how="500"`` answers a
        500 InternalServerError instead (also retried). The real answer is still recorded in
        ``answers()``. Counting starts now."""
        if how not in LOSE_HOW:
            raise ValueError(f"lose the answer how? {how!r} is not one of {LOSE_HOW}")
        resolved = self.watch(target)
        with self._lock:
            self._rule(resolved).lose = Lose(how, Window(after, times))

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

    def refused(self, target: str | Target) -> int:
        """Calls of ``target`` answered with an injected error since ``refuse()``."""
        with self._lock:
            rule = self._rules.get(target if isinstance(target, str) else target.name)
            return rule.refuse.window.hit if rule and rule.refuse else 0

    def lost(self, target: str | Target) -> int:
        """Calls of ``target`` carried out whose answer was lost since ``lose_answer()``."""
        with self._lock:
            rule = self._rules.get(target if isinstance(target, str) else target.name)
            return rule.lose.window.hit if rule and rule.lose else 0

    def partial(self, operation: str = "BatchWriteItem") -> int:
        """Calls answered with a non-empty UnprocessedItems since ``unprocessed()``."""
        with self._lock:
            rule = self._rules.get(operation)
            return rule.partial if rule else 0

    def in_flight(self) -> int:
        """Requests received and not yet answered (a call leaves the count just after its
        answer is sent, so a client may see its answer a moment before)."""
        with self._lock:
            return self._busy

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            for answers in self._answers.values():
                answers.clear()

    # --- used by the handler ---------------------------------------------------------------

    def _decide(self, operation: str, body: bytes) -> Decision:
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
                return Decision(names)
            name = ruled[0].name
            rule = self._rules[name]
            throttle = cancel = keep = refuse = lose = None
            if rule.refuse is not None and rule.refuse.window.next_call():
                refuse = rule.refuse
            if refuse is None and rule.throttle is not None and rule.throttle[1].next_call():
                throttle = rule.throttle[0]
            if refuse is None and throttle is None and rule.cancel is not None:
                cancel = self._cancellation(rule.cancel, body, parsed)
            forwarded = refuse is None and throttle is None and cancel is None
            if forwarded and rule.keep is not None:
                if rule.keep[1].next_call():
                    keep = rule.keep[0]
            if forwarded and rule.lose is not None and rule.lose.window.next_call():
                lose = rule.lose.how
            return Decision(
                names, rule.delay, throttle, cancel, keep, name, rule.rng, rule.hold, refuse, lose
            )

    @staticmethod
    def _cancellation(
        fault: Cancel, body: bytes, parsed: dict[str, Any] | None
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

    def _record(self, decision: Decision, answer: Answer, caught: Hold | None) -> None:
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
