"""The champion gate's rules: a candidate is promoted only when it beats, on every rule of
`GATE_RULES`,

(a) the BG/NBD + Gamma-Gamma baseline of its own run, and
(b) the current champion, if there is one:

higher spearman, normalized_gini, top_decile_capture and roc_auc; lower brier; decile_mape not
higher; |total_ratio - 1| not larger. A tie on a "higher"/"lower" rule is not a win, so
retraining the same model on the same data never moves the alias.

Pure functions of metrics: where the champion's metrics come from (re-scored on the
candidate's evaluation customers, or logged) and how the alias moves is `promotion.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from clv.models.registry import CHAMPION_ALIAS

Direction = Literal["higher", "lower", "not_higher", "closer_to_one"]
BASIS_SAME_CUSTOMERS: Final = "same customers"
BASIS_LOGGED: Final = "champion's logged metrics"
BASIS_NO_CHAMPION: Final = "no champion"
BASIS_NOT_COMPARED: Final = "not compared"

_NEEDS: Final = {
    "higher": "needs higher",
    "lower": "needs lower",
    "not_higher": "must not be higher",
    "closer_to_one": "|x - 1| must not be larger",
}


@dataclass(frozen=True)
class Rule:
    """One metric the candidate must win (or not lose) on, and in which direction."""

    metric: str
    direction: Direction


GATE_RULES: Final = (
    Rule("spearman", "higher"),
    Rule("normalized_gini", "higher"),
    Rule("top_decile_capture", "higher"),
    Rule("decile_mape", "not_higher"),
    Rule("total_ratio", "closer_to_one"),
    Rule("roc_auc", "higher"),
    Rule("brier", "lower"),
)


@dataclass(frozen=True)
class Check:
    """The outcome of one rule against one reference (the baseline, or the champion)."""

    against: str
    metric: str
    direction: Direction
    candidate: float
    reference: float | None
    passed: bool

    @property
    def skipped(self) -> bool:
        return self.reference is None

    def describe(self) -> str:
        if self.reference is None:
            return f"{self.metric} {self.candidate:.4f} (no {self.against} value: not compared)"
        delta = self.candidate - self.reference
        if self.direction == "closer_to_one":
            delta = abs(self.candidate - 1) - abs(self.reference - 1)
            return (
                f"{self.metric} {self.candidate:.4f} vs {self.reference:.4f} "
                f"(|x - 1| {delta:+.4f}; {_NEEDS[self.direction]})"
            )
        return (
            f"{self.metric} {self.candidate:.4f} vs {self.reference:.4f} "
            f"({delta:+.4f}; {_NEEDS[self.direction]})"
        )


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _wins(candidate: float, reference: float, direction: Direction, tolerance: float) -> bool:
    if direction == "higher":
        return candidate > reference + tolerance
    if direction == "lower":
        return candidate < reference - tolerance
    if direction == "not_higher":
        return candidate <= reference + tolerance
    return abs(candidate - 1) <= abs(reference - 1) + tolerance


def compare(
    candidate: Mapping[str, float],
    reference: Mapping[str, float],
    against: str,
    rules: Sequence[Rule] = GATE_RULES,
    tolerance: float = 1e-9,
) -> list[Check]:
    """Check the candidate's metrics against a reference's, rule by rule.

    `tolerance` absorbs float noise: "higher" needs more than reference + tolerance, "not
    higher" allows up to reference + tolerance.

    A missing or NaN candidate metric fails its rule; a missing or NaN reference metric is not
    compared (the check passes and says so).
    """
    checks = []
    for rule in rules:
        mine = _finite(candidate.get(rule.metric))
        theirs = _finite(reference.get(rule.metric))
        if mine is None:
            checks.append(
                Check(against, rule.metric, rule.direction, float("nan"), theirs, passed=False)
            )
        elif theirs is None:
            checks.append(Check(against, rule.metric, rule.direction, mine, None, passed=True))
        else:
            passed = _wins(mine, theirs, rule.direction, tolerance)
            checks.append(Check(against, rule.metric, rule.direction, mine, theirs, passed))
    return checks


@dataclass
class ChampionScore:
    """The current champion and its metrics, measured on `basis`."""

    version: str
    metrics: dict[str, float]
    basis: str
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class PromotionDecision:
    """Whether the candidate may take the alias, every check behind it, and notes for humans."""

    promote: bool
    checks: list[Check]
    basis: str
    champion_version: str | None = None
    blocked: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self, version: str | None = None, alias: str = CHAMPION_ALIAS) -> str:
        """Lines for the terminal: the verdict first, then failed checks and notes."""
        if self.promote:
            head = f"promotion: promoted version {version} to '{alias}'"
            if self.champion_version:
                head += f" (beats champion version {self.champion_version} on {self.basis})"
            else:
                head += " (beats the baseline; there was no champion)"
        else:
            keep = (
                f"'{alias}' stays on version {self.champion_version}"
                if self.champion_version
                else f"no version has '{alias}'"
            )
            new = f"version {version} is registered; " if version else ""
            head = f"promotion: NOT PROMOTED ({new}{keep})"
        lines = [head]
        if self.blocked:
            lines.append(f"  {self.blocked}")
        for check in self.failed:
            lines.append(f"  fails vs {check.against}: {check.describe()}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def tags(self) -> dict[str, str]:
        """Run tags recording the decision (MLflow tag values are strings)."""
        failed = "; ".join(f"{c.against}: {c.describe()}" for c in self.failed)
        return {
            "promotion.decision": "promoted" if self.promote else "not promoted",
            "promotion.basis": self.basis,
            "promotion.champion_version": self.champion_version or "none",
            "promotion.failed": failed[:5000],
            "promotion.blocked": (self.blocked or "")[:5000],
            "promotion.notes": " | ".join(self.notes)[:5000],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "basis": self.basis,
            "champion_version": self.champion_version,
            "blocked": self.blocked,
            "notes": self.notes,
            "checks": [
                {
                    "against": c.against,
                    "metric": c.metric,
                    "direction": c.direction,
                    "candidate": c.candidate,
                    "reference": c.reference,
                    "passed": c.passed,
                }
                for c in self.checks
            ],
        }


def decide(
    metrics: Mapping[str, Mapping[str, float]],
    champion: ChampionScore | None,
    blocked: str | None = None,
    rules: Sequence[Rule] | None = None,
) -> PromotionDecision:
    """The gate: `metrics` is the run's {"model": {...}, "baseline": {...}}.

    `rules` defaults to `GATE_RULES`. `blocked` (a reason) refuses promotion whatever the
    metrics say, e.g. a champion that cannot be compared; the baseline checks still show.
    """
    rules = GATE_RULES if rules is None else rules
    checks = compare(metrics["model"], metrics.get("baseline", {}), "baseline", rules)
    basis = BASIS_NO_CHAMPION
    version = None
    notes: list[str] = []
    if champion is not None:
        basis, version, notes = champion.basis, champion.version, list(champion.notes)
        checks += compare(metrics["model"], champion.metrics, f"champion v{version}", rules)
    promote = blocked is None and all(c.passed for c in checks)
    return PromotionDecision(promote, checks, basis, version, blocked, notes)
