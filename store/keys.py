"""Every key string of the table, in one place.

The table has string keys ``PK`` (hash) and ``SK`` (range) and two global secondary indexes:

* ``ByUser`` (``GSI1PK``, ``GSI1SK``): a person's workspace memberships ("my workspaces").
* ``ByCreated`` (``PK``, ``createdAt``): a workspace's items newest first. It reuses the
  attributes every item already has, so a migrated v1 item needs nothing added to be listed.

No other module builds a key; see docs/data-model.md for the entity and access-pattern charts.
"""

from __future__ import annotations

import hashlib

PK = "PK"
SK = "SK"
GSI1PK = "GSI1PK"
GSI1SK = "GSI1SK"
BY_USER_INDEX = "ByUser"
BY_CREATED_INDEX = "ByCreated"
CREATED_AT = "createdAt"
# Unix epoch seconds; DynamoDB's TTL deletes the row some time after (up to ~48 h) this moment,
# so every reader also compares it with the clock itself.
TTL_ATTRIBUTE = "expiresAt"

# --- v1 (legacy) rows, read by the migration and written only by `legacy seed` ---------------
V1_ITEM_PREFIX = "ITEM#"
V1_ITEM_SK = "ITEM"
V1_SETTINGS_PK = "SETTINGS"
V1_MEMBERS_PK = "MEMBERS"

# --- accounts, shared by v1 and v2 ------------------------------------------------------------
USER_PREFIX = "USER#"
PROFILE_SK = "PROFILE"
EMAIL_PREFIX = "EMAIL#"
EMAIL_SK = "EMAIL"
PREFS_SK = "PREFS"
SESSION_PREFIX = "SESSION#"
REVOKED_SK = "REVOKED"
LOGIN_FAILURES_PREFIX = "LOGINFAIL#"
LOGIN_BACKOFF_SK = "BACKOFF"
LOGIN_DEVICE_PREFIX = "DEVICE#"
LOGIN_CLIENT_PREFIX = "LOGINCLIENT#"
WINDOW_PREFIX = "WINDOW#"
# A session's row under its account (listing, "sign out other sessions"); not the
# ``SESSION#<sid>`` revocation row above, which the request path reads.
USER_SESSION_PREFIX = "SESSION#"
# Single-use tokens mailed to a person: one purpose per token (the SK), stored hashed.
ACCOUNT_TOKEN_PREFIX = "ACCOUNTTOKEN#"  # noqa: S105 - a key prefix
RATE_LIMIT_PREFIX = "LIMIT#"

# --- v2 workspaces ----------------------------------------------------------------------------
WORKSPACE_PREFIX = "WORKSPACE#"
WORKSPACE_SK = "WORKSPACE"
MEMBER_PREFIX = "MEMBER#"
ITEM_PREFIX = "ITEM#"
SETTING_PREFIX = "SET#"
INVITE_PREFIX = "INVITE#"
# A row people deleted in v2 leaves this behind (``GONE#<its SK>``), so a late v1 write can
# tell a v2 delete from a row never copied (see docs/data-model.md, "What people changed").
TOMBSTONE_PREFIX = "GONE#"
# Key prefixes, not secrets.
INVITE_TOKEN_PREFIX = "INVITETOKEN#"  # noqa: S105
INVITE_TOKEN_SK = "INVITETOKEN"  # noqa: S105

# --- the migration ----------------------------------------------------------------------------
MIGRATION_PK = "MIGRATION"
MIGRATION_FLAG_SK = "V2_COMPLETE"
MIGRATION_CLAIM_SK = "CLAIM"
MIGRATION_FENCE_PREFIX = "FENCE#"
MIGRATION_KEPT_PREFIX = "KEPT#"
MIGRATION_CONFLICT_PREFIX = "CONFLICT#"
MIGRATION_SYNC_SK = "SYNC"
MIGRATION_SYNC_LEASE_SK = "SYNC_LEASE"
MIGRATION_SHARD_PREFIX = "SHARD#"

Key = dict[str, dict[str, str]]


def key(pk: str, sk: str) -> Key:
    """A raw (low-level client) primary key."""
    return {PK: {"S": pk}, SK: {"S": sk}}


def v1_item(item_id: str) -> Key:
    return key(V1_ITEM_PREFIX + item_id, V1_ITEM_SK)


def v1_setting(name: str) -> Key:
    return key(V1_SETTINGS_PK, name)


def v1_member(user_id: str) -> Key:
    return key(V1_MEMBERS_PK, user_id)


def user(user_id: str) -> Key:
    return key(USER_PREFIX + user_id, PROFILE_SK)


def user_prefs(user_id: str) -> Key:
    return key(USER_PREFIX + user_id, PREFS_SK)


def email(address: str) -> Key:
    return key(EMAIL_PREFIX + address, EMAIL_SK)


def revoked_session(session_id: str) -> Key:
    return key(SESSION_PREFIX + session_id, REVOKED_SK)


def user_session(user_id: str, session_id: str) -> Key:
    return key(USER_PREFIX + user_id, USER_SESSION_PREFIX + session_id)


def account_token(purpose: str, token_hash: str) -> Key:
    """A mailed token's row: looked up by its SHA-256 and the purpose it was made for, so a
    confirmation link can never serve as a reset link."""
    return key(ACCOUNT_TOKEN_PREFIX + token_hash, purpose.upper())


def rate_limit(kind: str, subject: str, window: int) -> Key:
    return key(f"{RATE_LIMIT_PREFIX}{kind}#{subject}", f"{WINDOW_PREFIX}{window}")


def login_backoff(address: str, device: str | None = None) -> Key:
    """Consecutive failed sign-ins for one (normalised) address: the per-account backoff, or
    that of one browser which signed in to it before (a device cookie)."""
    sk = f"{LOGIN_DEVICE_PREFIX}{device}" if device else LOGIN_BACKOFF_SK
    return key(LOGIN_FAILURES_PREFIX + address, sk)


def login_client(client: str, window: int) -> Key:
    """Failed sign-ins from one client address in one fixed window."""
    return key(LOGIN_CLIENT_PREFIX + client, f"{WINDOW_PREFIX}{window}")


def workspace_pk(workspace_id: str) -> str:
    return WORKSPACE_PREFIX + workspace_id


def workspace(workspace_id: str) -> Key:
    return key(workspace_pk(workspace_id), WORKSPACE_SK)


def member(workspace_id: str, user_id: str) -> Key:
    return key(workspace_pk(workspace_id), MEMBER_PREFIX + user_id)


def member_index_keys(workspace_id: str, user_id: str) -> dict[str, dict[str, str]]:
    """The ByUser index attributes a member row carries."""
    return {GSI1PK: {"S": USER_PREFIX + user_id}, GSI1SK: {"S": workspace_pk(workspace_id)}}


def item(workspace_id: str, item_id: str) -> Key:
    return key(workspace_pk(workspace_id), ITEM_PREFIX + item_id)


def setting(workspace_id: str, name: str) -> Key:
    return key(workspace_pk(workspace_id), SETTING_PREFIX + name)


def invite(workspace_id: str, invite_id: str) -> Key:
    return key(workspace_pk(workspace_id), INVITE_PREFIX + invite_id)


def invite_token(token_hash: str) -> Key:
    return key(INVITE_TOKEN_PREFIX + token_hash, INVITE_TOKEN_SK)


def migration_flag() -> Key:
    return key(MIGRATION_PK, MIGRATION_FLAG_SK)


def migration_claim() -> Key:
    return key(MIGRATION_PK, MIGRATION_CLAIM_SK)


def migration_fence(writer: int) -> Key:
    """The row one migration writer's copies are conditioned on (one per writer, so no two
    concurrent transactions include the same item)."""
    return key(MIGRATION_PK, f"{MIGRATION_FENCE_PREFIX}{writer}")


def migration_kept(kind: str, v1_pk: str, v1_sk: str) -> Key:
    """The record of one v1 row kept back from the copy. Keyed by a hash, since the v1 key
    itself may be the one too long for v2."""
    digest = hashlib.sha256(f"{kind}|{v1_pk}|{v1_sk}".encode()).hexdigest()
    return key(MIGRATION_PK, MIGRATION_KEPT_PREFIX + digest)


def migration_conflict(kind: str, v1_pk: str, v1_sk: str) -> Key:
    """The record of one late v1 write that v2 refused (the row was changed in v2)."""
    digest = hashlib.sha256(f"{kind}|{v1_pk}|{v1_sk}".encode()).hexdigest()
    return key(MIGRATION_PK, MIGRATION_CONFLICT_PREFIX + digest)


def migration_sync() -> Key:
    """Where late v1 writes stand: the stream being followed, what is covered."""
    return key(MIGRATION_PK, MIGRATION_SYNC_SK)


def migration_sync_lease() -> Key:
    """Which process applies late v1 writes by itself now (one at a time)."""
    return key(MIGRATION_PK, MIGRATION_SYNC_LEASE_SK)


def migration_shard(shard_id: str) -> Key:
    """How far one stream shard has been applied."""
    return key(MIGRATION_PK, MIGRATION_SHARD_PREFIX + shard_id)


def tombstone(row_key: Key) -> Key:
    """The tombstone of a workspace row (item, setting, member) people deleted in v2."""
    return key(row_key[PK]["S"], TOMBSTONE_PREFIX + row_key[SK]["S"])


def suffix(value: str, prefix: str) -> str:
    """The id after a key prefix, e.g. the item id in ``ITEM#abc``."""
    if not value.startswith(prefix):
        raise ValueError(f"{value!r} does not start with {prefix!r}")
    return value[len(prefix) :]


# --- appended for workspaces (issue 4) ---------------------------------------------------------


def by_user_pk(user_id: str) -> str:
    """The ByUser index hash key value of a person's member rows."""
    return USER_PREFIX + user_id


def item_start_key(workspace_id: str, item_id: str, created_at: str) -> Key:
    """An ExclusiveStartKey for the ByCreated index: the table key plus the index key."""
    return {**item(workspace_id, item_id), CREATED_AT: {"S": created_at}}


# --- invite limits and workspace lifecycle (issue 11) --------------------------------------------

INVITE_RATE_PREFIX = "INVITERATE#"


def invite_rate(scope: str, subject_id: str, window_seconds: int, window: int) -> Key:
    """One window of an invite counter: ``scope`` is ``person`` or ``workspace``."""
    return key(
        f"{INVITE_RATE_PREFIX}{scope}#{subject_id}", f"{WINDOW_PREFIX}{window_seconds}#{window}"
    )
