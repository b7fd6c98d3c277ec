"""The executor pool contract: what the supervisor calls, whichever shape executes its jobs.

Two pools implement `Pool`: `supervisor.dispatch.WorkerPool` (worker processes) and
`worker.inline.InlinePool` (`--workers 0`, jobs run in the supervisor's own event loop). The
supervisor is handed one and never asks which, as aiomultiprocess's `Pool` is handed a
`Scheduler`. The contract lives in shared/ because `worker/` may not import `supervisor/`.

A pool knows which executor runs which job (`Member.in_flight`), for `pick()`'s load and for
`cancel()`; the supervisor's own table of what it holds leases for is `Admission`'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from shared.channel import Done, Job
from shared.settings import Settings

__all__ = ["Member", "OnDone", "OnLost", "Pool", "PoolFactory"]

OnDone = Callable[[Done], None]
"""Called once per finished execution, in the supervisor's event loop."""
OnLost = Callable[[int, list[str], str], Awaitable[None]]
"""(member index, correlation ids it held, why): executions whose executor died before Done."""


@dataclass(eq=False, kw_only=True)
class Member:
    """One executor of a pool: a worker process, or the inline executor."""

    index: int
    pid: int = 0
    # Correlation ids dispatched to it and not yet done: an ordered set (a dict's keys), so the
    # executions of a member that died are reported lost in the order they were dispatched.
    in_flight: dict[str, None] = field(default_factory=dict)

    @property
    def load(self) -> int:
        return len(self.in_flight)


MemberT = TypeVar("MemberT", bound=Member)


class Pool(Protocol[MemberT]):
    """Start, route, cancel and stop; `pick()` then `dispatch()` with no await between them."""

    respawns: int

    @property
    def workers(self) -> list[MemberT]: ...

    @property
    def alive(self) -> int: ...

    async def start(self, ready_timeout_s: float = 60.0) -> None:
        """Open every executor and return once each can take jobs."""

    async def wait_alive(self, count: int, timeout_s: float) -> None:
        """Wait until `count` executors are ready (raises TimeoutError past `timeout_s`)."""

    def pick(self, triangle_id: str | None = None) -> MemberT | None:
        """The executor the next job (of that triangle, if given: sharded routing) goes to; None when none is ready."""

    def dispatch(self, member: MemberT, job: Job) -> None:
        """Hand `job` to `member` (a `pick()` result); its end comes back through `OnDone`."""

    def cancel(self, correlation_id: str) -> bool:
        """Ask the executor running this job to stop at its next step; False if none runs it."""

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Let running jobs finish and report (cut off past `timeout_s`), then close everything."""


PoolFactory = Callable[[Settings, int, str, OnDone, OnLost], "Pool[Any]"]
"""How the supervisor builds its pool: (settings, worker count, host, on_done, on_lost)."""
