"""Operator commands: ``flask --app app db init``, ``legacy seed``, ``migration ...``."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from blueprints.auth import passwords
from blueprints.migration.commands import migration_cli
from store import capabilities, schema
from store.db import get_db
from store.migration import legacy

db_cli = AppGroup("db", help="Create or upgrade the DynamoDB table.")
legacy_cli = AppGroup("legacy", help="v1 data: a demo data set for development and tests.")


@db_cli.command("init")
def db_init() -> None:
    """Create the table if missing, or add what v2 needs to a v1 table; rows are untouched."""
    database = get_db()
    done = schema.ensure_table(database.client, database.table, report=click.echo, stream=True)
    for line in done or ["nothing to do"]:
        click.echo(line)
    # Checked on every run, not only at creation: a deploy may move the app to another server.
    server = capabilities.check(database.client, database.table)
    if not server.ready:
        click.echo("refusing: this server cannot run v2; it lacks:", err=True)
        for missing in server.missing:
            click.echo(f"  - {missing}", err=True)
        sys.exit(2)
    for note in server.optional:
        click.echo(f"optional: {note}")
    click.echo(f"table {database.table} is ready")


@legacy_cli.command("seed")
@click.option("--items", default=100, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--settings", default=5, show_default=True, type=click.IntRange(0, 1000))
@click.option("--members", default=4, show_default=True, type=click.IntRange(1, 1000))
@click.option("--if-empty", is_flag=True, help="Do nothing if the table already holds data.")
@click.option("--seed", type=int, default=None, help="Random seed, for repeatable data.")
def legacy_seed(items: int, settings: int, members: int, if_empty: bool, seed: int | None) -> None:
    """Write a v1 data set (accounts, members, settings, items) into the configured table."""
    database = get_db()
    if if_empty and legacy.has_data(database):
        click.echo("the table already holds data; not seeding")
        return
    # v1 hashed with werkzeug's pbkdf2; the first sign-in upgrades it to today's method.
    v1_hash = passwords.hash_password(legacy.DEMO_PASSWORD, "pbkdf2:sha256:260000")
    rows, accounts = legacy.build_dataset(items, settings, members, v1_hash, seed=seed)
    legacy.write_rows(database, rows)
    click.echo(f"wrote {items} items, {settings} settings, {members} members to {database.table}")
    click.echo(f"password for every account: {legacy.DEMO_PASSWORD}")
    for account in accounts:
        click.echo(f"  {account.email:<24} {account.name:<16} {account.role or 'not a member'}")


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(legacy_cli)
    app.cli.add_command(migration_cli)
