"""The report's sections, in reading order, each built from `ReportData` (and drivers).

Each returns an `html.Section` of words, tables and embedded figures.
"""

from __future__ import annotations

from .section_customers import customer_base
from .section_drivers import examples, value_drivers
from .section_model import accuracy, metrics_table, model_card

__all__ = ["accuracy", "customer_base", "examples", "metrics_table", "model_card", "value_drivers"]
