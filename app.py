"""The application factory: ``flask --app app run`` and ``gunicorn 'app:create_app()'``."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from flask import Flask

import cli
import web
from config import ConfigError, load_config
from store import db as store_db

log = logging.getLogger(__name__)
APP_LOAD_ERROR = 4


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment; ``test_config`` overrides it in tests."""
    app = Flask(__name__, instance_relative_config=True)
    overrides = dict(test_config or {})
    client = overrides.pop("DYNAMODB_CLIENT", None)
    try:
        app.config.update(load_config())
    except ConfigError as exc:
        # Exit status 4 is gunicorn's "app failed to load": the arbiter halts instead of
        # booting new workers forever; flask's CLI just exits non-zero.
        print(f"teamapp: {exc}", file=sys.stderr)  # noqa: T201 - the one line an operator reads
        raise SystemExit(APP_LOAD_ERROR) from None
    app.config.update(overrides)

    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _development_secret(Path(app.instance_path))
    if client is None and app.config["DYNAMODB_EMBEDDED"]:
        app.config["DYNAMODB_ENDPOINT"] = _embedded_endpoint(Path(app.instance_path))

    store_db.init_app(app, client)
    web.init_app(app)
    cli.init_app(app)
    register_blueprints(app)
    return app


def register_blueprints(app: Flask) -> None:
    from blueprints.auth import account, confirm, reset  # noqa: F401 - they attach views
    from blueprints.auth.account_blueprint import bp as account_bp
    from blueprints.auth.routes import bp as auth_bp
    from blueprints.dev.routes import bp as dev_bp
    from blueprints.main.routes import bp as main_bp
    from blueprints.migration import runner as migration_runner
    from blueprints.migration.routes import bp as migration_bp
    from blueprints.workspaces.routes import bp as workspaces_bp

    migration_runner.init_app(app)
    app.register_blueprint(migration_bp)
    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(workspaces_bp)
    app.register_blueprint(dev_bp)


def _development_secret(instance: Path) -> str:
    """One random secret per checkout, shared by every local process (workers, reloader);
    only its owner can read it (folder 0700, file 0600)."""
    from devtools.embedded_db import private_dir

    path = instance / "secret_key"
    private_dir(instance)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _embedded_endpoint(instance: Path) -> str:
    from devtools import embedded_db

    server = embedded_db.ensure_embedded(instance)
    log.info("using embedded %s at %s", server.kind, server.endpoint)
    return server.endpoint
