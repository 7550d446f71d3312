"""``flask --app app migration status | verify | sync | cleanup``: the operator's view of the
move.

Exit codes scripts can use: 0 all good, 1 differences found or rows kept (``status``: rows
kept back from the copy; ``sync``: late v1 writes in conflict with v2), 2 refused (for example:
nothing has been migrated yet).
"""

from __future__ import annotations

import sys
from collections import Counter

import click
from flask.cli import AppGroup

from store.db import Database, get_db
from store.migration import check
from store.migration.catchup import catch_up
from store.migration.claim import STATE_COMPLETE, STATE_FAILED, STATE_WAITING, Claim, read_claim
from store.migration.conflicts import read_conflicts
from store.migration.flag import read_flag
from store.migration.kept import SHOWN_KEPT, read_kept
from store.migration.lease import reset_for_retry
from store.migration.sync import find_target
from store.migration.v1 import count_v1

migration_cli = AppGroup("migration", help="Inspect, verify and clean up the v1 → v2 move.")
SHOWN_PER_VERDICT = 50
# Verdicts that are no problem: people changed the row in v2 since the copy, and v2 wins.
_BY_DESIGN = (check.IDENTICAL, check.CHANGED_IN_V2, check.DELETED_IN_V2)


def _printable(value: str) -> str:
    """A key as an operator's terminal can show it: control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)


def _key(pk: str, sk: str) -> str:
    return f"{_printable(pk)} / {_printable(sk)}"


def _workspace_and_time() -> tuple[str | None, str | None, bool]:
    db = get_db()
    flag = read_flag(db)
    if flag is not None:
        return flag.workspace_id, flag.migrated_at, True
    claim = read_claim(db)
    return (claim.workspace_id if claim else None), None, False


@migration_cli.command("status")
def status() -> None:
    """Show the flag, the claim, and the v1 and v2 counts."""
    db = get_db()
    flag = read_flag(db)
    claim = read_claim(db)
    if flag is None:
        click.echo("flag: not written (the migration has not finished)")
    else:
        click.echo(
            f"flag: written {flag.migrated_at} by user {flag.migrated_by}, took "
            f"{flag.duration_ms} ms; items={flag.items} settings={flag.settings} "
            f"members={flag.members} kept back={flag.kept_back}"
        )
    if claim is None:
        click.echo("claim: none")
    else:
        total = claim.items_total if claim.items_total is not None else "?"
        click.echo(
            f"claim: {claim.state}, phase {claim.phase}, attempt {claim.attempt}, workspace "
            f"{claim.workspace_id}, items {claim.items_copied}/{total}"
            + (f", last error: {claim.last_error}" if claim.last_error else "")
        )
        _failure_lines(claim)
    v1 = count_v1(db)
    click.echo(f"v1 rows: items={v1['items']} settings={v1['settings']} members={v1['members']}")
    workspace_id = (flag and flag.workspace_id) or (claim and claim.workspace_id)
    if workspace_id:
        v2 = check.v2_counts(db, workspace_id)
        click.echo(
            f"v2 rows in {workspace_id}: items={v2['items']} settings={v2['settings']} "
            f"members={v2['members']}"
        )
    _show_abandoned(db)
    if _show_kept(db):
        sys.exit(1)


def _show_abandoned(db: Database) -> None:
    """The partitions of abandoned attempts: copies nobody sees, which cleanup deletes."""
    for partition in check.abandoned_partitions(db):
        click.echo(
            f"abandoned attempt: {partition.workspace_id} holds {partition.rows} copies "
            "nobody sees (`migration cleanup` deletes them)"
        )


def _clean_abandoned(db: Database, dry_run: bool) -> None:
    for partition in check.abandoned_partitions(db):
        if dry_run:
            click.echo(f"delete abandoned attempt {partition.workspace_id}: {partition.rows} rows")
            continue
        deleted = check.delete_abandoned(db, partition.workspace_id)
        click.echo(f"deleted abandoned attempt {partition.workspace_id}: {deleted} rows")


def _show_kept(db: Database) -> int:
    """List the rows kept back from the copy (the first SHOWN_KEPT); return how many."""
    kept, total = read_kept(db, limit=SHOWN_KEPT)
    lines = []
    for row in kept:
        cut = f" (cut short; the whole key is {row.key_bytes} bytes)" if row.shortened else ""
        lines.append(f"{row.kind} {_key(row.v1_pk, row.v1_sk)}{cut}: {_printable(row.reason)}")
    return _listing(
        "kept back", total, "v1 rows v2 cannot store as they are (they stay in v1)", lines
    )


def _listing(label: str, total: int, what: str, lines: list[str]) -> int:
    """Print ``label: none``, or the total with what it counts and the lines shown, and how
    many more there are; return ``total``."""
    if not total:
        click.echo(f"{label}: none")
        return 0
    click.echo(f"{label}: {total} {what}")
    for line in lines:
        click.echo(f"  {line}")
    if total > len(lines):
        click.echo(f"  ... and {total - len(lines)} more")
    return total


def _failure_lines(claim: Claim) -> None:
    """The claim's failure state for the operator (the reason is never shown to people)."""
    if claim.state == STATE_COMPLETE:
        return  # done: an old backoff or reason would only mislead
    click.echo(
        f"failures in a row: {claim.failures}; next attempt: "
        + (claim.next_attempt_at or "at the next request")
    )
    if claim.failed_reason:
        click.echo(f"failure reason: {claim.failed_reason}")
    if claim.state == STATE_FAILED:
        click.echo(
            "the migration has stopped on a permanent error; fix the cause, then run "
            "`flask --app app migration retry`"
        )


@migration_cli.command("retry")
def retry() -> None:
    """Start again after a failure: a failed or waiting claim is due now, failures cleared."""
    db = get_db()
    claim = read_claim(db)
    if claim is None or claim.state not in (STATE_FAILED, STATE_WAITING):
        state = "no migration has started" if claim is None else f"the claim is {claim.state}"
        click.echo(f"nothing to retry: {state}", err=True)
        sys.exit(2)
    if not reset_for_retry(db, claim):
        click.echo("the claim changed meanwhile; run `migration status` and try again", err=True)
        sys.exit(2)
    click.echo("retry: the next request or progress poll starts the migration again")


@migration_cli.command("verify")
def verify() -> None:
    """Compare every v1 row with its v2 copy; list what is missing or different."""
    workspace_id, migrated_at, flagged = _workspace_and_time()
    if workspace_id is None:
        click.echo("nothing to verify: no migration has started", err=True)
        sys.exit(2)
    verdicts: Counter[str] = Counter()
    for row in check.compare(get_db(), workspace_id, migrated_at):
        verdicts[row.verdict] += 1
        if row.verdict != check.IDENTICAL and verdicts[row.verdict] <= SHOWN_PER_VERDICT:
            reason = f" ({_printable(row.reason)})" if row.reason else ""
            click.echo(f"{row.verdict}: {row.kind} {_key(*row.v1_key)}{reason}")
    click.echo(
        "summary: " + (", ".join(f"{verdicts[v]} {v}" for v in sorted(verdicts)) or "no v1 rows")
    )
    if not flagged:
        click.echo("note: the flag is not written yet; the migration is still in progress")
    problems = sum(c for v, c in verdicts.items() if v not in _BY_DESIGN)
    conflicts = _show_conflicts(get_db())
    sys.exit(1 if problems or conflicts or not flagged else 0)


def _show_conflicts(db: Database) -> int:
    """List late v1 writes refused because people changed the row in v2; return how many."""
    shown, total = read_conflicts(db, limit=SHOWN_KEPT)
    lines = [
        f"{conflict.kind} {_key(conflict.v1_pk, conflict.v1_sk)}: v1 {conflict.action} "
        f"at {conflict.at}, the row was {conflict.v2_state}"
        for conflict in shown
    ]
    return _listing(
        "conflicts", total, "late v1 writes not applied (v2 wins; the v1 row stays)", lines
    )


@migration_cli.command("sync")
@click.option("--full", is_flag=True, help="Compare every row instead of reading the stream.")
def sync(full: bool) -> None:
    """Apply v1 writes that landed after the copy; exit 1 when some are in conflict."""
    db = get_db()
    target = find_target(db)
    if target is None:
        if read_flag(db) is None:
            click.echo("refusing: the migration flag is not written yet", err=True)
            sys.exit(2)
        click.echo("nothing to sync: there was no v1 data")
        return
    done = catch_up(db, target, full=full)
    click.echo(f"read from: {done.via}" + (f" ({done.why})" if done.why else ""))
    tally = done.tally
    click.echo(
        f"applied {tally.applied} late v1 writes; {tally.unchanged} already in v2; "
        f"{tally.kept} kept back"
    )
    if tally.left:
        click.echo(f"{len(tally.left)} rows kept changing while applied: run sync again")
    conflicts = _show_conflicts(db)
    sys.exit(1 if conflicts or tally.left else 0)


@migration_cli.command("cleanup")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
def cleanup(dry_run: bool) -> None:
    """Delete v1 rows whose v2 copy is verified identical, and the copies abandoned attempts
    left in partitions nobody sees; refuses before the flag."""
    db = get_db()
    flag = read_flag(db)
    if flag is None:
        click.echo("refusing: the migration flag is not written yet", err=True)
        sys.exit(2)
    if flag.workspace_id is None:
        click.echo("nothing to clean up: there was no v1 data")
        return
    _clean_abandoned(db, dry_run)
    target = find_target(db)
    if not dry_run and target is not None:
        # Late v1 writes first: a row whose latest v1 write is not in v2 is not deleted.
        applied = catch_up(db, target).tally
        click.echo(f"applied {applied.applied} late v1 writes first")
    outcomes: Counter[str] = Counter()
    for row in check.compare(db, flag.workspace_id, flag.migrated_at):
        label = f"{row.kind} {_key(*row.v1_key)}"
        if row.verdict != check.IDENTICAL:
            outcomes[f"kept: {row.verdict}"] += 1
            click.echo(f"keep   {label} ({row.verdict})")
            continue
        if dry_run:
            outcomes["would delete"] += 1
            click.echo(f"delete {label}")
            continue
        outcome = check.delete_if_unchanged(db, row.v1)
        outcomes[outcome] += 1
        if outcome != "deleted":
            click.echo(f"{outcome}: {label}")
    click.echo(
        "summary: " + (", ".join(f"{c} {o}" for o, c in sorted(outcomes.items())) or "no v1 rows")
    )
    if dry_run:
        click.echo("dry run: nothing was deleted")
    sys.exit(1 if any(o.startswith("kept") for o in outcomes) else 0)
