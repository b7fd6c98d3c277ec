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

__all__ = ["ROUTINGS", "route", "shard_home"]

ROUTINGS = ("least_loaded", "shard")
MemberT = TypeVar("MemberT", bound=Member)


def _score(triangle_id: str, index: int) -> int:
    digest = hashlib.blake2b(f"{triangle_id}\x00{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _least_loaded(ready: Sequence[MemberT]) -> MemberT:
    """Ties go to the lowest index (the order given), keeping one worker warm when the fleet is idle."""
    best = ready[0]
    for member in ready[1:]:
        if member.load < best.load:
            best = member
    return best


def shard_home(ready: Sequence[MemberT], triangle_id: str) -> MemberT:
    """The triangle's home among `ready` (non-empty): the same answer for the same set of indices."""
    return max(ready, key=lambda member: _score(triangle_id, member.index))


def route(ready: Sequence[MemberT], triangle_id: str | None, routing: str, spill: int) -> MemberT | None:
    """The member the next job goes to, among the `ready` ones (None if there are none)."""
    if not ready:
        return None
    if routing == "shard" and triangle_id is not None:
        home = shard_home(ready, triangle_id)
        if home.load < spill:
            return home
    return _least_loaded(ready)
