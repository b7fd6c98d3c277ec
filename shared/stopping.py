"""A process's stop, told to its background loops by a flag as well as by cancelling them.

Cancelling alone does not stop a loop for certain: redis-py 8.1 can swallow a cancel that lands
inside a call: the call returns normally and the cancel is gone (seen in about 1 of 1000 random
cancels of `publish_status` against a real redis-server). A
``while True`` loop that lost its cancel runs on for ever, and the process's stop (and
`asyncio.run`'s own clean-up) waits on it: that hung CI. So every background loop waits through
`Stopping.pause()`, which ends the loop once the stop is set, whatever became of the cancel.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Stopping"]


class Stopping:
    """Set once, when the owner stops; its loops end at their next pause."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def pause(self, seconds: float) -> bool:
        """Wait `seconds`, less if the stop comes first: True while the loop should go on."""
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), seconds)
        return not self._event.is_set()
