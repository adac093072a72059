"""Which columns a feature set's features come from, which only give context, which failed earlier."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterable, Mapping

from engine.validation.learned.vocabulary import TABLE, TYPE_PREFIX


def input_columns_of(features: Mapping[str, str], sources: Iterable[str]) -> dict[str, list[str]]:
    """feature -> the source columns its SQL expression references (sorted; features that
    reference none are left out)."""
    sources = list(sources)
    out = {}
    for name, expr in features.items():
        text = re.sub(r"'(?:[^'\\]|\\.)*'", " ", expr)  # string literals are not references
        refs = sorted(s for s in sources if re.search(rf"(?<![\w.]){re.escape(s)}(?!\w)", text))
        if refs:
            out[name] = refs
    return out


def source_columns_of(features: Mapping[str, str], sources: Iterable[str]) -> dict[str, str]:
    """feature -> the one source column its SQL expression references (features built from
    several source columns, or none, are left out)."""
    return {name: refs[0] for name, refs in input_columns_of(features, sources).items() if len(refs) == 1}


def context_columns(fs) -> list[str]:
    """The columns of a feature set that explain others but never alert: rolling windows (a
    7- or 28-day aggregate is smooth and autocorrelated, one-day residuals understate its
    tail, and it repeats each source day for N days: the source column alerts on its own day,
    not again on the N days a window holds it, nor on the day it leaves)."""
    return [r.name for r in fs.rolling]


def failed_columns_of(statuses: Iterable[Any]) -> dict[dt.date, set[str]]:
    """Earlier days whose learned checks failed -> the failed columns ('*' the table), for
    `judge(failed_columns=...)`: a valid day with learned warnings, or a day quarantined by
    learned checks alone (not a stale copy), stays history without those columns. `statuses`:
    PartitionStatus-like objects (ds, status, reasons of ValidationFailure)."""
    out: dict[dt.date, set[str]] = {}
    for s in statuses:
        learned = [r for r in s.reasons if r.expectation.startswith(TYPE_PREFIX)]
        if not learned:
            continue
        others = [r for r in s.reasons if not r.expectation.startswith(TYPE_PREFIX) and r.severity == "block"]
        if s.status != "valid" and (others or any(r.expectation == TYPE_PREFIX + "stale_copy" for r in learned)):
            continue
        out[s.ds] = {r.column or TABLE for r in learned}
    return out
