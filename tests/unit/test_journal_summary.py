"""The one-line account of a dead worker's orders that goes into its `lost` report."""

from shared.store.journal import journal_summary


def test_summary_names_done_orders_with_fills_and_unresolved_ones_with_their_client_oid() -> None:
    fields = {
        "state": "running", "triangle": "BTC-USDT,ETH-BTC,ETH-USDT",
        "leg0_state": "done", "leg0_side": "buy", "leg0_pair": "BTC-USDT", "leg0_filled_size": "0.002",
        "leg0_filled_funds": "100", "leg0_fee": "0.1", "leg0_fee_currency": "USDT", "leg0_client_oid": "t1-0",
        "leg1_state": "placing", "leg1_side": "buy", "leg1_pair": "ETH-BTC", "leg1_client_oid": "t1-1",
    }
    assert journal_summary(fields) == (
        "leg0 buy BTC-USDT done filled_size=0.002 filled_funds=100 fee=0.1 USDT; "
        "leg1 buy ETH-BTC placing (resolve clientOid t1-1)"
    )


def test_summary_of_a_journal_without_orders_is_empty() -> None:
    assert journal_summary({"state": "running"}) == ""
