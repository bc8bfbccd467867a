"""Request bodies built from the bundled CDNOW log, for the serving tests and benchmarks."""

from __future__ import annotations

from functools import cache

import pandas as pd
from clv.features.datasets import cdnow_master_path, cdnow_sample_ids

AS_OF = "1997-09-30"


@cache
def cdnow_log() -> pd.DataFrame:
    frame = pd.read_csv(cdnow_master_path(), dtype={"customer_id": str, "date": str})
    return frame[frame["date"] <= AS_OF]


def raw_customers(n: int, offset: int = 0, as_of: str = AS_OF) -> list[dict]:
    """n sample customers as raw transactions (with quantity, as in training) up to as_of."""
    ids = cdnow_sample_ids()[offset : offset + n]
    log = cdnow_log()
    log = log[log["customer_id"].isin(set(ids))]
    out = []
    for cid, rows in log.groupby("customer_id", sort=False):
        out.append(
            {
                "customer_id": cid,
                "as_of": as_of,
                "transactions": [
                    {"timestamp": d, "amount": float(a), "quantity": float(q)}
                    for d, a, q in zip(rows["date"], rows["amount"], rows["quantity"], strict=True)
                ],
            }
        )
    return out
