"""The promotion gate: a pure decision on numbers measured on the same latest eval window.

The SLO is checked on the new model's metric over the whole latest eval window, from its fit
on the train split (so the window is unseen, even when the artifact is then refit on it).
The comparison uses both models' metric on the same eval rows: those the champion was not
trained on (engine.training.fit explains why); `basis` says which rows they were.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from engine.config import HIGHER_IS_BETTER, ModelConfig, Slo
from engine.records import ModelStatus


@dataclass(frozen=True)
class Decision:
    status: ModelStatus  # champion | rejected | challenger, or the pair's failed | waiting
    reason: str


def _slo_text(slo: Slo) -> str:
    parts = ([f">= {slo.min}"] if slo.min is not None else []) + ([f"<= {slo.max}"] if slo.max is not None else [])
    return " and ".join(parts) or "none"


def _fmt(value: float | None) -> str:
    return "nan" if value is None or value != value else f"{value:.4f}"


def decide(model: ModelConfig, *, value: float | None, champion_version: str | None = None,
           champion_value: float | None = None, champion_problem: str | None = None, gate: bool = True,
           compared: float | None = None, basis: str | None = None,
           untrained: ModelStatus | None = None, reason: str | None = None) -> Decision:
    """champion (promote), rejected (both numbers in the reason), or challenger (no gate); a
    pair that did not train (`untrained`: failed | waiting) keeps that status and its `reason`.

    value: the new model's metric on the whole eval window (for the SLO); compared: its metric
    on the rows the champion was scored on (defaults to value); champion_value: the
    champion's metric on those rows."""
    if untrained is not None:
        return Decision(ModelStatus(untrained), reason or untrained.value)
    metric = model.metric
    value = math.nan if value is None else value
    have_champion = champion_version is not None
    champ = math.nan if champion_value is None else champion_value
    new = value if compared is None or compared != compared else compared
    on = f" on {basis}" if basis else ""
    versus = f"; vs champion {champion_version}: {_fmt(new)} vs {_fmt(champ)}{on}" if have_champion else ""
    if not gate:
        return Decision(ModelStatus.CHALLENGER, f"not gated: {metric} {_fmt(value)}{versus}")
    if not model.slo.met(value):
        return Decision(ModelStatus.REJECTED, f"{metric} {_fmt(value)} misses the SLO ({metric} {_slo_text(model.slo)}){versus}")
    if not have_champion:
        return Decision(ModelStatus.CHAMPION, f"first model of the pair: {metric} {_fmt(value)} meets the SLO")
    if champion_problem is not None or champ != champ:
        why = champion_problem or f"its {metric} is undefined on these rows"
        return Decision(ModelStatus.CHAMPION, f"champion {champion_version} could not be scored on the eval window ({why}); "
                                    f"promoted on the SLO: {metric} {_fmt(value)}")
    gain = new - champ if HIGHER_IS_BETTER[metric] else champ - new
    delta = model.promotion.min_delta
    head = f"{metric} {_fmt(new)} vs champion {champion_version} {_fmt(champ)}{on}"
    if gain > 0 and gain >= delta:
        return Decision(ModelStatus.CHAMPION, f"{head}: better by {gain:.4f} (min_delta {delta})")
    return Decision(ModelStatus.REJECTED, f"{head}: does not beat it by min_delta {delta} (gain {gain:.4f})")
