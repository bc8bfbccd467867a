"""The bundled sample: the CDNOW master log (see data/ATTRIBUTION.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .config import ColumnMapping

CDNOW_COLUMNS = ColumnMapping(timestamp="date")


def cdnow_master_path() -> Path:
    """Path of the bundled CDNOW master log: customer_id, date, quantity, amount (USD)."""
    return Path(str(resources.files("clv.features.data") / "cdnow_master.csv.gz"))


def cdnow_sample_ids() -> list[str]:
    """The 2,357 customer ids of the CDNOW sample used by Fader, Hardie and Lee (2005)."""
    text = (resources.files("clv.features.data") / "cdnow_sample_ids.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]
