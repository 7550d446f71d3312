"""Sending e-mail: over SMTP when ``SMTP_HOST`` is configured, else into the outbox folder
(``web.outbox``, listed at ``/dev/mail`` in development).

Only what an invite needs: one plain-text message per call, a short timeout so a slow mail
server cannot hold a page for long, and failures reported to the caller (who then shows the
link to copy) rather than raised. Messages are never logged: an invite's body holds its token.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from web import outbox

log = logging.getLogger(__name__)
SMTP_TIMEOUT = 10.0


def configured(config: Mapping[str, Any]) -> bool:
    return bool(config.get("SMTP_HOST"))


def send(config: Mapping[str, Any], *, to: str, subject: str, body: str) -> bool:
    """Send one message; True when the server accepted it (or, without SMTP_HOST, when it
    is in the outbox folder)."""
    if not configured(config):
        return outbox.deliver(config, to=to, subject=subject, body=body)
    message = EmailMessage()
    message["From"] = config.get("SMTP_FROM") or "teamapp@localhost"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    try:
        with smtplib.SMTP(
            config["SMTP_HOST"], int(config.get("SMTP_PORT") or 25), timeout=SMTP_TIMEOUT
        ) as smtp:
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        # The class only: an SMTP reply can echo parts of the message back.
        log.warning("could not send e-mail via %s: %s", config["SMTP_HOST"], type(exc).__name__)
        return False
    return True
