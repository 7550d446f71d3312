"""A pytest plugin that checks deploy/iam/ against every DynamoDB call the suite makes.

A botocore ``before-parameter-build`` handler (added to botocore's built-in handlers, so
every client any fixture or the app builds has it) records each DynamoDB and DynamoDB Streams
operation in this process with the IAM actions it needs and who made it:

* ``operator``: inside one of the operator commands (``cli.py``,
  ``blueprints/migration/commands.py``). click's current context marks them: every
  command runs inside it, so production code needs no marker of its own.
* ``app``: production code during a request, or in a thread started from a request or from
  such a thread (the migration runner, its heartbeat and writers).
* ``harness``: the test's own calls (a fixture creating a table, a test seeding v1 rows with
  ``put_item``, reading rows back), and production code a test calls directly, outside any
  request or command (``ensure_table`` in the table fixture). Not checked.

At the end it fails the run, naming the operation and the first test that made it, when an
app call needs an action deploy/iam/app-policy.json does not grant, or an operator call one
operator-policy.json does not. On a whole-suite run (no file, ``-k``, ``-m`` or deselection,
every test run, none failed) it also fails when a policy grants an action nothing used.
Calls made by other processes (gunicorn under the live-server tests) are not seen; the same
code runs in process in the other tests.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import botocore.handlers
import click
import flask
import pytest

from devtools import iam_policy

APP, OPERATOR, HARNESS = "app", "operator", "harness"
ROOT = Path(__file__).resolve().parents[2]
# Where the operator commands are defined; a click context of one of them marks its calls.
OPERATOR_MODULES = frozenset({"cli", "blueprints.migration.commands"})
# A transaction is authorised per action inside it (there is no TransactWriteItems action).
_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
_EVENTS = ("before-parameter-build.dynamodb", "before-parameter-build.dynamodb-streams")
# Actions a backend never lets the code reach, so their grant cannot be shown used there.
UNREACHABLE = {
    "local": {
        "dynamodb:UpdateContinuousBackups": "DynamoDB Local has no backups: db init stops at "
        "DescribeContinuousBackups",
    },
}
_ORIGIN = "_iam_recorder_origin"  # set on a thread: who started it (app or operator)
_NOT_PROJECT = tuple(str(ROOT / name) for name in (".venv", "node_modules"))


def iam_actions(operation: str, params: dict[str, Any]) -> list[str]:
    """The IAM actions one API call needs."""
    if operation == "TransactWriteItems":
        return sorted(
            {
                _TRANSACT_ACTIONS[kind]
                for action in params.get("TransactItems", [])
                for kind in action
                if kind in _TRANSACT_ACTIONS
            }
        )
    if operation == "TransactGetItems":
        return ["dynamodb:GetItem"]
    return [f"dynamodb:{operation}"]


@dataclass(frozen=True)
class Example:
    operation: str
    test: str


@dataclass
class Recorder:
    """Who needed which action, with the first call that needed it."""

    examples: dict[tuple[str, str], Example] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, who: str, operation: str, params: dict[str, Any], test: str) -> None:
        with self.lock:
            self.calls[who] += 1
            for action in iam_actions(operation, params):
                self.examples.setdefault((who, action), Example(operation, test))

    def used(self, who: str) -> set[str]:
        return {action for caller, action in self.examples if caller == who}

    def problems(
        self,
        policies: dict[str, tuple[str, set[str]]],
        *,
        whole_run: bool,
        unreachable: frozenset[str] = frozenset(),
    ) -> list[str]:
        """``policies``: who → (the policy's file name, its actions); ``unreachable``: actions
        whose use this backend cannot show."""
        found = []
        for (who, action), example in sorted(self.examples.items()):
            if who not in policies or action in policies[who][1]:
                continue
            name = policies[who][0]
            found.append(
                f"{who} called {example.operation}, which needs {action}; {name} does not "
                f"grant it (first in {example.test})"
            )
        if whole_run:
            for who, (name, granted) in sorted(policies.items()):
                for action in sorted(granted - self.used(who) - unreachable):
                    found.append(f"{name} grants {action}, which no {who} call used in this run")
        return found


# --- who made a call ---------------------------------------------------------------------


_PLACES: dict[str, str | None] = {}  # a code file → its project folder (None: not ours)


def _place(filename: str) -> str | None:
    """The project folder (``store``, ``tests``...) a code file lives in; None outside the
    project and for this file. Remembered: every DynamoDB call walks its whole stack."""
    if filename not in _PLACES:
        ours = filename.startswith(str(ROOT)) and not filename.startswith(_NOT_PROJECT)
        path = Path(filename).relative_to(ROOT) if ours else None
        mine = path == Path(__file__).relative_to(ROOT)
        _PLACES[filename] = path.parts[0] if path is not None and not mine else None
    return _PLACES[filename]


def _innermost_project_place(frame: FrameType | None) -> str | None:
    """The project folder of the code nearest the call: the code that asked for it."""
    while frame is not None:
        place = _place(frame.f_code.co_filename)
        if place is not None:
            return place
        frame = frame.f_back
    return None


def _origin() -> str | None:
    """app or operator when this thread runs for one of them, else None."""
    context = click.get_current_context(silent=True)
    callback = getattr(context.command, "callback", None) if context else None
    if callback is not None and callback.__module__ in OPERATOR_MODULES:
        return OPERATOR
    if flask.has_request_context():
        return APP
    origin: str | None = getattr(threading.current_thread(), _ORIGIN, None)
    return origin


def who_called(frame: FrameType | None) -> str:
    place = _innermost_project_place(frame)
    if place is None or place in ("tests", "devtools"):
        return HARNESS
    return _origin() or HARNESS


# --- the plugin --------------------------------------------------------------------------

RECORDER = pytest.StashKey[Recorder]()
HANDLER = pytest.StashKey[Any]()
_current_test = ["(before the first test)"]
_tests_run = [0]


def _handler(recorder: Recorder) -> Any:
    def on_call(params: dict[str, Any], model: Any, **_: Any) -> None:
        try:
            who = who_called(sys._getframe(1))
            recorder.record(who, model.name, params, _current_test[0])
        except Exception as exc:  # noqa: BLE001 - a recorder must never break a test
            recorder.record(HARNESS, f"(not recorded: {exc!r})", {}, _current_test[0])

    return on_call


def _thread_start_remembering_origin(start: Any) -> Any:
    """Thread.start that notes on the new thread whether an app or operator started it:
    contextvars and click's context do not follow a thread, and the runner's do the app's work."""

    def started(self: threading.Thread) -> None:
        try:
            setattr(self, _ORIGIN, _origin())
        except Exception:  # noqa: S110 - never stop a thread from starting: it stays untagged
            pass
        start(self)

    return started


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("iam", "IAM policy check (tests/support/iam_recorder.py)")
    group.addoption(
        "--iam-report",
        action="store_true",
        help="list every action each caller used, with the first test that used it",
    )
    group.addoption(
        "--iam-unused",
        action="store_true",
        help="also fail on granted but unused actions in a partial run",
    )
    group.addoption(
        "--iam-record",
        metavar="PATH",
        help="write what this run used, for `python -m tests.support.iam_recorder union`",
    )


def pytest_configure(config: pytest.Config) -> None:
    recorder = Recorder()
    config.stash[RECORDER] = recorder
    handler = config.stash[HANDLER] = _handler(recorder)
    botocore.handlers.BUILTIN_HANDLERS.extend((event, handler) for event in _EVENTS)
    original_start = threading.Thread.start
    threading.Thread.start = _thread_start_remembering_origin(original_start)  # type: ignore[method-assign]
    config.add_cleanup(lambda: setattr(threading.Thread, "start", original_start))
    config.add_cleanup(lambda: _remove_handlers(botocore.handlers.BUILTIN_HANDLERS, handler))


def _remove_handlers(handlers: list[Any], handler: Any) -> None:
    handlers[:] = [entry for entry in handlers if entry[1] is not handler]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    _current_test[0] = item.nodeid
    yield
    _tests_run[0] += 1


def _run_part(session: pytest.Session) -> dict[str, Any]:
    """Which part of the suite this run was: the paths it was given and ignored, and whether
    every test it collected ran and passed with nothing else narrowing it (``-k``, ``-m``,
    a deselection, ``--lf``, ``--sw``, ``-x`` stopping it, ``--collect-only``)."""
    config = session.config
    narrowed = any(
        config.getoption(name, None)
        for name in ("keyword", "markexpr", "deselect", "lf", "stepwise")
    )
    interrupted = session.shouldstop or session.shouldfail
    all_ran = _tests_run[0] == len(session.items) > 0
    ignored = [
        *(config.getoption("ignore", None) or []),
        *(config.getoption("ignore_glob", None) or []),
    ]
    return {
        "args": sorted(str(Path(arg.split("::")[0]).resolve()) for arg in config.args),
        "ignored": sorted(str(Path(path).resolve()) for path in ignored),
        "complete": not narrowed and all_ran and not interrupted and not session.testsfailed,
    }


def _covers_the_suite(parts: list[dict[str, Any]]) -> bool:
    """Whether complete parts together ran every test: one part over the whole tree, and
    each path it ignored given whole to another part (``make test``'s two DynamoDB Local
    runs), or a single part over the whole tree ignoring nothing."""
    whole = {str(ROOT), str(ROOT / "tests")}
    if not parts or not all(part["complete"] for part in parts):
        return False
    given = {arg for part in parts if not part["ignored"] for arg in part["args"]}
    for part in parts:
        if set(part["args"]) <= whole and all(
            any(path == arg or path.startswith(arg + "/") for arg in given)
            for path in part["ignored"]
        ):
            return True
    return False


def _whole_run(session: pytest.Session) -> bool:
    """Every test of the suite ran and passed: only then is an unused action a finding."""
    return _covers_the_suite([_run_part(session)])


def policies() -> dict[str, tuple[str, set[str]]]:
    return {
        APP: (iam_policy.APP_POLICY.name, iam_policy.load_actions(iam_policy.APP_POLICY)),
        OPERATOR: (
            iam_policy.OPERATOR_POLICY.name,
            iam_policy.load_actions(iam_policy.OPERATOR_POLICY),
        ),
    }


PROBLEMS = pytest.StashKey[tuple[list[str], bool]]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    whole = _whole_run(session) or bool(session.config.getoption("iam_unused"))
    unreachable = frozenset(UNREACHABLE.get(session.config.getoption("--backend"), {}))
    found = session.config.stash[RECORDER].problems(
        policies(), whole_run=whole, unreachable=unreachable
    )
    session.config.stash[PROBLEMS] = (found, whole)
    record = session.config.getoption("iam_record")
    if record:
        recorder = session.config.stash[RECORDER]
        Path(record).write_text(
            json.dumps(
                {
                    "backend": session.config.getoption("--backend"),
                    **_run_part(session),
                    "used": {who: sorted(recorder.used(who)) for who in (APP, OPERATOR)},
                },
                indent=1,
            )
        )
    if found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if PROBLEMS not in config.stash or config.option.collectonly:
        return
    found, whole = config.stash[PROBLEMS]
    recorder = config.stash[RECORDER]
    counts = ", ".join(f"{recorder.calls[who]} {who}" for who in (APP, OPERATOR, HARNESS))
    if config.getoption("iam_report"):
        terminalreporter.section("DynamoDB actions used, by caller")
        for (who, action), example in sorted(recorder.examples.items()):
            terminalreporter.write_line(
                f"{who:<9} {action:<34} {example.operation:<20} {example.test}"
            )
    scope = "granted and used" if whole else "granted (a partial run: unused not checked)"
    if whole:
        for action, why in UNREACHABLE.get(config.getoption("--backend"), {}).items():
            terminalreporter.write_line(f"IAM policies: {action} not checked for use ({why})")
    if not found:
        terminalreporter.write_line(f"IAM policies: every call {scope} ({counts} calls)")
        return
    terminalreporter.section("IAM policies (deploy/iam/, tests/support/iam_recorder.py)", red=True)
    for line in found:
        terminalreporter.write_line(line, red=True)
    terminalreporter.write_line(f"({counts} calls recorded; see deploy/iam/README.md)")


def union(paths: list[str]) -> list[str]:
    """The unused-grant check over runs that split the suite between them (their records
    from ``--iam-record``); problems found, or a reason it cannot tell."""
    parts = [json.loads(Path(path).read_text()) for path in paths]
    backends = {part["backend"] for part in parts}
    if len(backends) != 1:
        return [f"the records come from different backends: {sorted(backends)}"]
    if not _covers_the_suite(parts):
        return ["these runs did not together run the whole suite, every test passing"]
    recorder = Recorder()
    for part in parts:
        for who, actions in part["used"].items():
            for action in actions:
                recorder.examples.setdefault((who, action), Example("", ""))
    unreachable = frozenset(UNREACHABLE.get(backends.pop(), {}))
    return recorder.problems(policies(), whole_run=True, unreachable=unreachable)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "union":
        sys.stderr.write("usage: python -m tests.support.iam_recorder union RECORD.json...\n")
        return 2
    found = union(argv[1:])
    for line in found:
        sys.stderr.write(f"IAM policies: {line}\n")
    if not found:
        sys.stdout.write(f"IAM policies: every grant used across {len(argv) - 1} runs\n")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
