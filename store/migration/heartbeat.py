"""The holder's heartbeat and the fence it keeps: copying continues only while a heartbeat
confirmed within half a lease proves the claim is this run's. A heartbeat whose answer was
lost is recognised as our own by the version it carried, so a lost answer never costs the
lease; connection errors never stop the beating (the fence stops the copy if they last)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from store.db import Database, condition_failed, error_code, new_id, now_iso

from .claim import Progress, Run
from .errors import Aborted, LostClaim
from .lease import publish, refused_claim

if TYPE_CHECKING:
    from .engine import Settings

log = logging.getLogger(__name__)

TAKEN_OVER = "another run took over the migration"


class Heartbeating:
    """The heartbeat of ``engine.Migration``, which provides the attributes below."""

    db: Database
    run: Run
    settings: Settings
    progress: Progress
    monotonic: Callable[[], float]
    wall: Callable[[], float]
    version: str
    confirmed_at: float
    unconfirmed: dict[str, float]
    lost: threading.Event
    lost_reason: str
    aborted: threading.Event
    stop_beating: threading.Event

    # The fence: copying continues only while a recent heartbeat proves the claim is ours.
    def check_fence(self) -> None:
        if self.aborted.is_set():
            raise Aborted("stopped because another part of the copy failed")
        if self.lost.is_set():
            raise LostClaim(self.lost_reason)
        if self.monotonic() - self.confirmed_at > self.settings.lease / 2:
            raise self.lose("no heartbeat confirmed for half a lease; stopping to be safe")

    def lose(self, reason: str) -> LostClaim:
        """Mark the claim lost; every part of the copy then stops with this same reason, so
        whichever part's failure is reported, the operator reads the first cause."""
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()
        return LostClaim(self.lost_reason)

    def heartbeat(self) -> bool:
        """Move the claim's version and publish progress; False once the claim is not ours.

        A heartbeat whose answer was lost (a timeout, a closed connection) may still have
        landed: its version is remembered with the moment it was sent, and when a later
        heartbeat is refused, the claim the refusal shows is recognised as our own if it
        carries one of those versions. A lost answer never costs the lease."""
        new_version = new_id()
        sent_at = self.monotonic()
        self.unconfirmed[new_version] = sent_at
        try:
            publish(
                self.db,
                self.run.run_id,
                self.version,
                new_version,
                self.progress,
                now_iso(self.wall),
            )
        except ClientError as exc:
            if condition_failed(exc):
                return self._recognise(exc)
            log.warning("migration heartbeat failed (%s); will retry", error_code(exc))
            return True
        except BotoCoreError as exc:
            log.warning("migration heartbeat got no answer (%s); will retry", exc)
            return True
        self._confirmed(new_version, self.monotonic())
        return True

    def _recognise(self, exc: ClientError) -> bool:
        try:
            found = refused_claim(self.db, exc)
        except (ClientError, BotoCoreError) as error:
            log.warning("migration heartbeat refused and the claim unreadable (%s)", error)
            return True  # the fence stops the copy if this lasts half a lease
        if found is not None and found.owner == self.run.run_id:
            sent_at = self.unconfirmed.get(found.version)
            if sent_at is not None:
                log.info("migration heartbeat: an answer was lost; the claim is still ours")
                self._confirmed(found.version, sent_at)
                return True
        self.lose(TAKEN_OVER)
        return False

    def _confirmed(self, version: str, since: float) -> None:
        """The claim is ours at ``version``, as of ``since`` (when that write was sent)."""
        self.version = version
        self.confirmed_at = max(self.confirmed_at, since)
        self.unconfirmed.clear()

    def _beat_forever(self) -> None:
        interval = min(self.settings.lease / 3, 1.0)
        while not self.stop_beating.wait(interval):
            try:
                if not self.heartbeat():
                    return
            except Exception:
                # Never die silently: the fence stops the copy if beats keep failing.
                log.exception("migration heartbeat failed; will retry")
