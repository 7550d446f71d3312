"""The one form base every blueprint's validators return: what was typed, and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Form:
    """``values`` as the person typed them (so a form with errors comes back as they left
    it), ``errors`` by field name (``"form"`` for the form as a whole)."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors
