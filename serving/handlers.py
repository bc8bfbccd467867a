"""What the service's endpoints do, without the server: validated customers in, responses out.

Customers of one (merged, adaptive) batch are scored together. Each gets an internal id (its
position), so that two requests batched together may use the same customer_id, and raw logs are
grouped by the optional columns they carry, so that one customer's features never depend on
which other customers share its batch (e.g. de-duplication applies to logs with an order id).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from clv.features import schema
from pydantic import TypeAdapter

from .schemas import (
    CustomerExplanation,
    CustomerIn,
    CustomerPrediction,
    ExplainResponse,
    ModelInfo,
    ShapVector,
)
from .scoring import FEATURE_FAMILIES, Scorer, frame_columns

_OPTIONAL = (schema.ORDER_ID, schema.QUANTITY, schema.PRODUCT, schema.CHANNEL)


def _optional_columns(customer: CustomerIn) -> tuple[str, ...]:
    txs = customer.transactions or []
    return tuple(c for c in _OPTIONAL if any(getattr(tx, c) is not None for tx in txs))


def _log_columns(
    customers: Sequence[tuple[int, CustomerIn]], optional: tuple[str, ...]
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The customers' transactions and as-of dates as columns (lists), ids '0', '1', ..."""
    names = (schema.CUSTOMER_ID, schema.TIMESTAMP, schema.AMOUNT, *optional)
    log: dict[str, list[Any]] = {c: [] for c in names}
    ids, timestamps, amounts = log[schema.CUSTOMER_ID], log[schema.TIMESTAMP], log[schema.AMOUNT]
    extra = [(log[c], c) for c in optional]
    for i, customer in customers:
        key = str(i)
        for tx in customer.transactions or []:
            ids.append(key)
            timestamps.append(tx.naive_timestamp)
            amounts.append(tx.amount)
            for values, c in extra:
                values.append(getattr(tx, c))
    as_of: dict[str, list[Any]] = {
        schema.CUSTOMER_ID: [str(i) for i, _ in customers],
        schema.CUTOFF: [c.as_of for _, c in customers],
    }
    return log, as_of


def _given_frame(members: Sequence[tuple[int, CustomerIn]], columns: list[str]) -> pd.DataFrame:
    """Customers sent with precomputed features; null (missing) features become NaN."""
    numeric = columns[2:]
    rows = [
        [math.nan if (v := (c.features or {}).get(n)) is None else v for n in numeric]
        for _, c in members
    ]
    matrix = np.asarray(rows, dtype=float).reshape(len(members), len(numeric))
    data: dict[str, object] = {
        schema.CUSTOMER_ID: [str(i) for i, _ in members],
        schema.LIFECYCLE_STAGE: [c.lifecycle_stage for _, c in members],
    }
    data.update({n: matrix[:, j] for j, n in enumerate(numeric)})
    return pd.DataFrame(data)


def feature_frame(scorer: Scorer, customers: Sequence[CustomerIn]) -> pd.DataFrame:
    """One row per customer, in request order, with internal ids '0', '1', ... as customer_id.

    Columns: `frame_columns(scorer.model)` (id, lifecycle stage, model inputs as floats).
    """
    columns = frame_columns(scorer.model)
    groups: dict[tuple[str, ...], list[tuple[int, CustomerIn]]] = defaultdict(list)
    given: list[tuple[int, CustomerIn]] = []
    for i, customer in enumerate(customers):
        if customer.features is not None:
            given.append((i, customer))
        else:
            groups[_optional_columns(customer)].append((i, customer))
    parts = [_given_frame(given, columns)] if given else []
    for optional, members in groups.items():
        log, as_of = _log_columns(members, optional)
        # Request models validated every value (schemas.py): the feature SQL runs unchecked.
        part = scorer.features_from_transactions(log, as_of, trusted=True)[columns]
        cast = [c for c, t in part.dtypes.iloc[2:].items() if t != np.float64]
        parts.append(part.astype(dict.fromkeys(cast, float)) if cast else part)
    if len(parts) == 1:
        return parts[0]  # each part is in request order already
    frame = pd.concat(parts, ignore_index=True)
    order = np.argsort(frame[schema.CUSTOMER_ID].astype(int).to_numpy(), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else x


def prediction_rows(
    scorer: Scorer, customers: Sequence[CustomerIn], top_k: int
) -> list[dict[str, Any]]:
    """Predictions with the top_k value drivers per customer, in request order, as plain
    dicts shaped like `CustomerPrediction` (cheaper to build and serialise than models)."""
    if not customers:
        return []
    features = feature_frame(scorer, customers)
    scored = scorer.score(features, top_k=max(top_k, 1))
    assert scored.explanation is not None
    p = scored.predictions
    rows = np.arange(len(p))[:, None]
    index = scored.driver_index[:, :top_k]
    contrib = scored.explanation.contributions[rows, index].tolist()
    values = scored.explanation.feature_values[rows, index].tolist()
    index_list = index.tolist()
    present = [f for f in range(len(FEATURE_FAMILIES)) if scorer._family_matrix[:, f].any()]
    family_values = scored.family_contributions[:, present].tolist()
    cols = {c: p[c].tolist() for c in p.columns}
    base = scored.explanation.base_value.tolist()
    described = [
        {"feature": info.name, "label": info.label, "family": info.family} for info in scorer.infos
    ]
    constant = {"horizon_days": scorer.model.spec.horizon_days, "model_version": scorer.version}
    out = []
    for i, customer in enumerate(customers):
        drivers = [
            {**described[j], "value": _none_if_nan(v), "contribution": c}
            for j, c, v in zip(index_list[i], contrib[i], values[i], strict=True)
        ]
        families = sorted(
            (
                {"family": FEATURE_FAMILIES[f], "contribution": v}
                for f, v in zip(present, family_values[i], strict=True)
            ),
            key=lambda d: -abs(d["contribution"]),
        )
        row: dict[str, Any] = {
            "customer_id": customer.customer_id,
            "as_of": customer.as_of,
            "horizon_days": constant["horizon_days"],
        }
        row.update({c: cols[c][i] for c in _PREDICTION_FIELDS})
        row.update(
            base_value=base[i],
            drivers=drivers,
            families=families,
            model_version=constant["model_version"],
        )
        out.append(row)
    return out


_PREDICTION_FIELDS = (
    "predicted_value",
    "value_p10",
    "value_p90",
    "churn_probability",
    "value_at_risk",
    "spend_if_active",
    schema.HISTORICAL_VALUE,
    schema.LIFECYCLE_STAGE,
    "value_tier",
)
_ROWS: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(list[dict[str, Any]])
_PREDICTIONS: TypeAdapter[list[CustomerPrediction]] = TypeAdapter(list[CustomerPrediction])


def predictions_json(rows: list[dict[str, Any]]) -> bytes:
    """JSON of `prediction_rows` (a list of CustomerPrediction), serialised in one call."""
    return _ROWS.dump_json(rows)


def predict(
    scorer: Scorer, customers: Sequence[CustomerIn], top_k: int
) -> list[CustomerPrediction]:
    """Predictions with the top_k value drivers per customer, in request order."""
    return _PREDICTIONS.validate_python(prediction_rows(scorer, customers, top_k))


def explain(scorer: Scorer, customers: Sequence[CustomerIn]) -> ExplainResponse:
    """Full SHAP vectors per customer: value (currency) and churn (log-odds of the booster)."""
    features = feature_frame(scorer, customers)
    threads = scorer.threads_for(len(features))
    x = scorer.model.model_inputs(features)
    value = scorer.model.explain_value(features, num_threads=threads, inputs=x)
    churn = scorer.model.explain_churn(features, num_threads=threads, inputs=x)
    names = value.feature_names
    out = []
    for i, customer in enumerate(customers):
        vc, cc = value.contributions[i].tolist(), churn.contributions[i].tolist()
        out.append(
            CustomerExplanation(
                customer_id=customer.customer_id,
                feature_values={
                    n: _none_if_nan(x)
                    for n, x in zip(names, value.feature_values[i].tolist(), strict=True)
                },
                value=ShapVector(
                    scale=value.scale,
                    base_value=float(value.base_value[i]),
                    prediction=float(value.base_value[i] + value.contributions[i].sum()),
                    contributions=dict(zip(names, vc, strict=True)),
                ),
                churn=ShapVector(
                    scale=churn.scale,
                    base_value=float(churn.base_value[i]),
                    prediction=float(churn.base_value[i] + churn.contributions[i].sum()),
                    contributions=dict(zip(names, cc, strict=True)),
                ),
            )
        )
    return ExplainResponse(model_version=scorer.version, customers=out)


def model_info(scorer: Scorer) -> ModelInfo:
    """What GET /model returns: version, training window, horizon, features, metrics."""
    loaded, spec = scorer.loaded, scorer.model.spec
    return ModelInfo(
        name=loaded.name,
        version=loaded.version,
        alias=loaded.alias,
        run_id=loaded.run_id,
        horizon_days=spec.horizon_days,
        training_window=spec.training_window.model_dump(mode="json"),
        trained_at=spec.trained_at,
        feature_names=list(spec.feature_names),
        input_features=list(scorer.model.input_features),
        feature_config=spec.feature_config.model_dump(mode="json"),
        tier_thresholds=spec.tier_thresholds.model_dump(),
        validation_metrics=spec.validation_metrics,
        fingerprint=spec.fingerprint(),
        training_columns=None if spec.columns is None else spec.columns.chosen(),
    )
