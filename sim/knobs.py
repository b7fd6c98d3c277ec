"""Fault and behaviour knobs: what the simulator does differently from a healthy KuCoin.

Knobs are live state, changed while the server runs (Python: `sim.update_knobs(...)`, HTTP:
`POST /_sim/knobs`), so `Knobs` is a mutable dataclass rather than a frozen value. Faults prefer
"the next N calls" counters, which make tests deterministic; a probability is offered too, drawn
from the simulator's seeded RNG. A fault may be restricted to one path (exact, or a prefix
ending in `*`).

JSON accepted by `Knobs.update` (and `POST /_sim/knobs`), every key optional::

    {"latency_ms": 5, "jitter_ms": 2,
     "fail_5xx": {"next_n": 2, "probability": 0.0, "path": "/api/v1/hf/orders"},
     "hang": 1,                                  # an int is shorthand for {"next_n": 1}
     "hang_after_match": {"next_n": 1},
     "force_429": {"next_n": 3},
     "reject": {"next_n": 1, "code": "200004", "msg": null},
     "hang_after_match": {"next_n": 1, "client_oid": "t...-2"},  # any fault: one order only
     "consume_liquidity": false, "fee_inside_funds": false, "test_checks_balance": false,
     "order_not_exist_126043": false}

The private WebSocket's knobs (`WsKnobs`, steered with `sim.ws_hub.update_knobs(...)` or
`POST /_sim/ws/knobs`), every key optional::

    {"delay_ms": 5,                           # every push leaves this much later
     "drop": {"next_n": 1, "event": "filled"}, # the next N matching pushes are never sent
     "cut": {"next_n": 1, "event": "match"},   # instead of the next matching push, every
                                               # connection drops (that push and later ones are lost)
     "reorder": 1,                             # the next N orders' pushes go out in reverse order
     "withhold_welcome": 1,                    # the next N connections are never welcomed
     "ping_interval_ms": 18000, "ping_timeout_ms": 10000}   # what bullet-private advertises

`event` is an order event type (`received`, `match`, `filled`, `canceled`, `open`), `balance`,
or absent for any push. Both sets apply a change all or nothing: it is staged on a copy, and
only a change that is valid throughout replaces the live values.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, Self

from shared.kucoin.constants import INSUFFICIENT_BALANCE

__all__ = ["Fault", "Reject", "Knobs", "EventFault", "WsKnobs", "WS_EVENT_TYPES"]

WS_EVENT_TYPES = frozenset({"received", "match", "filled", "canceled", "open", "balance"})


@dataclass(slots=True)
class Fault:
    """Fires for the next `next_n` matching calls, else with `probability`. `client_oid`, when set,
    restricts it to order calls carrying that clientOid (concurrent orders on one path)."""

    next_n: int = 0
    probability: float = 0.0
    path: str | None = None
    client_oid: str | None = None

    def fires(self, request_path: str, rng: random.Random, client_oid: str | None = None) -> bool:
        """Whether this call is hit; a call on another path (or order) neither fires nor uses up the count."""
        if self.next_n <= 0 and self.probability <= 0.0:
            return False
        if self.client_oid is not None and client_oid != self.client_oid:
            return False
        if self.path is not None:
            if self.path.endswith("*"):
                if not request_path.startswith(self.path[:-1]):
                    return False
            elif request_path != self.path:
                return False
        if self.next_n > 0:
            self.next_n -= 1
            return True
        return rng.random() < self.probability

    def update(self, value: Any) -> None:
        """Apply an int (next N calls) or a mapping of this fault's fields."""
        if isinstance(value, bool) or not isinstance(value, (int, dict)):
            raise ValueError(f"a fault takes an int or an object, not {value!r}")
        if isinstance(value, int):
            self.next_n = value
            return
        for key, item in value.items():
            if key == "next_n":
                self.next_n = _as_int(key, item)
            elif key == "probability":
                self.probability = _as_probability(item)
            elif key == "path":
                if item is not None and not isinstance(item, str):
                    raise ValueError("path must be a string or null")
                self.path = item
            elif key == "client_oid":
                if item is not None and not isinstance(item, str):
                    raise ValueError("client_oid must be a string or null")
                self.client_oid = item
            else:
                self._update_extra(key, item)

    def _update_extra(self, key: str, value: Any) -> None:
        raise ValueError(f"unknown fault field {key!r}")


@dataclass(slots=True)
class Reject(Fault):
    """Order calls it hits answer `code` with KuCoin's message for it (or `msg` if set)."""

    code: str = INSUFFICIENT_BALANCE
    msg: str | None = None

    def _update_extra(self, key: str, value: Any) -> None:
        if key == "code":
            self.code = str(value)
        elif key == "msg":
            if value is not None and not isinstance(value, str):
                raise ValueError("msg must be a string or null")
            self.msg = value
        else:
            super()._update_extra(key, value)


class _KnobSet:
    """A set of knobs that is changed all or nothing: `update` stages on a copy, then commits."""

    __slots__ = ()
    _KIND: ClassVar[str] = "knob"

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial mapping; unknown keys or bad values raise ValueError, changing nothing."""
        staged = self.copy()
        names = {f.name for f in fields(self)}  # type: ignore[arg-type]  # subclasses are dataclasses
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown {self._KIND} {key!r}")
            staged._set(key, value)
        for name in names:
            setattr(self, name, getattr(staged, name))

    def copy(self) -> Self:
        """An independent copy (faults are mutable counters)."""
        return type(self)(**{
            f.name: _copy_value(getattr(self, f.name)) for f in fields(self)  # type: ignore[arg-type]
        })

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the same shape `update` accepts."""
        return asdict(self)  # type: ignore[call-overload]

    def _set(self, key: str, value: Any) -> None:
        raise NotImplementedError


@dataclass(slots=True)
class Knobs(_KnobSet):
    """Every knob, with the behaviour of a healthy exchange and static books as defaults."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fail_5xx: Fault = field(default_factory=Fault)
    hang: Fault = field(default_factory=Fault)
    # The order is matched and recorded, then the answer never comes: "placement response lost".
    hang_after_match: Fault = field(default_factory=Fault)
    force_429: Fault = field(default_factory=Fault)
    reject: Reject = field(default_factory=Reject)
    # Fills take liquidity off the books; off keeps books static so tests are deterministic.
    consume_liquidity: bool = False
    # Whether a funds-based market buy's fee is inside `funds` (KuCoin does not document it).
    fee_inside_funds: bool = False
    # Whether /hf/orders/test also checks the balance (undocumented on KuCoin).
    test_checks_balance: bool = False
    # An order query that finds nothing answers HF's 126043 instead of 400100 `order not exist.`
    # (KuCoin answers both; a client must read either as "never placed").
    order_not_exist_126043: bool = False

    def _set(self, key: str, value: Any) -> None:
        current = getattr(self, key)
        if isinstance(current, Fault):
            current.update(value)
        elif isinstance(current, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false")
            setattr(self, key, value)
        else:
            setattr(self, key, _as_non_negative(key, value))


@dataclass(slots=True)
class EventFault:
    """Fires on the next `next_n` pushes of type `event` (any push when None)."""

    next_n: int = 0
    event: str | None = None

    def fires(self, event_type: str) -> bool:
        if self.next_n <= 0 or (self.event is not None and self.event != event_type):
            return False
        self.next_n -= 1
        return True

    def update(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, dict)):
            raise ValueError(f"an event fault takes an int or an object, not {value!r}")
        if isinstance(value, int):
            value = {"next_n": value}
        for key, item in value.items():
            if key == "next_n":
                self.next_n = _as_int(key, item)
            elif key == "event":
                if item is not None and item not in WS_EVENT_TYPES:
                    raise ValueError(f"event must be one of {sorted(WS_EVENT_TYPES)} or null")
                self.event = item
            else:
                raise ValueError(f"unknown event fault field {key!r}")


@dataclass(slots=True)
class WsKnobs(_KnobSet):
    """Private-WebSocket faults and the ping timing `bullet-private` advertises (ms)."""

    _KIND: ClassVar[str] = "WebSocket knob"

    delay_ms: float = 0.0
    drop: EventFault = field(default_factory=EventFault)
    cut: EventFault = field(default_factory=EventFault)
    reorder: int = 0
    withhold_welcome: int = 0
    ping_interval_ms: int = 18_000
    ping_timeout_ms: int = 10_000

    def _set(self, key: str, value: Any) -> None:
        current = getattr(self, key)
        if isinstance(current, EventFault):
            current.update(value)
        elif key == "delay_ms":
            self.delay_ms = _as_non_negative(key, value)
        else:
            setattr(self, key, _as_int(key, value))


def _copy_value(value: Any) -> Any:
    if is_dataclass(value):
        return type(value)(**asdict(value))
    return value


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer")
    return value


def _as_probability(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError("probability must be a number in [0, 1]")
    return float(value)


def _as_non_negative(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{key} must be a non-negative number")
    return float(value)
