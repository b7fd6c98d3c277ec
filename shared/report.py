"""Execution reports and their flat encoding for the `trident:reports` stream.

Grafana's Redis data source types a column from the first value it sees, so the stream
encoding is flat and type-stable: every entry has the same keys whatever happened (three leg
slots, three book tops, every timing step), numbers are always plain decimal strings ("0" when
unknown), never None or "". `report_from_fields` is the inverse, used by the tools and tests
that read the stream with plain redis-py (bytes in, bytes out).

Round trip: `report_from_fields(report_to_fields(r)) == r` holds when
- floats (bps, ms) are already rounded to FLOAT_PLACES (3) decimals and finite
  (a non-finite float is written as "0" so one bad value cannot break a chart);
- `fills[k].leg == k` (legs fill in order; at most 3 fills);
- `timings` use the seed's step names (`t-2_book_snapshot`, `t-1_eval_complete`,
  `t_signal_created`, or the other TIMING_STEPS names as is), each step at most once
  (a step outside TIMING_STEPS has no column and is dropped; the field-friendly names
  are accepted too, and come back as the seed's);
- triangle pair symbols contain no ",";
- at most 2 unwinds (`UNWIND_SLOTS`): only legs 1 and 2 can strand inventory;
- `error_code` is "" (it travels to the supervisor in `Done`, not on the stream);
- `orders` is () (a live worker's own record of each order it sent, for its execution log only).

Edge attribution (`EdgeBreakdown`, fields `edge_*_bps`, computed by `worker.attribution`) says
where the predicted edge went: `edge_predicted − edge_model − edge_fees − edge_slippage −
edge_latency − edge_rounding = effective_bps` holds exactly on the stream's decimal strings
(the edge fields are all 0 for an execution that did not complete its three legs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from decimal import Decimal
from enum import StrEnum

from shared.codec import as_text
from shared.money import fmt_decimal

__all__ = [
    "Status",
    "LegFill",
    "BookTop",
    "EdgeBreakdown",
    "Unwind",
    "OrderRecord",
    "ExecutionReport",
    "TIMING_STEPS",
    "FLOAT_PLACES",
    "report_to_fields",
    "report_from_fields",
    "order_movement",
]

FLOAT_PLACES = 3
LEG_SLOTS = 3
UNWIND_SLOTS = 2

TIMING_STEPS: tuple[str, ...] = (
    "book_snapshot",
    "socket_arrived",
    "book_update_arrived",
    "eval_complete",
    "signal_created",
    "signal_received",
    "leg0_order_fired",
    "leg1_order_fired",
    "leg2_order_fired",
    "leg0_fill_received",
    "leg1_fill_received",
    "leg2_fill_received",
    "leg0_matched",  # live sync fills: the exchange said done, before the query bringing the money
    "leg1_matched",
    "leg2_matched",
    "execution_complete",
)
# The seed's step names where they differ from the field-friendly ones.
_SEED_STEP_NAMES = {
    "book_snapshot": "t-2_book_snapshot",
    "eval_complete": "t-1_eval_complete",
    "signal_created": "t_signal_created",
}
_STEP_BY_SEED_NAME = {seed: step for step, seed in _SEED_STEP_NAMES.items()}
_TIMING_FIELD = {step: f"t_{step}_ms" for step in TIMING_STEPS}


class Status(StrEnum):
    FILLED = "filled"
    FAILED = "failed"
    ABORTED = "aborted"  # cancelled or refused before any money moved
    UNWOUND = "unwound"  # a middle leg failed and the stranded asset was converted back
    STRANDED = "stranded"  # a middle leg failed and the asset is still held
    IMBALANCED = "imbalanced"  # parallel: a leg failed, the inventory is off its mix by `inventory`
    LOST = "lost"  # the worker died; only the legs known done are reported
    # what reconciliation found at the exchange for an execution whose report left an order's
    # outcome unknown (a `lost` or `stranded`): the whole execution's true amounts, replacing it
    RECONCILED = "reconciled"


@dataclass(frozen=True, slots=True)
class LegFill:
    """What one order did to the account.

    `spent` is the input currency that left the account (fee included when charged in it);
    `received` is the output currency credited, net of fee. `filled_size` is base (dealSize),
    `filled_funds` quote (dealFunds), as KuCoin reports them.
    """

    leg: int
    pair: str
    side: str
    order_id: str
    input_currency: str
    output_currency: str
    spent: Decimal
    received: Decimal
    filled_size: Decimal
    filled_funds: Decimal
    avg_price: Decimal
    fee: Decimal
    fee_currency: str
    latency_ms: float


@dataclass(frozen=True, slots=True)
class BookTop:
    """Best ask and bid of one leg's book as the signal carried it (zeros for an empty side)."""

    ask_px: Decimal
    ask_sz: Decimal
    bid_px: Decimal
    bid_sz: Decimal


@dataclass(frozen=True, slots=True)
class EdgeBreakdown:
    """Where a completed triangle's predicted edge went, in bps of what leg 0 spent.

    `gross` is the snapshot's own edge at best prices before fees; `model` = predicted − gross
    (what the engine's figure already assumed, or got wrong); the other four are what each
    effect took, in order. `worker.attribution` documents each term exactly.
    """

    predicted: Decimal = Decimal(0)
    gross: Decimal = Decimal(0)
    model: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    slippage: Decimal = Decimal(0)
    latency: Decimal = Decimal(0)
    rounding: Decimal = Decimal(0)


_NO_EDGE = EdgeBreakdown()


@dataclass(frozen=True, slots=True)
class Unwind:
    """Inventory a failed or partly filled live leg left stranded, and what the unwind policy did.

    `stranded` of `currency` was held when the policy ran (the input leg `leg` did not spend).
    `spent` is what the unwind order took of it and `recovered` the primary quote it credited,
    net of `fee`; under the hold policy, or when no order could be placed, both are 0 and
    `order_id` is "". What the account still holds is `stranded - spent`.
    """

    leg: int
    currency: str
    stranded: Decimal
    pair: str
    side: str
    order_id: str
    spent: Decimal
    recovered: Decimal
    fee: Decimal
    fee_currency: str
    # what `recovered` is in: "" means the primary quote (a sequential unwind); a parallel
    # rebalance converts into the currency the failed leg would have delivered
    recovered_currency: str = ""


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order a live execution sent, as its worker saw it end: the execution log's source.

    `leg` is the leg it belongs to (an unwind carries the leg whose input it converts, with
    `unwind` set); `amount` is quote funds when `by_funds`, else base size, as requested.
    `state` is `filled` (something filled), `rejected` (the exchange refused it: nothing placed),
    `unknown` (the exchange never said whether it exists) or `empty` (placed, nothing filled).
    `resolved` is "" for a placement the exchange answered, else what the query by clientOid
    found after an unknown outcome: `found`, `not found` or `no answer`.
    """

    client_oid: str
    leg: int
    unwind: bool
    pair: str
    side: str
    amount: Decimal
    by_funds: bool
    state: str
    order_id: str
    filled_size: Decimal
    filled_funds: Decimal
    fee: Decimal
    fee_currency: str
    latency_ms: float
    error: str = ""
    error_code: str = ""
    resolved: str = ""


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """One execution outcome; `timings` are (seed step name, ms relative to signal receipt)."""

    correlation_id: str
    status: Status
    mode: str
    fill_model: str
    triangle: tuple[str, ...]
    primary_quote: str
    predicted_bps: float
    effective_bps: float
    profit: Decimal
    spent: Decimal
    returned: Decimal
    ts_ms: int
    book_ts_ms: int
    signal_ts_ms: int
    received_ts_ms: int
    first_order_ms: float
    total_ms: float
    error: str
    worker: str
    host: str
    fills: tuple[LegFill, ...] = ()
    book_tops: tuple[BookTop, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()
    edge: EdgeBreakdown = _NO_EDGE
    unwinds: tuple[Unwind, ...] = ()
    # The exchange's code behind `error` ("200004", "http_502", "transport"; "" when the exchange
    # refused nothing), for the supervisor's metrics via `Done`. Not on the stream: there `error`
    # says it for people, so a report read back from the stream has "" here.
    error_code: str = ""
    # Live legs that the exchange refused for insufficient balance and that waited for the
    # balance push before their one retry (worker.live); 0 in paper mode.
    balance_waits: int = 0
    # On a `reconciled` report, the status of the report it replaces (`lost`, `stranded`); "" otherwise.
    corrects: str = ""
    # Live: every order this execution sent, in order, for the worker's execution log. Not on the
    # stream (the fills and unwinds say what the account did), so a report read back has ().
    orders: tuple[OrderRecord, ...] = ()
    # Live: "sequential" or "parallel" (legs at once from inventory). A parallel report's
    # `inventory` is the change per currency (received − spent, conversions included); a failed
    # leg in the middle keeps its slot in `fills` as an empty fill (order_id "", amounts 0).
    strategy: str = ""
    inventory: tuple[tuple[str, Decimal], ...] = ()


def order_movement(pair: str, side: str, filled_size: Decimal, filled_funds: Decimal, fee: Decimal,
                   fee_currency: str) -> tuple[str, str, Decimal, Decimal]:
    """(input currency, output currency, spent, received) of a settled order, from the exchange's
    own figures: a fee charged in the input currency is spent on top, one in the output is not received."""
    base, quote = pair.split("-", 1)
    if side == "buy":
        spent = filled_funds + (fee if fee_currency == quote else _ZERO)
        return quote, base, spent, filled_size - (fee if fee_currency == base else _ZERO)
    spent = filled_size + (fee if fee_currency == base else _ZERO)
    return base, quote, spent, filled_funds - (fee if fee_currency == quote else _ZERO)


_TEXT_FIELDS = ("correlation_id", "mode", "fill_model", "primary_quote", "error", "worker", "host")
_DECIMAL_FIELDS = ("profit", "spent", "returned")
_INT_FIELDS = ("ts_ms", "book_ts_ms", "signal_ts_ms", "received_ts_ms")
_FLOAT_FIELDS = ("predicted_bps", "effective_bps", "first_order_ms", "total_ms")
_LEG_TEXT_FIELDS = ("pair", "side", "order_id", "input_currency", "output_currency", "fee_currency")
_LEG_DECIMAL_FIELDS = ("spent", "received", "filled_size", "filled_funds", "avg_price", "fee")
_BOOK_FIELDS = ("ask_px", "ask_sz", "bid_px", "bid_sz")
_EDGE_FIELDS = {field.name: f"edge_{field.name}_bps" for field in dataclass_fields(EdgeBreakdown)}
_UNWIND_TEXT_FIELDS = ("currency", "pair", "side", "order_id", "fee_currency", "recovered_currency")
_UNWIND_DECIMAL_FIELDS = ("stranded", "spent", "recovered", "fee")
_ZERO = Decimal(0)


def _fmt_float(value: float) -> str:
    """Fixed-point text with at most FLOAT_PLACES decimals; non-finite becomes "0"."""
    if not math.isfinite(value):
        return "0"
    text = f"{value:.{FLOAT_PLACES}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _step_name(name: str) -> str | None:
    step = _STEP_BY_SEED_NAME.get(name, name)
    return step if step in _TIMING_FIELD else None


def report_to_fields(report: ExecutionReport) -> dict[str, str]:
    """The flat, type-stable stream entry for `report` (same keys for every report).

    Raises ValueError for more than 3 fills, a fill out of leg order or more than 2 unwinds:
    those have no slot, and silently dropping one would misstate what the account did.
    """
    if len(report.fills) > LEG_SLOTS:
        raise ValueError(f"{len(report.fills)} fills; a report has {LEG_SLOTS} leg slots")
    if len(report.unwinds) > UNWIND_SLOTS:
        raise ValueError(f"{len(report.unwinds)} unwinds; a report has {UNWIND_SLOTS} unwind slots")
    fields: dict[str, str] = {name: getattr(report, name) for name in _TEXT_FIELDS}
    fields["status"] = str(report.status)
    fields["corrects"] = report.corrects
    fields["strategy"] = report.strategy
    fields["inventory"] = ",".join(f"{currency}:{fmt_decimal(change)}" for currency, change in report.inventory)
    fields["triangle"] = ",".join(report.triangle)
    for name in _DECIMAL_FIELDS:
        fields[name] = fmt_decimal(getattr(report, name))
    for name in _INT_FIELDS:
        fields[name] = str(int(getattr(report, name)))
    for name in _FLOAT_FIELDS:
        fields[name] = _fmt_float(getattr(report, name))
    fields["legs_done"] = str(len(report.fills))
    fields["balance_waits"] = str(report.balance_waits)
    for slot in range(LEG_SLOTS):
        prefix = f"leg{slot}_"
        fill = report.fills[slot] if slot < len(report.fills) else None
        if fill is not None and fill.leg != slot:
            raise ValueError(f"fills[{slot}] is leg {fill.leg}; fills must be in leg order")
        for name in _LEG_TEXT_FIELDS:
            fields[prefix + name] = "" if fill is None else getattr(fill, name)
        for name in _LEG_DECIMAL_FIELDS:
            fields[prefix + name] = "0" if fill is None else fmt_decimal(getattr(fill, name))
        fields[prefix + "latency_ms"] = "0" if fill is None else _fmt_float(fill.latency_ms)
    fields["book_tops"] = str(min(len(report.book_tops), LEG_SLOTS))
    for slot in range(LEG_SLOTS):
        top = report.book_tops[slot] if slot < len(report.book_tops) else None
        for name in _BOOK_FIELDS:
            fields[f"leg{slot}_{name}"] = "0" if top is None else fmt_decimal(getattr(top, name))
    steps: list[str] = []
    for step in TIMING_STEPS:
        fields[_TIMING_FIELD[step]] = "0"
    for name, elapsed_ms in report.timings:
        step = _step_name(name)
        if step is not None:
            steps.append(step)
            fields[_TIMING_FIELD[step]] = _fmt_float(elapsed_ms)
    fields["timing_steps"] = ",".join(steps)
    for name, key in _EDGE_FIELDS.items():
        fields[key] = fmt_decimal(getattr(report.edge, name))
    fields["unwinds"] = str(len(report.unwinds))
    for slot in range(UNWIND_SLOTS):
        unwind = report.unwinds[slot] if slot < len(report.unwinds) else None
        prefix = f"unwind{slot}_"
        fields[prefix + "leg"] = "0" if unwind is None else str(unwind.leg)
        for name in _UNWIND_TEXT_FIELDS:
            fields[prefix + name] = "" if unwind is None else getattr(unwind, name)
        for name in _UNWIND_DECIMAL_FIELDS:
            fields[prefix + name] = "0" if unwind is None else fmt_decimal(getattr(unwind, name))
    return fields



def _inventory_from_text(text: str) -> tuple[tuple[str, Decimal], ...]:
    pairs = []
    for item in filter(None, text.split(",")):
        currency, _, amount = item.partition(":")
        try:
            pairs.append((currency, Decimal(amount)))
        except ArithmeticError:
            raise ValueError(f"report field 'inventory' is not CUR:amount pairs: {text[:40]!r}") from None
    return tuple(pairs)


def report_from_fields(fields: Mapping[str | bytes, str | bytes]) -> ExecutionReport:
    """Rebuild a report from a stream entry; accepts redis-py's bytes (no decode_responses).

    Raises ValueError naming the field when one is missing or unparseable.
    """
    entry = {as_text(key): as_text(value) for key, value in fields.items()}

    def get(name: str) -> str:
        try:
            return entry[name]
        except KeyError:
            raise ValueError(f"report field {name!r} is missing") from None

    def number(name: str, kind: type) -> object:
        text = get(name)
        try:
            return kind(text)
        except (ArithmeticError, ValueError):
            raise ValueError(f"report field {name!r} is not a number: {text[:40]!r}") from None

    def fill(slot: int) -> LegFill:
        prefix = f"leg{slot}_"
        values: dict[str, object] = {name: get(prefix + name) for name in _LEG_TEXT_FIELDS}
        values.update({name: number(prefix + name, Decimal) for name in _LEG_DECIMAL_FIELDS})
        return LegFill(leg=slot, latency_ms=number(prefix + "latency_ms", float), **values)  # type: ignore[arg-type]

    def unwind(slot: int) -> Unwind:
        prefix = f"unwind{slot}_"
        values: dict[str, object] = {name: entry.get(prefix + name, "") for name in _UNWIND_TEXT_FIELDS}
        values.update({name: number(prefix + name, Decimal) for name in _UNWIND_DECIMAL_FIELDS})
        return Unwind(leg=number(prefix + "leg", int), **values)  # type: ignore[arg-type]

    def book_top(slot: int) -> BookTop:
        return BookTop(*(number(f"leg{slot}_{name}", Decimal) for name in _BOOK_FIELDS))  # type: ignore[arg-type]

    try:
        status = Status(get("status"))
    except ValueError:
        raise ValueError(f"report field 'status' is not a status: {entry.get('status', '')[:40]!r}") from None
    legs_done = min(int(number("legs_done", int)), LEG_SLOTS)  # type: ignore[call-overload]
    book_tops = min(int(number("book_tops", int)), LEG_SLOTS)  # type: ignore[call-overload]
    unwinds = min(int(number("unwinds", int)), UNWIND_SLOTS)  # type: ignore[call-overload]
    steps = [step for step in get("timing_steps").split(",") if step in _TIMING_FIELD]
    triangle = get("triangle")
    return ExecutionReport(
        status=status,
        corrects=entry.get("corrects", ""),  # absent from entries written before reconciliation existed
        triangle=tuple(triangle.split(",")) if triangle else (),
        fills=tuple(fill(slot) for slot in range(legs_done)),
        book_tops=tuple(book_top(slot) for slot in range(book_tops)),
        edge=EdgeBreakdown(**{name: number(key, Decimal) for name, key in _EDGE_FIELDS.items()}),  # type: ignore[arg-type]
        unwinds=tuple(unwind(slot) for slot in range(unwinds)),
        balance_waits=int(entry.get("balance_waits", "0")),  # absent from entries written before it
        strategy=entry.get("strategy", ""),
        inventory=_inventory_from_text(entry.get("inventory", "")),
        timings=tuple(
            (_SEED_STEP_NAMES.get(step, step), number(_TIMING_FIELD[step], float)) for step in steps  # type: ignore[misc]
        ),
        **{name: get(name) for name in _TEXT_FIELDS},
        **{name: number(name, Decimal) for name in _DECIMAL_FIELDS},
        **{name: number(name, int) for name in _INT_FIELDS},
        **{name: number(name, float) for name in _FLOAT_FIELDS},
    )
