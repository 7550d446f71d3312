"""Sending e-mail: ``send`` builds one plain-text message and hands it on.

With ``SMTP_HOST`` set, the message is queued for the SMTP sender thread
(``web/smtp_sender.py``: STARTTLS, optional login, retries) and ``send`` answers at once:
True means *queued*, not delivered, so callers show whatever the mail carries (an invite
link) on the page as well. Without it, the message is written to the outbox folder
(``web/outbox.py``, listed at ``/dev/mail`` in development). Messages are never logged: an
invite's body holds its token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from flask import Flask

from web import outbox, smtp_sender

log = logging.getLogger(__name__)

# Subjects are fixed texts chosen by the caller: never a workspace or person's name, which
# anyone can choose and would then appear, unquoted, in someone's inbox as if from us.


def configured(config: Mapping[str, Any]) -> bool:
    return bool(config.get("SMTP_HOST"))


def _message(config: Mapping[str, Any], to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.get("SMTP_FROM") or "teamapp@localhost"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message.set_content(body)
    return message


def send(config: Mapping[str, Any], *, to: str, subject: str, body: str) -> bool:
    """Queue one message for SMTP, or write it to the outbox; True when that succeeded."""
    message = _message(config, to, subject, body)
    if not configured(config):
        return outbox.deliver(config, message)
    return send_smtp(config, message)


def send_smtp(config: Mapping[str, Any], message: EmailMessage) -> bool:
    """The SMTP path: queue for the sender thread (never waits for the server)."""
    return smtp_sender.enqueue(config, message)


def init_app(app: Flask) -> None:
    """Pick the outbox folder; outside development, say once at start that mail is off."""
    outbox.init_app(app)
    if app.config.get("APP_ENV") != "development" and not configured(app.config):
        log.warning(
            "SMTP_HOST is not set: no e-mail reaches anyone. Invites show their link for the "
            "inviter to copy; address confirmations and password resets cannot be mailed "
            "(they are written to %s only). Set SMTP_HOST (and SMTP_PORT, SMTP_FROM).",
            app.config["MAIL_OUTBOX"],
        )
