"""Which worker a job goes to: `least_loaded` (default) or `shard` (a triangle sticks to one worker).

`shard` keeps per-triangle state warm in one process (the worker's pre-built request templates,
its symbol rules, the CPU caches that hold them): each triangle has a home worker chosen by
rendezvous hashing (highest blake2b score of ``triangle id + worker index``). That choice is
stable across restarts and hosts, and when a worker is down only *its* triangles move (to their
second-best worker), the others keep their home. A home worker with `spill` or more executions
in flight is passed over for the least-loaded one, so one hot shard never queues behind itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

from shared.pool import Member

__all__ = ["ROUTINGS", "shard_choice", "shard_home"]

ROUTINGS = ("least_loaded", "shard")
MemberT = TypeVar("MemberT", bound=Member)


def _score(triangle_id: str, index: int) -> int:
    digest = hashlib.blake2b(f"{triangle_id}\x00{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def shard_home(ready: Sequence[MemberT], triangle_id: str) -> MemberT:
    """The triangle's home among `ready` (non-empty): the same answer for the same set of indices."""
    return max(ready, key=lambda member: _score(triangle_id, member.index))


def shard_choice(ready: Sequence[MemberT], triangle_id: str, spill: int) -> MemberT | None:
    """The triangle's home among `ready` while it has fewer than `spill` executions in flight; None
    when there is no ready worker or the home is that busy (the pool then takes its least-loaded)."""
    if not ready:
        return None
    home = shard_home(ready, triangle_id)
    return home if home.load < spill else None
