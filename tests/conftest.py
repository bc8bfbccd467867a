"""Shared fixtures: small hand-written transaction logs."""

from __future__ import annotations

import os

import pandas as pd
import pytest

# Keep LightGBM/OpenMP to one thread in tests: the CI machine has 2 cores and tests run servers.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def tiny_log() -> pd.DataFrame:
    """Three customers; expected features at cutoff 2024-03-31 are computed by hand in tests.

    a: buys on Jan 1 (10 + 5, same day), Jan 11 (20), Mar 1 (30): frequency 2
    b: buys once on Mar 31 (the cutoff day itself) 50, returns 15 on Apr 2 (after the cutoff)
    c: buys Feb 1 (40), returns 10 on Feb 5 (a return-only day), buys again Apr 10 (after)
    """
    rows = [
        ("a", "2024-01-01 09:00", 10.0),
        ("a", "2024-01-01 17:30", 5.0),
        ("a", "2024-01-11", 20.0),
        ("a", "2024-03-01", 30.0),
        ("b", "2024-03-31 23:59:59", 50.0),
        ("b", "2024-04-02", -15.0),
        ("c", "2024-02-01", 40.0),
        ("c", "2024-02-05", -10.0),
        ("c", "2024-04-10", 25.0),
        ("a", "2024-06-01", 99.0),
    ]
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
