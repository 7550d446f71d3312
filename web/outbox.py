"""Mail without an SMTP server: each message becomes one ``.eml`` file in a folder.

Without ``SMTP_HOST`` nothing can reach a person's inbox, so ``web.mail.send`` hands the
message here instead (``MAIL_OUTBOX``, default ``instance/mail/``). In development the
``/dev/mail`` page lists the folder, so every flow that mails a link (invites, address
confirmation, password resets) can be followed end to end on a laptop. Outside development
the start logs that mail is not delivered, naming the setting that fixes it.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)

# Names are "<nanoseconds>-<random>.eml": sorting them sorts by time, and a name that does
# not match can never be read (no path tricks through the message id).
_MESSAGE_ID = re.compile(r"^[0-9]{19,20}-[0-9a-f]{8}$")
SUFFIX = ".eml"


@dataclass(frozen=True)
class StoredMail:
    message_id: str
    to: str
    subject: str
    sent_at: str
    body: str


def folder(config: Mapping[str, Any]) -> Path:
    return Path(config["MAIL_OUTBOX"])


def deliver(config: Mapping[str, Any], message: EmailMessage) -> bool:
    """Write one message to the outbox folder; True once it is there in full."""
    target = folder(config)
    name = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
    try:
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = target / f".{name}.tmp"
        # Readers list only complete files: write aside, then rename into place.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes(policy=policy.SMTP))
        partial.replace(target / (name + SUFFIX))
    except OSError as exc:
        log.warning("could not write mail to the outbox folder: %s", type(exc).__name__)
        return False
    return True


def _parse(path: Path) -> StoredMail:
    with path.open("rb") as handle:
        message = BytesParser(policy=policy.default).parse(handle)
    assert isinstance(message, EmailMessage)  # noqa: S101 - policy.default makes one
    part = message.get_body(("plain",))
    return StoredMail(
        message_id=path.stem,
        to=str(message.get("To", "")),
        subject=str(message.get("Subject", "")),
        sent_at=str(message.get("Date", "")),
        body=part.get_content() if part is not None else "",
    )


def list_mail(config: Mapping[str, Any], limit: int = 200) -> list[StoredMail]:
    """The newest ``limit`` messages, newest first."""
    try:
        paths = list(folder(config).iterdir())

    except FileNotFoundError:
        return []
    names = sorted(
        (p for p in paths if p.suffix == SUFFIX and _MESSAGE_ID.match(p.stem)), reverse=True
    )
    return [_parse(path) for path in names[:limit]]


def read_mail(config: Mapping[str, Any], message_id: str) -> StoredMail | None:
    if not _MESSAGE_ID.match(message_id):
        return None
    path = folder(config) / (message_id + SUFFIX)
    try:
        return _parse(path)
    except FileNotFoundError:
        return None


def init_app(app: Flask) -> None:
    """Choose the folder: ``instance/mail`` unless ``MAIL_OUTBOX`` says otherwise."""
    if not app.config.get("MAIL_OUTBOX"):
        app.config["MAIL_OUTBOX"] = str(Path(app.instance_path) / "mail")
