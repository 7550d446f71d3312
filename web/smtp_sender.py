"""Mail over SMTP off the request thread: a bounded queue and one sender thread per process.

A request only queues its message (``enqueue``) and answers at once, so a slow or absent mail
server never holds a page. The sender connects with STARTTLS (certificate and host name
checked; ``SMTP_CA_FILE`` adds a private CA) and logs in when ``SMTP_USERNAME`` is set. A
transient failure (a connection that fails or drops, a timeout, a 4xx reply) is tried again
after 1, 2, 4 ... seconds, ``SMTP_MAX_ATTEMPTS`` tries in all; a permanent one (5xx, refused
login, no STARTTLS offered, a certificate that does not verify) is not. Either way the end
is one log line with the server and the error's class, never the message: an invite's body
holds its token, and a server's reply can echo the message back.

The thread starts on the first message a process queues (after a fork, the child starts its
own), and is a daemon: a process that exits cleanly waits up to 5 s for the queue to drain,
and messages still queued after that (or in a killed process) are lost; the inviter has the
link to copy anyway (the invite page always shows it).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import random
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

log = logging.getLogger(__name__)

QUEUE_SIZE = 200
SMTP_TIMEOUT = 10.0
MAX_BACKOFF = 60.0
EXIT_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Server:
    """Where and how to deliver: the SMTP settings, copied from the config when queued."""

    host: str
    port: int
    starttls: bool
    username: str | None
    password: str | None
    ca_file: str | None
    max_attempts: int
    retry_base: float
    timeout: float = SMTP_TIMEOUT

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Server:
        return cls(
            host=str(config["SMTP_HOST"]),
            port=int(config.get("SMTP_PORT") or 25),
            starttls=bool(config.get("SMTP_STARTTLS", True)),
            username=config.get("SMTP_USERNAME") or None,
            password=config.get("SMTP_PASSWORD") or None,
            ca_file=config.get("SMTP_CA_FILE") or None,
            max_attempts=int(config.get("SMTP_MAX_ATTEMPTS") or 4),
            retry_base=float(config.get("SMTP_RETRY_SECONDS", 1.0)),
        )


class Permanent(Exception):
    """Trying again cannot help (the wrapped error says why)."""


def deliver(server: Server, message: EmailMessage) -> None:
    """One attempt: connect, STARTTLS, log in, send. Raises what went wrong."""
    with smtplib.SMTP(server.host, server.port, timeout=server.timeout) as smtp:
        if server.starttls:
            context = ssl.create_default_context(cafile=server.ca_file)
            smtp.starttls(context=context)  # SMTPNotSupportedError when not offered
        if server.username:
            smtp.login(server.username, server.password or "")
        smtp.send_message(message)


def transient(exc: BaseException) -> bool:
    """Whether another try may succeed: connection trouble and 4xx replies, nothing else."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, ssl.SSLError | smtplib.SMTPException):
        return False  # certificate or handshake failures, STARTTLS not offered
    return isinstance(exc, OSError)  # refused, reset, unreachable, timed out


class Sender:
    """The process's queue and its thread; ``deliver`` is replaceable for tests."""

    def __init__(
        self,
        deliver: Callable[[Server, EmailMessage], None] = deliver,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._deliver = deliver
        self._sleep = sleep
        self._queue: queue.Queue[tuple[Server, EmailMessage]] = queue.Queue(QUEUE_SIZE)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._idle = threading.Condition()
        self._unfinished = 0
        self.attempts = 0
        self.delivered = 0
        self.given_up = 0

    def enqueue(self, server: Server, message: EmailMessage) -> bool:
        """Queue one message; False (and one log line) when the queue is full."""
        self._ensure_thread()
        with self._idle:
            self._unfinished += 1
        try:
            self._queue.put_nowait((server, message))
        except queue.Full:
            self._finished()
            log.warning("mail queue full (%d messages): e-mail not queued", QUEUE_SIZE)
            return False
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued message is delivered or given up (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def _ensure_thread(self) -> None:
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive()
            if alive and self._pid == os.getpid():
                return
            if self._thread is None:
                # A clean exit (SIGTERM, a recycled worker) gives the queue a moment to drain.
                atexit.register(self.wait_idle, EXIT_GRACE_SECONDS)
            self._pid = os.getpid()  # a forked child has the queue but not the thread
            self._thread = threading.Thread(target=self._run, name="smtp-sender", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            server, message = self._queue.get()
            try:
                self._send_with_retries(server, message)
            except Exception:  # never let one message stop the thread
                log.exception("mail sender: unexpected error")
            finally:
                self._finished()

    def _finished(self) -> None:
        with self._idle:
            self._unfinished -= 1
            self._idle.notify_all()

    def _send_with_retries(self, server: Server, message: EmailMessage) -> None:
        for attempt in range(1, server.max_attempts + 1):
            self.attempts += 1
            try:
                self._deliver(server, message)
            except Exception as exc:
                if not transient(exc) or attempt == server.max_attempts:
                    self.given_up += 1
                    # The class only: a reply can echo the message (and its token) back.
                    log.warning(
                        "could not send e-mail via %s:%d after %d attempt(s): %s",
                        server.host,
                        server.port,
                        attempt,
                        type(exc).__name__,
                    )
                    return
                pause = min(MAX_BACKOFF, server.retry_base * 2 ** (attempt - 1))
                self._sleep(pause * random.uniform(0.8, 1.2))  # noqa: S311 - jitter only
            else:
                self.delivered += 1
                return


_sender = Sender()


def sender() -> Sender:
    """The process-wide sender."""
    return _sender


def enqueue(config: Mapping[str, Any], message: EmailMessage) -> bool:
    """Queue ``message`` for the SMTP server the config names; True once queued."""
    return _sender.enqueue(Server.from_config(config), message)
