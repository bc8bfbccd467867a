"""Why the value model is two-part: churn x spend-if-active against one Tweedie regressor.

On the bundled CDNOW master log (customer holdout, cutoff 1997-09-30, 273-day horizon), the
same training panel, features and boosting settings feed (a) the composite's two boosters
without the blend (value = (1 - P(churn)) x spend if active) and (b) one LightGBM regressor of
future spend with a Tweedie loss (variance powers 1.2, 1.5, 1.8). Prints value metrics of each,
and of the full composite (with blend) for reference.

    .venv/bin/python benchmarks/value_loss_choice.py [--seed 42]
"""

from __future__ import annotations

import argparse
from datetime import date

import lightgbm as lgb
import numpy as np
import pandas as pd
from clv.features import schema
from clv.features.datasets import CDNOW_COLUMNS, cdnow_master_path
from clv.features.transactions import load_transactions
from clv.training.config import TrainingConfig
from clv.training.evaluate import evaluate
from clv.training.metrics import value_metrics

KEYS = ("spearman", "normalized_gini", "top_decile_capture", "decile_mape", "total_ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    log = load_transactions(cdnow_master_path(), columns=CDNOW_COLUMNS)
    config = TrainingConfig(horizon_days=273, cutoff=date(1997, 9, 30), seed=args.seed)
    result = evaluate(log, config)
    model, train = result.model, result.training_panel
    evaluated = result.predictions[schema.CUSTOMER_ID]
    at_cutoff = result.window["evaluation_cutoff"]
    features = load_eval_features(log, config, evaluated, at_cutoff)
    actual = features[schema.FUTURE_SPEND].to_numpy(dtype=float)

    x_eval = model.model_inputs(features)
    churn = model.churn_probability_from_margin(model.churn_booster.predict(x_eval, raw_score=True))
    spend = np.exp(model.spend_booster.predict(x_eval, raw_score=True))
    rows = {
        "two-part, boosters alone": value_metrics(actual, (1 - churn) * spend),
        "two-part + blend (shipped)": value_metrics(
            actual, model.predict(features)["predicted_value"]
        ),
    }
    x_train = model.model_inputs(train)
    y_train = train[schema.FUTURE_SPEND].to_numpy(dtype=float)
    rng = np.random.default_rng(args.seed)
    ids = train[schema.CUSTOMER_ID].unique()
    valid_ids = set(rng.choice(ids, size=len(ids) // 5, replace=False).tolist())
    valid = train[schema.CUSTOMER_ID].isin(valid_ids).to_numpy()
    spend_params = config.params.spend
    for power in (1.2, 1.5, 1.8):
        params = {
            "objective": "tweedie",
            "tweedie_variance_power": power,
            "learning_rate": spend_params.learning_rate,
            "num_leaves": 15,
            "max_depth": spend_params.max_depth,
            "min_data_in_leaf": spend_params.min_data_in_leaf,
            "feature_fraction": spend_params.feature_fraction,
            "bagging_fraction": spend_params.bagging_fraction,
            "bagging_freq": spend_params.bagging_freq,
            "lambda_l2": spend_params.lambda_l2,
            "seed": args.seed,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        }
        names = model.spec.feature_names
        fit_set = lgb.Dataset(x_train[~valid], y_train[~valid], feature_name=names)
        valid_set = lgb.Dataset(x_train[valid], y_train[valid], reference=fit_set)
        booster = lgb.train(
            params,
            fit_set,
            num_boost_round=spend_params.max_rounds,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(spend_params.early_stopping_rounds, verbose=False)],
        )
        predicted = booster.predict(x_eval, num_iteration=booster.best_iteration)
        rows[f"one Tweedie regressor (p={power})"] = value_metrics(actual, predicted)
    table = pd.DataFrame(rows).T[list(KEYS)]
    print(table.round(4).to_string())


def load_eval_features(log, config, customers, cutoff) -> pd.DataFrame:
    from clv.features.build import build_panel

    panel = build_panel(log, [cutoff], config.horizon_days, config.feature_config)
    panel = panel[panel[schema.CUSTOMER_ID].isin(set(customers))]
    return panel.set_index(schema.CUSTOMER_ID).loc[list(customers)].reset_index()


if __name__ == "__main__":
    main()
