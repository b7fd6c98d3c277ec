"""How many examples a property test generates: all of them in `make test`, a tenth in `make test-fast`.

`make test-fast` sets TESTS_FAST=1 so the unit layer stays a quick edit-run loop; the full
suite (what CI runs) always draws the whole budget.
"""

from __future__ import annotations

import os

__all__ = ["examples"]

FAST = os.environ.get("TESTS_FAST") == "1"


def examples(full: int) -> int:
    return max(10, full // 10) if FAST else full
