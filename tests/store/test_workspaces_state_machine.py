"""A Hypothesis state machine over invites and membership, against the real store code.

Rules: invite, accept (by the right or the wrong person), revoke, let time pass beyond the
expiry, change a role, remove a member. After every step the table is compared with a simple
model, and the invariants hold: at least one owner (and ``ownerCount`` equal to the owners);
a revoked or expired invite is never accepted; an invite is accepted at most once; every
member is the creator or joined through an invite they accepted themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from store import invites, keys
from store import workspaces as ws
from store.db import Database

PEOPLE = [(f"user-{i}", f"user{i}@example.com") for i in range(4)]
ROLES = ["member", "admin", "owner"]
WEEK = 7 * 24 * 3600


@dataclass
class ModelInvite:
    invite_id: str
    token: str
    email: str
    role: str
    expires_at: float
    state: str = "pending"
    accepted_by: str = ""


def machine_for(database: Database) -> type[RuleBasedStateMachine]:
    class InvitesAndMembers(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            creator_id, creator_email = PEOPLE[0]
            self.workspace = ws.create_workspace(database, "Machine", creator_id, creator_email)
            self.creator = creator_id
            self.members = {creator_id: "owner"}
            self.invites: list[ModelInvite] = []
            self.now = time.time()

        def fresh_workspace(self) -> ws.Workspace:
            row = database.get(keys.workspace(self.workspace.workspace_id), consistent=True)
            assert row is not None
            return ws.workspace_from_row(row)

        # --- rules ------------------------------------------------------------------------

        @rule(person=st.sampled_from(PEOPLE), role=st.sampled_from(["member", "admin"]))
        def invite(self, person: tuple[str, str], role: str) -> None:
            made, token, replaced = invites.create_invite(
                database,
                self.workspace.workspace_id,
                email=person[1],
                role=role,
                invited_by=self.creator,
                lifetime_seconds=WEEK,
                now=self.now,
            )
            earlier = [
                i
                for i in self.invites
                if i.email == person[1] and i.state == "pending" and i.expires_at > self.now
            ]
            assert replaced == len(earlier)
            for old in earlier:
                old.state = "revoked"
            self.invites.append(
                ModelInvite(made.invite_id, token, person[1], role, made.expires_at)
            )

        @precondition(lambda self: self.invites)
        @rule(which=st.integers(min_value=0), person=st.sampled_from(PEOPLE))
        def accept(self, which: int, person: tuple[str, str]) -> None:
            target = self.invites[which % len(self.invites)]
            user_id, email = person
            usable = target.state == "pending" and target.expires_at > self.now
            if not usable:
                expected = (
                    "already"
                    if target.state == "accepted" and target.accepted_by == user_id
                    else "unusable"
                )
            elif email != target.email:
                expected = "wrong"
            elif user_id in self.members:
                expected = "already"
            else:
                expected = "joined"
            try:
                invites.accept(database, target.token, user_id=user_id, email=email, now=self.now)
                outcome = "joined"
            except invites.InviteUnusable:
                outcome = "unusable"
            except invites.WrongAccount:
                outcome = "wrong"
            except invites.AlreadyMember:
                outcome = "already"
            assert outcome == expected
            if outcome == "joined":
                target.state, target.accepted_by = "accepted", user_id
                self.members[user_id] = target.role

        @precondition(lambda self: self.invites)
        @rule(which=st.integers(min_value=0))
        def revoke(self, which: int) -> None:
            target = self.invites[which % len(self.invites)]
            done = invites.revoke(database, self.workspace.workspace_id, target.invite_id)
            assert done == (target.state == "pending")
            if done:
                target.state = "revoked"

        @rule()
        def time_passes_beyond_the_expiry(self) -> None:
            self.now += WEEK + 1

        @rule(person=st.sampled_from(PEOPLE), role=st.sampled_from(ROLES))
        def change_role(self, person: tuple[str, str], role: str) -> None:
            user_id = person[0]
            if user_id not in self.members:
                return
            current = self.members[user_id]
            owners = sum(1 for r in self.members.values() if r == "owner")
            try:
                ws.change_role(database, self.fresh_workspace(), user_id, current, role)
            except ws.LastOwner:
                assert current == "owner" and role != "owner" and owners == 1
                return
            assert not (current == "owner" and role != "owner" and owners == 1)
            self.members[user_id] = role

        @rule(person=st.sampled_from(PEOPLE))
        def remove(self, person: tuple[str, str]) -> None:
            user_id = person[0]
            if user_id not in self.members:
                return
            current = self.members[user_id]
            owners = sum(1 for r in self.members.values() if r == "owner")
            try:
                ws.remove_member(database, self.fresh_workspace(), user_id, current)
            except ws.LastOwner:
                assert current == "owner" and owners == 1
                return
            assert not (current == "owner" and owners == 1)
            del self.members[user_id]

        # --- invariants -------------------------------------------------------------------

        @invariant()
        def the_table_matches_the_model_and_keeps_an_owner(self) -> None:
            stored = ws.list_members(database, self.workspace.workspace_id)
            assert {m.user_id: m.role for m in stored} == self.members
            owners = sum(1 for m in stored if m.role == "owner")
            assert owners >= 1
            assert self.fresh_workspace().owner_count == owners

        @invariant()
        def invites_are_accepted_at_most_once_and_never_when_revoked_or_expired(self) -> None:
            stored = {
                i.invite_id: i for i in invites.list_invites(database, self.workspace.workspace_id)
            }
            for model in self.invites:
                row = stored[model.invite_id]
                assert row.state == model.state
                assert row.accepted_by == model.accepted_by
            rows = database.query_all(
                KeyConditionExpression="PK = :pk AND begins_with(SK, :m)",
                ExpressionAttributeValues={
                    ":pk": {"S": keys.workspace_pk(self.workspace.workspace_id)},
                    ":m": {"S": keys.MEMBER_PREFIX},
                },
                ConsistentRead=True,
            )
            used = [row["inviteId"]["S"] for row in rows if "inviteId" in row]
            assert len(used) == len(set(used))
            for row in rows:
                user_id = keys.suffix(row["SK"]["S"], keys.MEMBER_PREFIX)
                if "inviteId" not in row:
                    assert user_id == self.creator
                    continue
                invite = stored[row["inviteId"]["S"]]
                assert invite.state == "accepted" and invite.accepted_by == user_id
                # It was accepted while pending and before its expiry (the model enforced
                # both when it said "joined"); a revoked or expired one never gets here.

    return InvitesAndMembers


def test_invites_and_membership_keep_their_invariants(database, backend):
    machine = machine_for(database)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25 if backend == "moto" else 10,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
