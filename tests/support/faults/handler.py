"""The proxy's HTTP side: one handler thread per connection relays each call upstream,
or answers it with the fault the proxy decided on."""

from __future__ import annotations

import http.client
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from tests.support.faults.rules import Decision, Hold
from tests.support.faults.wire import (
    ERROR_TYPE_PREFIX,
    INTERNAL_ERROR,
    LOST_MESSAGE,
    NOT_FORWARDED,
    NOT_RETURNED,
    TARGET_PREFIX,
    THROTTLE_MESSAGE,
    FaultProxyError,
    answer_of,
    cancellation_body,
    crc32,
    split_batch,
)

if TYPE_CHECKING:
    from tests.support.faults.proxy import FaultProxy


class ProxyServer(ThreadingHTTPServer):
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


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    server: ProxyServer

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
        if decision.refuse is not None:
            refusal = decision.refuse
            error = {"__type": ERROR_TYPE_PREFIX + refusal.code, "message": refusal.message}
            self._answer_error(decision, error, caught, status=refusal.status)
            return
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
        proxy._record(decision, answer_of(status, answer, injected=False), caught)
        if decision.lose == "close":
            # Carried out upstream; the client gets no byte of the answer, as when a network
            # drops the connection on the way back.
            self.close_connection = True
            return
        if decision.lose == "500":
            error = {"__type": ERROR_TYPE_PREFIX + INTERNAL_ERROR, "message": LOST_MESSAGE}
            self._send_error_body(error, status=500)
            return
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in NOT_RETURNED:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Amz-Crc32", crc32(answer))
        self.end_headers()
        self.wfile.write(answer)

    def _merge_unprocessed(
        self, decision: Decision, status: int, answer: bytes, withheld: dict[str, list[Any]]
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
            if name.lower() not in NOT_FORWARDED and name.lower() != "content-length"
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
        self,
        decision: Decision,
        error: dict[str, Any],
        caught: Hold | None,
        *,
        status: int = 400,
    ) -> None:
        answer = json.dumps(error).encode()
        self.server.proxy._record(decision, answer_of(status, answer, injected=True), caught)
        self._send_error_body(error, status=status)

    def _send_error_body(self, error: dict[str, Any], *, status: int) -> None:
        answer = json.dumps(error).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", uuid.uuid4().hex.upper())
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Amz-Crc32", crc32(answer))
        self.end_headers()
        self.wfile.write(answer)
