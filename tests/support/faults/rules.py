"""The faults set on one target (which calls, how answered) and the calls held in flight."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.support.faults.targets import Target
from tests.support.faults.wire import Answer


@dataclass
class Window:
    """Which calls a fault applies to: ``times`` calls (None: all) after the first ``after``;
    ``hit`` counts the calls it applied to."""

    after: int = 0
    times: int | None = None
    seen: int = 0
    hit: int = 0

    def next_call(self) -> bool:
        self.seen += 1
        past = self.seen - self.after
        if past > 0 and (self.times is None or past <= self.times):
            self.hit += 1
            return True
        return False


@dataclass
class Cancel:
    reasons: tuple[str, ...]
    window: Window
    each: int | None
    bodies: Counter[str] = field(default_factory=Counter)


@dataclass
class Refuse:
    """Answer calls with a DynamoDB error the proxy makes up (nothing is forwarded)."""

    status: int
    code: str
    message: str
    window: Window


@dataclass
class Lose:
    """Forward calls, let them be carried out, then lose the answer: ``how`` is ``close``
    (the connection closes with no answer) or ``500`` (an InternalServerError instead)."""

    how: str
    window: Window


@dataclass
class Rule:
    delay: float = 0.0
    throttle: tuple[str, Window] | None = None
    refuse: Refuse | None = None
    lose: Lose | None = None
    cancel: Cancel | None = None
    keep: tuple[float, Window] | None = None
    partial: int = 0
    hold: Hold | None = None
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True)
class Decision:
    targets: tuple[str, ...]
    delay: float = 0.0
    throttle: str | None = None
    cancel: tuple[str, ...] | None = None
    keep: float | None = None
    rule: str | None = None
    rng: random.Random | None = None
    hold: Hold | None = None
    refuse: Refuse | None = None
    lose: str | None = None


class Hold:
    """Calls of one target caught in flight: the proxy keeps them (unanswered, not forwarded)
    until ``release()``, as a stalled network would. ``close()`` stops catching new calls while
    the caught ones stay held. ``bodies`` are the caught requests' JSON bodies; ``answers``,
    how each caught call was answered once released (in the order they were answered)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._open = True
        self.bodies: list[dict[str, Any]] = []
        self.answers: list[Answer] = []

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.bodies)

    def answered(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def close(self) -> None:
        with self._lock:
            self._open = False

    def release(self) -> None:
        self.close()
        self._released.set()

    def _catch(self, body: bytes) -> bool:
        with self._lock:
            if not self._open:
                return False
            self.bodies.append(json.loads(body) if body else {})
            return True

    def _wait(self, timeout: float) -> None:
        self._released.wait(timeout)

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)
