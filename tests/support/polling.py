"""Waiting on another process's state (a Redis node, a sentinel), where there is nothing to await."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis as syncredis

__all__ = ["poll_until"]


def poll_until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll `condition` until it is true; a Redis or socket error counts as not yet. Fails the test
    naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (syncredis.RedisError, OSError):
            pass
        time.sleep(0.05)  # other processes' state: nothing to wait on but polling
    raise AssertionError(f"{what} within {timeout_s}s")
