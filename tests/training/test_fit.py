"""Choosing the blend of the boosters' value with the baseline's, on known data."""

from __future__ import annotations

import numpy as np
import pytest
from clv.training.config import ModelParams
from clv.training.fit import choose_blend, tweedie_deviance
from sklearn.metrics import mean_tweedie_deviance


def test_tweedie_deviance_matches_sklearn():
    rng = np.random.default_rng(0)
    actual = rng.gamma(0.5, 30.0, size=300) * (rng.random(300) < 0.4)
    predicted = rng.gamma(2.0, 10.0, size=300)
    assert tweedie_deviance(actual, predicted) == pytest.approx(
        mean_tweedie_deviance(actual, predicted, power=1.5)
    )


def test_choose_blend_recovers_a_known_mixture():
    """Actual spend drawn around 2 * (0.7 * a + 0.3 * b) ** 1.1: the grid finds w, k and c."""
    rng = np.random.default_rng(1)
    a, b = rng.gamma(1.0, 20.0, size=20_000), rng.gamma(1.0, 20.0, size=20_000)
    mean = 2.0 * (0.7 * a + 0.3 * b) ** 1.1
    actual = rng.gamma(2.0, mean / 2.0)
    weight, scale, power = choose_blend(actual, a, b)
    assert weight == pytest.approx(0.3, abs=0.051)
    assert power == pytest.approx(1.1, abs=0.051)
    assert scale * ((1 - weight) * a + weight * b) ** power == pytest.approx(mean, rel=0.25)
    # The scale makes the totals agree.
    total = (scale * ((1 - weight) * a + weight * b) ** power).sum()
    assert total == pytest.approx(actual.sum(), rel=1e-9)


def test_choose_blend_respects_the_largest_weight():
    rng = np.random.default_rng(2)
    b = rng.gamma(1.0, 20.0, size=5_000)
    actual = rng.gamma(2.0, b / 2.0)  # the baseline is the truth
    assert choose_blend(actual, rng.gamma(1.0, 20.0, size=5_000), b)[0] == 1.0
    assert choose_blend(actual, rng.gamma(1.0, 20.0, size=5_000), b, max_weight=0.4)[0] <= 0.4


def test_blend_folds_of_one_are_refused():
    with pytest.raises(ValueError, match="blend_folds"):
        ModelParams(blend_folds=1)
