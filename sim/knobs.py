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
     "consume_liquidity": false, "fee_inside_funds": false, "test_checks_balance": false}
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Fault", "Reject", "Knobs"]


@dataclass(slots=True)
class Fault:
    """Fires for the next `next_n` matching calls, else with `probability`."""

    next_n: int = 0
    probability: float = 0.0
    path: str | None = None

    def fires(self, request_path: str, rng: random.Random) -> bool:
        """Whether this call is hit; a call on another path neither fires nor uses up the count."""
        if self.next_n <= 0 and self.probability <= 0.0:
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
            else:
                self._update_extra(key, item)

    def _update_extra(self, key: str, value: Any) -> None:
        raise ValueError(f"unknown fault field {key!r}")


@dataclass(slots=True)
class Reject(Fault):
    """Order calls it hits answer `code` with KuCoin's message for it (or `msg` if set)."""

    code: str = "200004"
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


@dataclass(slots=True)
class Knobs:
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

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial mapping; unknown keys or bad values raise ValueError, changing nothing."""
        staged = self.copy()
        names = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown knob {key!r}")
            current = getattr(staged, key)
            if isinstance(current, Fault):
                current.update(value)
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
                setattr(staged, key, value)
            else:
                setattr(staged, key, _as_non_negative(key, value))
        for f in fields(self):
            setattr(self, f.name, getattr(staged, f.name))

    def copy(self) -> Knobs:
        """An independent copy (faults are mutable counters)."""
        return Knobs(**{
            f.name: _copy_value(getattr(self, f.name)) for f in fields(self)
        })

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the same shape `update` accepts."""
        return asdict(self)


def _copy_value(value: Any) -> Any:
    if isinstance(value, Fault):
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
