"""DynamoDB Local on loopback only: the compiled launcher that sets the Jetty host.

``DynamoDBLocal.jar`` has no bind option and, run with ``-jar``, listens on every interface
(accepting any credentials). ``DynamoDBLocalLoopback.java`` beside this file builds the server
from the same arguments as the jar's own main class and sets the Jetty connector's host before
starting it. It is compiled once per version of its source with ``java -m jdk.compiler`` (part
of the Java 17 runtime, no JDK needed) into a per-user cache folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "DynamoDBLocalLoopback.java"
MAIN_CLASS = SOURCE.stem
HOST = "127.0.0.1"
COMPILE_TIMEOUT = 120.0


class LauncherError(RuntimeError):
    """The launcher could not be compiled; the message says why."""


def _cache_root() -> Path:
    configured = os.environ.get("XDG_CACHE_HOME", "").strip()
    return Path(configured) if configured else Path.home() / ".cache"


def launcher(java: str) -> Path:
    """The folder holding the compiled loopback launcher, compiling it on first use.

    The cache is per user (never a shared /tmp, where someone else could plant a class) and
    keyed by the source's hash, so an edited launcher is compiled again.
    """
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    parent = _cache_root() / "teamapp"
    target = parent / f"dynamodb-local-loopback-{digest}"
    if (target / f"{MAIN_CLASS}.class").is_file():
        return target
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=parent))
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [java, "-m", "jdk.compiler/com.sun.tools.javac.Main", "-d", str(building)]
            + ["-nowarn", str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=COMPILE_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise LauncherError(
                "could not compile the loopback launcher for DynamoDB Local (the Java runtime "
                f"needs the jdk.compiler module, as Debian's openjdk-17-jre-headless has):\n"
                f"{result.stdout}{result.stderr}"
            )
        with contextlib.suppress(OSError):  # another process finished first: use theirs
            os.rename(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target
