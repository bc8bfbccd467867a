"""The report end to end: every section and image present, self-contained, logged to the run."""

from __future__ import annotations

import base64
import re
from datetime import date
from pathlib import Path

import mlflow
import pytest
from clv.features.datasets import CDNOW_COLUMNS
from clv.models.registry import load_clv_model
from clv.reports.build import REPORT_ARTIFACT_DIR, build_report

SECTIONS = ("Model card", "Value drivers", "Accuracy", "The customer base", "Example customers")
SUBSECTIONS = (
    "Validation metrics, next to the BG/NBD + Gamma-Gamma baseline",
    "What drives value overall",
    "How each driver pushes value up or down",
    "Drivers per segment",
    "Predicted vs actual value by decile (lift chart)",
    "Cumulative gain and Gini",
    "Churn calibration",
    "Error of the total forecast",
    "Value tiers",
    "Lifecycle stages",
    "Historical vs predicted value",
    "Value at risk by segment",
    "Value × churn risk",
)
# importance, beeswarm, dependence, segments | lift, gain, calibration, totals |
# tiers, stages, historical vs predicted, value at risk, value x risk
FIXED_IMAGES = 4 + 4 + 5
IMAGE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)">')


@pytest.fixture(scope="module")
def champion_report(tmp_path_factory, report_store, sample_csv) -> tuple[Path, str]:
    """The report of clv@champion on the CDNOW sample at its last training cutoff."""
    mlflow.set_tracking_uri(report_store)
    try:
        out = tmp_path_factory.mktemp("report") / "report.html"
        path = build_report(
            out,
            alias="champion",
            transactions=sample_csv,
            columns=CDNOW_COLUMNS,
            as_of=date(1997, 9, 30),
        )
        return path, path.read_text(encoding="utf-8")
    finally:
        mlflow.set_tracking_uri(None)


def test_every_section_and_subsection_is_present(champion_report) -> None:
    _, html = champion_report
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in html
    for title in SUBSECTIONS:
        assert f"<h3>{title.replace('&', '&amp;')}</h3>" in html, title
    assert "No accuracy figures" not in html


def test_images_are_embedded_pngs(champion_report) -> None:
    _, html = champion_report
    images = IMAGE.findall(html)
    examples = html.count("Waterfall of the value drivers of customer")
    assert examples >= 3
    assert len(images) == FIXED_IMAGES + examples
    assert html.count("<img ") == len(images)
    for data, alt in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n"), alt


def test_report_is_self_contained(champion_report) -> None:
    _, html = champion_report
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.IGNORECASE)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "url(" not in html  # no CSS fetching fonts or images


def test_model_card_holds_window_horizon_version_and_baseline_metrics(
    champion_report, small_model
) -> None:
    _, html = champion_report
    spec = small_model.spec
    assert f"{spec.horizon_days} days after each cutoff" in html
    assert f"calendar days in {spec.feature_config.timezone}" in html
    assert "<td>Training log columns</td><td>not recorded</td>" in html  # fitted directly
    assert f"{spec.training_window.first_date} to {spec.training_window.last_date}" in html
    assert ", ".join(str(c) for c in spec.training_window.cutoffs) in html
    assert "clv version 1 (alias @champion)" in html
    assert "BG/NBD + Gamma-Gamma</th>" in html
    assert "Normalized Gini of the value ranking" in html
    assert "Churn ROC AUC" in html


def test_report_is_logged_to_the_models_run(champion_report, report_store) -> None:
    path, html = champion_report
    mlflow.set_tracking_uri(report_store)
    try:
        run_id = load_clv_model("champion").run_id
        logged = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=f"{REPORT_ARTIFACT_DIR}/{path.name}"
        )
    finally:
        mlflow.set_tracking_uri(None)
    assert Path(logged).read_text(encoding="utf-8") == html


def test_output_is_written_atomically(champion_report) -> None:
    path, _ = champion_report
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_log_is_read_as_the_models_training_log_was(small_model, sample_csv) -> None:
    """The report reads a user's log with the columns the model was trained with (here the
    CDNOW file's `date`), under any column option it is given."""
    from clv.features.errors import TransactionLogError
    from clv.reports.data import customer_base

    as_of = date(1997, 9, 30)
    with pytest.raises(TransactionLogError, match="column 'timestamp'"):
        customer_base(small_model, sample_csv, None, as_of)  # trained columns unknown
    trained = small_model.with_spec(columns=CDNOW_COLUMNS)
    base = customer_base(trained, sample_csv, None, as_of)
    given = customer_base(small_model, sample_csv, CDNOW_COLUMNS, as_of)
    assert len(base.features) == len(given.features) == 2357


def test_the_model_card_says_how_the_training_log_was_read() -> None:
    from clv.features.config import ColumnMapping
    from clv.reports.section_model import _columns

    assert _columns(None) == "not recorded"
    assert _columns(ColumnMapping()).startswith("the contract's names")
    mapped = ColumnMapping(timestamp="date", unit_price="Price", quantity="Qty")
    assert _columns(mapped) == "quantity = Qty, timestamp = date, unit_price = Price"
