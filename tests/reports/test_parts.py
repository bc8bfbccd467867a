"""The report's parts on small inputs: summaries, driver sampling and weights, HTML escaping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from clv.models.spec import TierThresholds
from clv.reports import drivers, tables
from clv.reports.figures import axis_money, money, new_figure, to_data_uri
from clv.reports.html import Section, render_page
from clv.reports.sections import metrics_table


@pytest.fixture
def predictions() -> pd.DataFrame:
    """Ten customers: one platinum, two gold, three silver, four bronze."""
    value = np.array([500.0, 100, 90, 30, 20, 15, 5, 4, 3, 1])
    churn = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    spend = value / (1 - churn)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(10)],
            "predicted_value": value,
            "churn_probability": churn,
            "value_at_risk": churn * spend,
            "historical_value": np.arange(10, dtype=float) * 10,
            "lifecycle_stage": ["short_term"] * 4 + ["lapsed"] * 6,
            "value_tier": ["platinum", "gold", "gold"] + ["silver"] * 3 + ["bronze"] * 4,
        }
    )


def test_tier_summary_shares_and_order(predictions: pd.DataFrame) -> None:
    summary = tables.tier_summary(predictions, TierThresholds(platinum=200, gold=50, silver=10))
    assert list(summary["segment"]) == ["platinum", "gold", "silver", "bronze"]
    assert list(summary["customers"]) == [1, 2, 3, 4]
    assert summary["share_of_value"].sum() == pytest.approx(1.0)
    assert summary.loc[0, "share_of_value"] == pytest.approx(500 / 768)
    assert summary.loc[0, "predicted_value_range"] == "≥ 200"
    risk = summary["value_at_risk"] / (summary["predicted_value"] + summary["value_at_risk"])
    np.testing.assert_allclose(summary["risk_share"], risk)


def test_concentration_is_the_top_customers_share(predictions: pd.DataFrame) -> None:
    top = tables.concentration(predictions, shares=(0.1, 0.2))
    assert top[0.1] == pytest.approx(500 / 768)
    assert top[0.2] == pytest.approx(600 / 768)


def test_value_risk_matrix_counts_every_customer_once(predictions: pd.DataFrame) -> None:
    counts, value = tables.value_risk_matrix(predictions)
    assert int(counts.to_numpy().sum()) == len(predictions)
    assert value.to_numpy().sum() == pytest.approx(predictions["predicted_value"].sum())
    assert counts.loc["platinum", "low (<25%)"] == 1
    assert counts.loc["bronze", "very high (≥75%)"] == 3  # 0.8, 0.9, 0.95


def test_stratified_rows_keep_small_tiers_and_weight_back() -> None:
    tiers = pd.Series(["platinum"] * 5 + ["gold"] * 50 + ["bronze"] * 945)
    rows, weights = drivers.stratified_rows(tiers, max_rows=200, seed=0)
    assert len(rows) == len(set(rows.tolist()))
    assert weights.sum() == pytest.approx(len(tiers))
    picked = tiers.iloc[rows].value_counts()
    assert picked["platinum"] == 5
    assert picked["gold"] == 50
    assert picked["bronze"] == 50
    all_rows, ones = drivers.stratified_rows(tiers.head(100), max_rows=200)
    assert list(all_rows) == list(range(100))
    assert (ones == 1).all()


def test_explanations_add_up_and_importance_is_weighted(small_model, small_features) -> None:
    predicted = small_model.predict(small_features)
    explained = drivers.explain_base(small_model, small_features, predicted, max_rows=400)
    e = explained.explanation
    np.testing.assert_allclose(
        e.base_value + e.contributions.sum(axis=1),
        predicted["predicted_value"].to_numpy()[explained.rows],
        rtol=1e-6,
        atol=1e-6,
    )
    table = drivers.importance(explained)
    assert table["mean_abs"].is_monotonic_decreasing
    assert table["share"].sum() == pytest.approx(1.0)
    examples = drivers.pick_examples(small_features, predicted)
    positions = [x.position for x in examples]
    assert len(positions) == len(set(positions)) >= 3
    assert positions[0] == int(predicted["predicted_value"].to_numpy().argmax())


def test_metrics_table_says_which_model_does_better() -> None:
    table = metrics_table(
        {
            "model": {"normalized_gini": 0.7, "brier": 0.2, "total_ratio": 0.95},
            "baseline": {"normalized_gini": 0.6, "brier": 0.1, "total_ratio": 1.2},
        }
    )
    assert dict(zip(table["metric"], table["better"], strict=True)) == {
        "Normalized Gini of the value ranking": "model",
        "Churn Brier score": "baseline",
        "Total predicted / total actual value": "model",
    }


def test_html_escapes_data_and_refuses_linked_images() -> None:
    section = Section("s", "Customers <b>")
    section.table(pd.DataFrame({"customer_id": ["<script>alert(1)</script>"], "value": [1.5]}))
    with pytest.raises(ValueError, match="embedded PNG"):
        section.figure("https://example.com/a.png", "a", "b")
    page = render_page("t", "s", [section], "f")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "Customers &lt;b&gt;" in page


def test_figures_render_headless_to_png_data_uris() -> None:
    fig = new_figure(2, 2)
    fig.add_subplot().plot([0, 1], [1, 0])
    assert to_data_uri(fig).startswith("data:image/png;base64,iVBORw0KGgo")


def test_number_formats() -> None:
    assert money(1234.5) == "1,234"
    assert money(12345) == "12.3k"
    assert money(2_500_000) == "2.5M"
    assert money(float("nan")) == "–"
    assert axis_money(250_000) == "250k"
    assert axis_money(50) == "50"


def test_model_card_warns_when_the_base_is_not_the_models_own_data(
    small_model, small_features
) -> None:
    from datetime import date

    from clv.models.registry import LoadedModel
    from clv.reports.data import CustomerBase, ReportData
    from clv.reports.sections import model_card

    base = CustomerBase(
        features=small_features,
        predictions=small_model.predict(small_features),
        as_of=date(1997, 9, 30),
        source="the bundled CDNOW master log",
        log_first_date=date(1997, 1, 1),
        log_last_date=date(1998, 6, 30),
        has_actuals=False,
        bundled=True,
    )
    data = ReportData(
        loaded=LoadedModel(small_model, "clv", "3", "champion", "run1", "models:/clv/3"),
        base=base,
        evaluation=None,
        evaluation_note="none",
        metrics={},
        metrics_source="the model spec",
        run_params={"data.source": "/data/shop.parquet", "data.n_train_customers": "1200"},
    )
    html = "\n".join(model_card(data).blocks)
    assert "trained on /data/shop.parquet" in html
    assert "1,200 in training" in html
    assert "carries no validation metrics" in html
