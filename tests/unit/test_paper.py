"""Paper fills: the seed's top-of-book numbers reproduced, and the depth model's numbers worked
out by hand (every expected value below is written as Decimal arithmetic, not taken from the
code under test)."""

from __future__ import annotations

import copy
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.report import LegFill
from shared.signal import Book, BookLevel, Leg, parse_signal
from tests.support.examples import examples
from tests.support.signals import EXAMPLE_SIGNAL
from worker.fill_model import PaperAbort, fill_depth, fill_top, simulate_triangle

RATE = D("0.001")


@pytest.fixture
def example_raw() -> dict:
    return copy.deepcopy(EXAMPLE_SIGNAL)


def eth_usdt(side: str, *, fee_currency: str = "USDT", base_min_size: str = "0.001") -> Leg:
    return Leg(
        pair="ETH-USDT",
        side=side,
        order_param=D("0"),
        base_min_size=D(base_min_size),
        base_increment=D("0.0001"),
        quote_increment=D("0.01"),
        fee_rate=RATE,
        fee_currency=fee_currency,
    )


def book(asks: list[tuple[str, str]] = (), bids: list[tuple[str, str]] = ()) -> Book:
    return Book(
        asks=tuple(BookLevel(price=D(p), size=D(s)) for p, s in asks),
        bids=tuple(BookLevel(price=D(p), size=D(s)) for p, s in bids),
    )


ASKS = [("100", "1"), ("101", "2")]
BIDS = [("100", "1"), ("99", "2")]


def seed_profit(fills: tuple[LegFill, ...]) -> D:
    """The seed executor's profit formula (executor_seed.py, after the paper loop), expressed on
    our fills. Seed fields: a buy's `filled_volume` is base and `deal_funds` the funds; a sell's
    `filled_volume` is the *quote* and `deal_funds` the quote net of a quote fee."""
    first, last = fills[0], fills[2]
    if last.side == "buy":
        leg2_out = last.filled_size
        if last.fee_currency == last.output_currency:
            leg2_out -= last.fee
    else:
        quote_fee = last.fee if last.fee_currency == last.output_currency else D(0)
        leg2_out = last.filled_funds - quote_fee
    # leg 0: a buy's deal_funds (fee on top ignored); a sell's filled_volume, which is its quote.
    leg0_in = first.filled_funds
    return leg2_out - leg0_in


# --- top-of-book model (the seed's arithmetic) -------------------------------------------


def test_top_model_reproduces_seed_numbers_on_example_signal(example_raw: dict) -> None:
    outcome = simulate_triangle(parse_signal(example_raw), "top")
    leg0, leg1, leg2 = outcome.fills

    # leg 0 BTC-USDT buy 100 USDT at best ask 50000, fee in USDT = order_param * rate
    assert leg0.avg_price == D("50000")
    assert leg0.filled_funds == D("100")
    assert leg0.filled_size == D("100") / D("50000") == D("0.002")
    assert leg0.fee == D("100") * RATE == D("0.1")
    assert (leg0.spent, leg0.received) == (D("100") + D("0.1"), D("0.002"))
    assert leg0.fee_currency == "USDT"

    # leg 1 ETH-BTC buy 0.001998 BTC at 0.05: base 0.03996 (already on the 1e-7 grid)
    assert leg1.avg_price == D("0.05")
    assert leg1.filled_funds == D("0.001998")
    assert leg1.filled_size == D("0.001998") / D("0.05") == D("0.03996")
    assert leg1.fee == D("0.001998") * RATE == D("0.000001998")
    assert (leg1.spent, leg1.received) == (D("0.001998") + D("0.000001998"), D("0.03996"))

    # leg 2 ETH-USDT sell 0.0399 ETH at best bid 2510, fee in USDT taken from the proceeds
    quote = D("0.0399") * D("2510")
    assert quote == D("100.149")
    assert leg2.avg_price == D("2510")
    assert (leg2.filled_size, leg2.filled_funds) == (D("0.0399"), quote)
    assert leg2.fee == quote * RATE == D("0.100149")
    assert (leg2.spent, leg2.received) == (D("0.0399"), quote * (1 - RATE))
    assert leg2.received == D("100.048851")

    # the seed measured profit against the funds only; the USDT fee paid on top is lost money
    seed = D("100.048851") - D("100")
    ours = D("100.048851") - (D("100") + D("0.1"))
    assert seed_profit(outcome.fills) == seed == D("0.048851")
    assert (outcome.spent, outcome.returned) == (D("100.1"), D("100.048851"))
    assert outcome.profit == ours == D("-0.051149")
    assert seed - outcome.profit == leg0.fee == D("0.1")
    assert outcome.effective_bps == pytest.approx(float(D("-0.051149") / D("100.1") * 10000))
    assert outcome.effective_bps < 0 < example_raw["predicted_bps"]


def test_top_legs_are_independent_of_each_other(example_raw: dict) -> None:
    """The seed sized every leg from its own order_param, whatever the previous leg delivered."""
    example_raw["legs"][1]["order_param"] = "0.0015"
    leg1 = simulate_triangle(parse_signal(example_raw), "top").fills[1]
    assert leg1.filled_funds == D("0.0015")
    assert leg1.filled_size == D("0.0015") / D("0.05") == D("0.03")


def test_top_buy_fee_uses_unrounded_order_param_and_best_price_only() -> None:
    # funds 150.019 -> 150.01 on the 0.01 grid; all of it priced at 100 despite only 1 ETH there
    fill = fill_top(eth_usdt("buy"), book(asks=ASKS), D("150.019"), index=0)
    assert fill.filled_funds == D("150.01")
    assert fill.filled_size == D("1.5001")  # 150.01 / 100, on the 0.0001 grid
    assert fill.fee == D("150.019") * RATE
    assert fill.spent == D("150.01") + D("0.150019")
    assert fill.avg_price == D("100")


def test_top_sell_with_base_fee_and_seed_minimum_check() -> None:
    fill = fill_top(eth_usdt("sell", fee_currency="ETH"), book(bids=BIDS), D("2.50009"), index=2)
    assert fill.filled_size == D("2.5")
    assert fill.filled_funds == D("2.5") * D("100")
    assert fill.fee == D("2.5") * RATE
    assert fill.fee_currency == "ETH"
    assert (fill.spent, fill.received) == (D("2.5") + D("0.0025"), D("250"))
    # the seed compares the *unrounded* sell size with the minimum
    with pytest.raises(PaperAbort) as raised:
        fill_top(eth_usdt("sell"), book(bids=BIDS), D("0.0009"), index=1)
    assert (raised.value.reason, raised.value.leg) == ("volume_below_minimum", 1)
    # ... so a size above the minimum that rounds below it (even to nothing) still "fills"
    coarse = Leg(pair="ETH-USDT", side="sell", order_param=D("1"), base_min_size=D("0.005"),
                 base_increment=D("0.01"), quote_increment=D("0.01"), fee_rate=RATE,
                 fee_currency="USDT")
    dust = fill_top(coarse, book(bids=BIDS), D("0.007"), index=0)
    assert (dust.filled_size, dust.filled_funds, dust.received) == (D("0.00"), D("0"), D("0"))


def sell_first(raw: dict) -> dict:
    """The example triangle turned around to start from ETH: sell ETH, buy BTC, buy ETH back."""
    raw.update(primary_quote="ETH", starting_volume="0.04", triangle_key=["ETH-USDT", "BTC-USDT", "ETH-BTC"])
    legs, books = raw["legs"], raw["books"]
    legs[0], legs[1], legs[2] = (
        {**legs[2], "order_param": "0.04"},
        {**legs[0], "order_param": "100"},
        {**legs[1], "order_param": "0.002"},
    )
    books[0], books[1], books[2] = books[2], books[0], books[1]
    return raw


def test_top_first_leg_sell_profit_differs_from_seed_by_quote_counted_as_spent(example_raw: dict) -> None:
    """A triangle starting with a sell: the seed took leg 0's quote proceeds as the amount spent."""
    outcome = simulate_triangle(parse_signal(sell_first(example_raw)), "top")
    # leg 0 sells 0.04 ETH at 2510; leg 2 buys ETH with 0.002 BTC at 0.05 (fee in BTC, on top)
    returned = D("0.002") / D("0.05")
    assert (outcome.spent, outcome.returned) == (D("0.04"), returned)
    assert outcome.profit == returned - D("0.04") == D("0")
    assert seed_profit(outcome.fills) == returned - D("0.04") * D("2510")


# --- depth model ------------------------------------------------------------------------


def test_depth_buy_walks_two_levels_and_rounds_base_down() -> None:
    # funds 151.509 -> 151.50; 1 ETH at 100 leaves 51.50, i.e. 51.50/101 = 0.50990099.. ETH at 101
    fill = fill_depth(eth_usdt("buy"), book(asks=ASKS), D("151.509"), index=0, order_id="o-1",
                      latency_ms=1.5)
    base = D("1") + D("0.5099")  # 1.50990099.. rounded down to 0.0001
    funds = D("1") * D("100") + D("0.5099") * D("101")
    assert (fill.filled_size, fill.filled_funds) == (base, funds) == (D("1.5099"), D("151.4999"))
    assert fill.avg_price == funds / base
    assert D("100") < fill.avg_price < D("101")
    assert fill.fee == funds * RATE == D("0.1514999")
    assert fill.spent == funds + funds * RATE  # fee on top of the funds, in USDT
    assert fill.received == base
    assert (fill.input_currency, fill.output_currency, fill.fee_currency) == ("USDT", "ETH", "USDT")
    assert (fill.leg, fill.pair, fill.side, fill.order_id, fill.latency_ms) == (
        0, "ETH-USDT", "buy", "o-1", 1.5)


def test_depth_sell_walks_two_levels() -> None:
    fill = fill_depth(eth_usdt("sell"), book(bids=BIDS), D("2.50009"), index=2)
    funds = D("1") * D("100") + D("1.5") * D("99")
    assert (fill.filled_size, fill.filled_funds) == (D("2.5"), funds) == (D("2.5"), D("248.5"))
    assert fill.avg_price == funds / D("2.5") == D("99.4")
    assert fill.fee == funds * RATE
    assert (fill.spent, fill.received) == (D("2.5"), funds - funds * RATE)
    assert fill.received == D("248.2515")


def test_depth_base_increment_rounding_on_a_single_level() -> None:
    # 10 USDT at 3 buys 3.3333.. ETH; only 3.3333 tradeable, costing 9.9999
    fill = fill_depth(eth_usdt("buy"), book(asks=[("3", "100")]), D("10"), index=0)
    assert fill.filled_size == D("3.3333")
    assert fill.filled_funds == D("3.3333") * D("3") == D("9.9999")
    assert fill.avg_price == D("3")


@pytest.mark.parametrize(
    ("side", "amount", "base", "funds"),
    [
        ("buy", D("1000"), D("1") + D("2"), D("1") * D("100") + D("2") * D("101")),
        ("sell", D("5"), D("1") + D("2"), D("1") * D("100") + D("2") * D("99")),
    ],
)
def test_depth_partial_fill_when_book_runs_out(side: str, amount: D, base: D, funds: D) -> None:
    fill = fill_depth(eth_usdt(side), book(asks=ASKS, bids=BIDS), amount, index=0)
    assert (fill.filled_size, fill.filled_funds) == (base, funds)
    if side == "buy":
        assert fill.spent == funds + funds * RATE < amount
    else:
        assert fill.spent == base < amount


def test_depth_below_minimum_aborts() -> None:
    # 0.05 USDT at 100 buys 0.0005 ETH < min 0.001
    with pytest.raises(PaperAbort) as raised:
        fill_depth(eth_usdt("buy"), book(asks=ASKS), D("0.05"), index=1)
    assert (raised.value.reason, raised.value.leg) == ("volume_below_minimum", 1)
    # a size that rounds to zero aborts even with no minimum
    with pytest.raises(PaperAbort, match="volume_below_minimum"):
        fill_depth(eth_usdt("sell", base_min_size="0"), book(bids=BIDS), D("0.00009"), index=0)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_depth_empty_book_aborts(side: str) -> None:
    other_side_only = book(bids=BIDS) if side == "buy" else book(asks=ASKS)
    with pytest.raises(PaperAbort) as raised:
        fill_depth(eth_usdt(side), other_side_only, D("100"), index=2)
    assert (raised.value.reason, raised.value.leg) == ("empty_book", 2)


def test_depth_fee_in_base_currency() -> None:
    # buy 150 USDT: 1 ETH at 100, then 50/101 = 0.49504950.. -> 1.495 ETH in all
    buy = fill_depth(eth_usdt("buy", fee_currency="ETH"), book(asks=ASKS), D("150"), index=0)
    base = D("1.495")
    funds = D("100") + D("0.495") * D("101")
    assert (buy.filled_size, buy.filled_funds) == (base, funds) == (base, D("149.995"))
    assert buy.fee == base * RATE == D("0.001495")
    assert buy.fee_currency == "ETH"
    assert (buy.spent, buy.received) == (funds, base - base * RATE)

    sell = fill_depth(eth_usdt("sell", fee_currency="ETH"), book(bids=BIDS), D("2.5"), index=2)
    assert sell.fee == D("2.5") * RATE
    assert (sell.spent, sell.received) == (D("2.5") + D("0.0025"), D("248.5"))


def test_fee_in_a_third_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="KCS"):
        fill_depth(eth_usdt("buy", fee_currency="KCS"), book(asks=ASKS), D("100"), index=0)


def test_depth_triangle_chains_what_each_leg_delivered(example_raw: dict) -> None:
    example_raw["books"][0]["asks"] = [{"price": "50001.5", "size": "2.1"}]
    example_raw["legs"][1]["quote_increment"] = "0.000001"
    outcome = simulate_triangle(
        parse_signal(example_raw), order_ids=("a", "b", "c"), latencies_ms=(1.0, 2.0, 3.0)
    )
    leg0, leg1, leg2 = outcome.fills
    assert [f.order_id for f in outcome.fills] == ["a", "b", "c"]
    assert [f.latency_ms for f in outcome.fills] == [1.0, 2.0, 3.0]

    # leg 0: 100 USDT / 50001.5 = 0.0019999400.. BTC -> 0.00199994 on the 1e-8 grid
    btc = D("0.00199994")
    usdt_funds = btc * D("50001.5")
    assert usdt_funds == D("99.99999991")
    assert (leg0.filled_size, leg0.filled_funds, leg0.received) == (btc, usdt_funds, btc)
    assert leg0.spent == usdt_funds + usdt_funds * RATE

    # leg 1 spends leg 0's BTC less room for its BTC fee on top, rounded down to ITS quote
    # increment 0.000001: 0.00199994 / 1.001 = 0.0019979420… -> 0.001997
    assert leg1.filled_funds == D("0.001997")
    assert leg1.spent == D("0.001997") + D("0.001997") * RATE <= leg0.received
    eth = D("0.001997") / D("0.05")
    assert eth == D("0.03994")
    assert leg1.filled_size == leg1.received == eth

    # leg 2 sells leg 1's ETH rounded down to 0.0001: 0.0399 (0.00004 ETH of dust stays behind)
    assert leg2.filled_size == D("0.0399")
    quote = D("0.0399") * D("2510")
    assert leg2.received == quote - quote * RATE == D("100.048851")

    spent = usdt_funds + usdt_funds * RATE
    assert (outcome.spent, outcome.returned) == (spent, D("100.048851"))
    assert outcome.profit == D("100.048851") - spent == D("-0.05114890991")
    assert outcome.effective_bps == pytest.approx(float((D("100.048851") - spent) / spent * 10000))


def test_depth_triangle_after_a_sell_spends_its_net_quote(example_raw: dict) -> None:
    outcome = simulate_triangle(parse_signal(sell_first(example_raw)))
    leg0, leg1, leg2 = outcome.fills
    # leg 0 sells 0.04 ETH at 2510 and is credited the quote net of the 0.1% fee
    usdt = D("0.04") * D("2510") - D("0.04") * D("2510") * RATE
    assert usdt == D("100.2996")
    assert (leg0.spent, leg0.received) == (D("0.04"), usdt)
    # leg 1 buys BTC with what leg 0 credited, keeping room for its USDT fee on top:
    # funds = 100.2996 / 1.001 = 100.19940059… -> 100.1994 (quote increment 0.000001)
    funds1 = D("100.1994")
    assert D("100.2996") / (1 + RATE) > funds1 > D("100.2996") / (1 + RATE) - D("0.000001")
    # 100.1994 / 50000 = 0.002003988 -> 0.00200398 BTC, costing 100.199 USDT
    btc = D("0.00200398")
    assert (leg1.filled_size, leg1.filled_funds) == (btc, btc * D("50000")) == (btc, D("100.199"))
    # the fee goes on top, and the whole leg stays within what leg 0 delivered
    assert leg1.spent == D("100.199") + D("100.199") * RATE == D("100.299199") <= leg0.received
    # leg 2 buys ETH with that BTC, its BTC fee on top: 0.00200398 / 1.001 -> 0.00200197 BTC,
    # / 0.05 = 0.0400394 ETH
    eth = D("0.0400394")
    assert (leg2.filled_funds, leg2.received) == (D("0.00200197"), eth)
    assert leg2.spent == D("0.00200197") * (1 + RATE) <= leg1.received
    assert outcome.profit == eth - D("0.04") == D("0.0000394")


def test_depth_is_the_default_and_unknown_models_are_refused(example_raw: dict) -> None:
    signal = parse_signal(example_raw)
    # depth chains: leg 1 spends the 0.002 BTC leg 0 bought less room for its BTC fee on top:
    # 0.002 / 1.001 = 0.001998001… -> 0.00199800, buying 0.03996 ETH at 0.05
    leg1 = simulate_triangle(signal).fills[1]
    assert (leg1.filled_funds, leg1.filled_size) == (D("0.001998"), D("0.03996"))
    with pytest.raises(ValueError, match="vwap"):
        simulate_triangle(signal, "vwap")


# --- properties ----------------------------------------------------------------------------

_INCREMENTS = st.sampled_from([D("1"), D("0.1"), D("0.001"), D("0.00001")])


@st.composite
def depth_case(draw: st.DrawFn) -> tuple[Leg, Book, D]:
    side = draw(st.sampled_from(["buy", "sell"]))
    base_inc = draw(_INCREMENTS)
    quote_inc = draw(_INCREMENTS)
    prices = draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=6, unique=True))
    prices = sorted(prices, reverse=side == "sell")  # best first: asks up, bids down
    sizes = draw(st.lists(st.integers(1, 10**6), min_size=len(prices), max_size=len(prices)))
    levels = tuple(BookLevel(price=D(p) / 100, size=D(s) / 1000) for p, s in zip(prices, sizes))
    leg = Leg(
        pair="AAA-BBB",
        side=side,
        order_param=D(0),
        base_min_size=draw(st.sampled_from([D(0), base_inc])),
        base_increment=base_inc,
        quote_increment=quote_inc,
        fee_rate=draw(st.sampled_from([D(0), D("0.001"), D("0.0025")])),
        fee_currency=draw(st.sampled_from(["AAA", "BBB"])),
    )
    levels_book = Book(asks=levels, bids=()) if side == "buy" else Book(asks=(), bids=levels)
    amount = D(draw(st.integers(1, 10**9))) / 1000
    return leg, levels_book, amount


@settings(max_examples=examples(300), deadline=None)
@given(depth_case())
def test_depth_fill_invariants(case: tuple[Leg, Book, D]) -> None:
    leg, the_book, amount = case
    try:
        fill = fill_depth(leg, the_book, amount, index=0)
    except PaperAbort as abort:
        assert abort.reason == "volume_below_minimum"
        return
    levels = the_book.asks if leg.side == "buy" else the_book.bids
    fee_on_spent_side = fill.fee if fill.fee_currency == leg.input_currency else D(0)
    assert fill.spent - fee_on_spent_side <= amount
    assert fill.spent <= amount + fill.fee
    assert fill.filled_size > 0
    assert fill.filled_size % leg.base_increment == 0
    assert fill.fee >= 0
    assert fill.received >= 0

    # the worst level the fill reached, walking best-first
    walked, worst = D(0), levels[0].price
    for level in levels:
        if walked >= fill.filled_size:
            break
        walked += level.size
        worst = level.price
    low, high = sorted([levels[0].price, worst])
    assert low <= fill.avg_price <= high
