"""Changes a person makes to their own account: confirming the address, a new address, a
new password (by reset or on the account page), a new name.

Each change that spends a mailed token is one transaction with the token's deletion, so a
link works once however many times it is posted.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from . import keys
from .account_tokens import Ticket, spend_action
from .accounts import SESSION_GENERATION, UNCONFIRMED, EmailTaken, normalise_email
from .db import (
    Database,
    cancellation_reasons,
    condition_failed,
    error_code,
    n,
    now_iso,
    number,
    s,
    transact,
)
from .workspaces import memberships


class TokenUnusable(Exception):
    """The token was used, expired, or its account changed meanwhile: one error for all."""


def _profile_update(db: Database, user_id: str, expression: str, **values: Any) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": db.table,
        "Key": keys.user(user_id),
        "UpdateExpression": expression,
        "ConditionExpression": "attribute_exists(PK)",
    }
    if values:
        update["ExpressionAttributeValues"] = {f":{k}": s(v) for k, v in values.items()}
    return update


def _spend_with(db: Database, ticket: Ticket, actions: list[dict[str, Any]]) -> None:
    """Run ``actions`` together with spending ``ticket``; TokenUnusable if it was spent."""
    try:
        transact(db, [spend_action(db, ticket), *actions])
    except ClientError as exc:
        if error_code(exc) == "TransactionCanceledException":
            raise TokenUnusable from exc
        raise


def confirm_address(db: Database, ticket: Ticket) -> None:
    """Mark the address the mail went to as confirmed (if it is still the account's)."""
    update = _profile_update(
        db, ticket.user_id, f"REMOVE {UNCONFIRMED} SET emailConfirmedAt = :at", at=now_iso()
    )
    update["ConditionExpression"] = "attribute_exists(PK) AND email = :email"
    update["ExpressionAttributeValues"][":email"] = s(ticket.email)
    _spend_with(db, ticket, [{"Update": update}])


def change_email(db: Database, ticket: Ticket, old_email: str) -> None:
    """Move the account to the confirmed new address: the ``EMAIL#`` pointer moves in the
    same transaction, refused (EmailTaken) if another account took the address meanwhile.
    The copies of the address on membership rows follow."""
    new_email = normalise_email(ticket.email)
    user_id = ticket.user_id
    update = _profile_update(
        db,
        user_id,
        f"SET email = :new, emailConfirmedAt = :at REMOVE {UNCONFIRMED}",
        new=new_email,
        at=now_iso(),
    )
    update["ConditionExpression"] = "attribute_exists(PK) AND email = :old"
    update["ExpressionAttributeValues"][":old"] = s(old_email)
    actions = [
        spend_action(db, ticket),
        {
            "Delete": {
                "TableName": db.table,
                "Key": keys.email(old_email),
                "ConditionExpression": "userId = :user",
                "ExpressionAttributeValues": {":user": s(user_id)},
            }
        },
        {
            "Put": {
                "TableName": db.table,
                "Item": {**keys.email(new_email), "userId": s(user_id)},
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        },
        {"Update": update},
    ]
    try:
        transact(db, actions)
    except ClientError as exc:
        reasons = cancellation_reasons(exc)
        if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
            raise EmailTaken(new_email) from exc
        if error_code(exc) == "TransactionCanceledException":
            raise TokenUnusable from exc
        raise
    _copy_email_to_memberships(db, user_id, new_email)


def _copy_email_to_memberships(db: Database, user_id: str, email: str) -> None:
    for membership in memberships(db, user_id):
        try:
            db.client.update_item(
                TableName=db.table,
                Key=keys.member(membership.workspace_id, user_id),
                UpdateExpression="SET email = :email",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues={":email": s(email)},
            )
        except ClientError as exc:
            if not condition_failed(exc):  # left the workspace meanwhile: nothing to copy
                raise


def _password_update(db: Database, user_id: str, new_hash: str) -> dict[str, Any]:
    """Set the hash and move the session generation on: every session is signed out."""
    update = _profile_update(db, user_id, "SET passwordHash = :hash ADD #gen :one", hash=new_hash)
    update["ExpressionAttributeNames"] = {"#gen": SESSION_GENERATION}
    update["ExpressionAttributeValues"][":one"] = n(1)
    return update


def reset_password(db: Database, ticket: Ticket, new_hash: str) -> None:
    """Set a new password from a reset link and sign out every session of the account."""
    _spend_with(db, ticket, [{"Update": _password_update(db, ticket.user_id, new_hash)}])


def change_password(db: Database, user_id: str, seen_hash: str, new_hash: str) -> int | None:
    """Set a new password (the caller checked the current one, whose hash it saw) and sign
    out every session; the new session generation (for the caller's own session, re-issued),
    or None when the password changed meanwhile."""
    update = _password_update(db, user_id, new_hash)
    update["ConditionExpression"] = "attribute_exists(PK) AND passwordHash = :seen"
    update["ExpressionAttributeValues"][":seen"] = s(seen_hash)
    try:
        response = db.client.update_item(**update, ReturnValues="UPDATED_NEW")
    except ClientError as exc:
        if condition_failed(exc):
            return None
        raise
    return number(response["Attributes"], SESSION_GENERATION)


def change_name(db: Database, user_id: str, name: str) -> None:
    """A new display name. Membership rows hold no copy of it (the members page joins the
    profiles), so this one row is all there is to change."""
    db.client.update_item(
        **_profile_update(db, user_id, "SET #name = :name", name=name)
        | {"ExpressionAttributeNames": {"#name": "name"}}
    )
