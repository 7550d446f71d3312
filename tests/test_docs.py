"""docs/data-model.md names the function behind each access pattern: every name must exist,
so a rename that forgets the map fails here instead of misleading the next reader."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DATA_MODEL = Path(__file__).resolve().parent.parent / "docs" / "data-model.md"
# `store/items.get_item` or `store/migration/claim.read_claim`, then optionally more names
# of the same module: `store/accounts.remember_workspace`, `last_workspace`.
NAMED = re.compile(r"`(store/[a-z_/]+)\.([A-Za-z_][\w.]*)`((?:, `[A-Za-z_]\w*`)*)")


def named_functions() -> list[tuple[str, str]]:
    found = []
    for match in NAMED.finditer(DATA_MODEL.read_text()):
        module = match.group(1).replace("/", ".")
        if match.group(2) == "py":  # a file, `store/keys.py`, not a function
            continue
        for name in [match.group(2), *re.findall(r"`(\w+)`", match.group(3))]:
            found.append((module, name))
    return found


@pytest.mark.backend_independent
def test_the_data_model_names_functions_and_each_one_exists():
    named = named_functions()
    assert len(named) >= 20, "the access-pattern charts should name their functions"
    missing = []
    for module_name, name in named:
        target: object = importlib.import_module(module_name)
        for part in name.split("."):
            if not hasattr(target, part):
                missing.append(f"{module_name}.{name}")
                break
            target = getattr(target, part)
    assert missing == []
