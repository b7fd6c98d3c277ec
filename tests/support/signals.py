"""Signals the tests share."""

from __future__ import annotations

__all__ = ["EXAMPLE_SIGNAL"]

# The contract's example signal (examples/signal.json beside the repo), verbatim, so the tests
# do not depend on a file outside the repository.
EXAMPLE_SIGNAL = {
    "correlation_id": "c-20261125-000001",
    "triangle_key": ["BTC-USDT", "ETH-BTC", "ETH-USDT"],
    "primary_quote": "USDT",
    "starting_volume": "100",
    "predicted_bps": 29.96,
    "live": False,
    "legs": [
        {"pair": "BTC-USDT", "side": "buy", "order_param": "100", "base_min_size": "0.00001",
         "base_increment": "0.00000001", "quote_increment": "0.000001", "fee_rate": "0.001",
         "fee_currency": "USDT"},
        {"pair": "ETH-BTC", "side": "buy", "order_param": "0.001998", "base_min_size": "0.0001",
         "base_increment": "0.0000001", "quote_increment": "0.00000001", "fee_rate": "0.001",
         "fee_currency": "BTC"},
        {"pair": "ETH-USDT", "side": "sell", "order_param": "0.0399", "base_min_size": "0.0001",
         "base_increment": "0.0001", "quote_increment": "0.000001", "fee_rate": "0.001",
         "fee_currency": "USDT"},
    ],
    "books": [
        {"asks": [{"price": "50000", "size": "0.8"}, {"price": "50001.5", "size": "2.1"}],
         "bids": [{"price": "49990", "size": "1.2"}, {"price": "49988", "size": "3"}]},
        {"asks": [{"price": "0.05", "size": "12"}, {"price": "0.05001", "size": "40"}],
         "bids": [{"price": "0.04995", "size": "9"}, {"price": "0.0499", "size": "30"}]},
        {"asks": [{"price": "2511", "size": "4"}, {"price": "2511.5", "size": "10"}],
         "bids": [{"price": "2510", "size": "5"}, {"price": "2509.2", "size": "12"}]},
    ],
    "book_ts_ms": 1795600000000,
    "t_sock_arrive_ms": 1795600000001,
    "t_arrive_ms": 1795600000001,
    "t_eval_ms": 1795600000002,
    "ts_ms": 1795600000002,
}
