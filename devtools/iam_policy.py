"""The IAM policies in deploy/iam/: read their actions, and check them (``make lint``).

    python -m devtools.iam_policy deploy/iam/*.json     # prints each problem, exit 1 if any

A policy is checked for what a reviewer would otherwise have to spot by eye: valid JSON, the
2012-10-17 language, Allow statements only, every action a real DynamoDB action spelled as
IAM spells it (no wildcards), and every resource the app's table, its indexes or its stream
(no ``*``). The recording test (tests/support/iam_recorder.py) reads the actions from here.
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session

ROOT = Path(__file__).resolve().parent.parent
APP_POLICY = ROOT / "deploy" / "iam" / "app-policy.json"
OPERATOR_POLICY = ROOT / "deploy" / "iam" / "operator-policy.json"

# IAM actions that are no API operation: a transaction's ConditionCheck is authorised by its
# own action (the transaction's Put/Update/Delete/Get by PutItem/UpdateItem/DeleteItem/GetItem).
_IAM_ONLY_ACTIONS = {"ConditionCheckItem"}
# ... and the transactions themselves are no IAM action at all.
_NOT_IAM_ACTIONS = {"TransactWriteItems", "TransactGetItems"}
# The table itself, its indexes, its stream; the placeholders are replaced at deploy time
# (docs/operations.md) or, in deploy/table.yaml, by the table's ARN.
_RESOURCE = re.compile(r"^arn:aws:dynamodb:[^:*]+:[^:*]+:table/[^/*]+(/index/\*|/stream/\*)?$")


@cache
def known_actions() -> frozenset[str]:
    """Every ``dynamodb:`` action: the DynamoDB and DynamoDB Streams operations botocore
    knows (both services share IAM's ``dynamodb`` prefix), and the IAM-only ones."""
    session = botocore.session.get_session()
    names = set(_IAM_ONLY_ACTIONS)
    for service in ("dynamodb", "dynamodbstreams"):
        names.update(session.get_service_model(service).operation_names)
    return frozenset(f"dynamodb:{name}" for name in names - _NOT_IAM_ACTIONS)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in _as_list(document.get("Statement", [])) if isinstance(s, dict)]


def actions(document: dict[str, Any]) -> set[str]:
    """The actions a policy document allows."""
    return {
        action
        for statement in statements(document)
        if statement.get("Effect") == "Allow"
        for action in _as_list(statement.get("Action", []))
    }


def load_actions(path: Path) -> set[str]:
    return actions(json.loads(path.read_text()))


def problems(path: Path) -> list[str]:
    """What is wrong with the policy at ``path``, one line each; empty when it is fine."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return [f"{path}: not readable JSON ({exc})"]
    found: list[str] = []
    if document.get("Version") != "2012-10-17":
        found.append(f"{path}: Version must be 2012-10-17 (the older language lacks variables)")
    if not statements(document):
        found.append(f"{path}: no statements")
    for number, statement in enumerate(statements(document), start=1):
        where = f"{path}: statement {number}"
        if statement.get("Effect") != "Allow":
            found.append(f"{where}: only Allow statements are expected")
        for action in _as_list(statement.get("Action", [])):
            if action not in known_actions():
                found.append(f"{where}: {action!r} is not a DynamoDB action (no wildcards)")
        resources = _as_list(statement.get("Resource", []))
        if not resources:
            found.append(f"{where}: no Resource")
        for resource in resources:
            if not isinstance(resource, str) or not _RESOURCE.match(resource):
                found.append(f"{where}: {resource!r} is not the table, its indexes or stream")
    return found


def main(paths: list[str]) -> int:
    found = [line for path in paths for line in problems(Path(path))]
    for line in found:
        print(line, file=sys.stderr)  # noqa: T201 - a command-line check
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
