"""The mail an account receives: confirmation and reset links, and notices of changes.

Subjects are fixed text (no name, address or other user input goes into a subject). Links
use ``PUBLIC_URL``; in development without it, the server's own address (as invites do).
"""

from __future__ import annotations

import logging

from flask import current_app, request, url_for

from store import limits
from store.db import get_db
from web import mail

log = logging.getLogger(__name__)
SITE = "Team app"


class NoPublicUrl(Exception):
    """Production without PUBLIC_URL: no trustworthy origin for a link."""


def link(endpoint: str, **values: str) -> str:
    public = current_app.config.get("PUBLIC_URL")
    if public:
        origin = str(public).rstrip("/")
    elif current_app.config.get("APP_ENV") == "development":
        origin = request.host_url.rstrip("/")
    else:
        raise NoPublicUrl
    return origin + url_for(endpoint, **values)


def wait_before_mailing(kind: str, subject: str) -> int:
    """Count one mailed link of ``kind`` for ``subject`` (an account id or an address);
    seconds to wait when over the limit, else 0."""
    config = current_app.config
    return limits.take(
        get_db(),
        kind,
        subject,
        limit=config["MAIL_LINK_LIMIT"],
        window_seconds=int(config["MAIL_LINK_WINDOW"].total_seconds()),
    )


def _send(to: str, subject: str, body: str) -> bool:
    return mail.send(current_app.config, to=to, subject=subject, body=body)


def _days(name: str) -> str:
    lifetime = current_app.config[name]
    hours = int(lifetime.total_seconds() // 3600)
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"


def _link_or_none(endpoint: str, token: str) -> str | None:
    try:
        return link(endpoint, token=token)
    except NoPublicUrl:
        log.warning("cannot mail a link: PUBLIC_URL is not set")
        return None


def _link_mail(to: str, endpoint: str, token: str, subject: str, text: str) -> bool:
    """Mail ``text`` with the link to ``endpoint`` for ``token`` put in for ``{url}``."""
    url = _link_or_none(endpoint, token)
    return url is not None and _send(to, subject, text.format(url=url))


def confirmation(to: str, token: str) -> bool:
    return _link_mail(
        to,
        "account.confirm",
        token,
        f"Confirm your e-mail address for {SITE}",
        "Please confirm that this is your e-mail address by opening this link "
        f"(it works once, for {_days('CONFIRM_LIFETIME')}):\n{{url}}\n\n"
        "Until you do, you can sign in but cannot join or invite to a workspace.\n"
        "If you did not create an account, you can ignore this message.\n",
    )


def email_change(to: str, token: str) -> bool:
    return _link_mail(
        to,
        "account.confirm_email_change",
        token,
        f"Confirm your new e-mail address for {SITE}",
        "Someone signed in to your account asked to use this address from now on. Open this "
        f"link to confirm it (it works once, for {_days('EMAIL_CHANGE_LIFETIME')}):\n{{url}}\n\n"
        "If that was not you, ignore this message: nothing changes without the link.\n",
    )


def reset(to: str, token: str) -> bool:
    return _link_mail(
        to,
        "account.reset_password",
        token,
        f"Reset your {SITE} password",
        "Someone (we hope you) asked to reset the password of the account with this address. "
        f"Open this link to choose a new one (it works once, for {_days('RESET_LIFETIME')}):\n"
        "{url}\n\nIf you did not ask, ignore this message: your password stays as it is.\n",
    )


def notice(to: str, what: str) -> bool:
    """Tell the account's address that something changed (password, address)."""
    return _send(
        to,
        f"Your {SITE} account was changed",
        f"{what}\n\nIf this was not you, reset your password at once from the sign-in page "
        '("Forgot your password?") and tell whoever runs this site.\n',
    )
