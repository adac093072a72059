"""The judge: every judged day in date order against the history before it (no cascade, a cap)."""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from engine.config import LearnedSettings
from engine.validation.learned.calibration import emerged, threshold as column_threshold, vanished
from engine.validation.learned.messages import alert, finite
from engine.validation.learned.results import Judgement, LearnedResult
from engine.validation.learned.series import SeriesModel
from engine.validation.learned.table import SummaryMatrix, norm
from engine.validation.learned.tuning import TUNING as T
from engine.validation.learned.vocabulary import COUNT_STATS, SCALE_STATS, TABLE, TYPE_PREFIX


def judge(rows: Iterable[Mapping[str, Any]], *, table: str, days: Sequence[dt.date],
          statuses: Mapping[dt.date, str] | None = None, settings: LearnedSettings = LearnedSettings(),
          sources: Mapping[str, str] | None = None, blocked: Iterable[dt.date] = (),
          entity: Iterable[str] = (), context: Iterable[str] = (),
          failed_columns: Mapping[dt.date, Iterable[str]] | None = None,
          inputs: Mapping[str, Iterable[str]] | None = None) -> list[Judgement]:
    """Judge each of `days` (in date order) against the history before it.

    rows: `validation/summaries` rows of this table (history and the judged days);
    statuses: 'valid' | 'quarantined' of earlier partitions (a day without a status and not
    judged here is not history). sources: derived feature -> source column, to name the
    source column in alerts. inputs: derived feature -> every source column it is computed
    from; a feature of several sources that fails on a day one of them fails is that
    source's alert (named `(from <source>)`, its source_column), not a second one.
    blocked: judged days quarantined by other checks (the suite, the entity key): they never
    become history. entity: the key columns (only their nulls are
    judged); context: columns that explain others but never alert (rolling windows).
    failed_columns: earlier days whose learned checks failed -> the columns that failed
    ('*' the table); such a day, even quarantined by learned checks alone, stays history with
    those columns left out (a false positive must not freeze the history: no cascade).

    No cascade, by construction: a day a learned check fails on is history for every other
    column, and the failed column's values on it are left out; a column that fails T.level_days
    days in a row has shifted for good and restarts from the shift (its left-out days come
    back); a column that fails T.recurrence_failures times within T.recurrence_days on the
    same statistic in the same direction (a weekday's pattern, a rare value that keeps coming
    back) gets its left-out days back (its failures are its nature: left out, they could never
    be learned). A cap: when more than `max_quarantine_share` of the judged days (and more than
    two) would be quarantined by learned checks, none is: the run reports instead (every
    judgement `capped`, its failures recorded as warnings)."""
    out = _judge_all(rows, table=table, days=days, statuses=statuses, settings=settings, sources=sources,
                     blocked=blocked, entity=entity, context=context, failed_columns=failed_columns,
                     inputs=inputs)
    quarantined = sum(j.quarantine for j in out)
    if settings.severity == "block" and quarantined > max(2, settings.max_quarantine_share * len(out)):
        for j in out:
            j.capped = True
    return out


def _judge_all(rows, *, table, days, statuses, settings, sources, blocked, entity, context,
               failed_columns, inputs=None) -> list[Judgement]:
    statuses = dict(statuses or {})
    sources = dict(sources or {})
    inputs = {c: [s for s in cs if s != c] for c, cs in (inputs or {}).items() if c not in sources}
    failed_columns = {d: set(cs) for d, cs in (failed_columns or {}).items()}
    t = SummaryMatrix(rows, set(settings.columns) if settings.columns is not None else None, set(settings.exclude))
    judged = set(days)
    blocked = set(blocked)
    valid = {d for d in t.days if d not in judged and (statuses.get(d) == "valid" or d in failed_columns)}

    def history(i: int) -> list[int]:
        d = t.days[i]
        past = [k for k in range(i) if t.days[k] in valid and (d - t.days[k]).days <= 10 * settings.history_days]
        return past[-settings.history_days:]

    t.add_variant_columns()
    j = SeriesModel(t, settings, sources, entity=entity, context=context, inputs=inputs)
    left_out: dict[str, list[int]] = defaultdict(list)  # column -> days its values were left out
    for d, cs in failed_columns.items():
        if d in t.index and d not in judged:
            for c in cs:
                j.leave_out(t.index[d], c)
                left_out[c].append(t.index[d])
    out: list[Judgement] = []
    run: dict[str, list[int]] = defaultdict(list)  # judged days a column failed in a row
    shift_start: dict[str, int] = {}  # a failure that persisted T.level_days days: the new normal
    recent: dict[tuple, list[int]] = defaultdict(list)  # (column, statistic, direction) -> days it failed
    for i, d in enumerate(t.days):
        if d not in judged and d not in valid:
            continue
        hist = history(i)
        _fill_variant(t, j, i, hist)
        if d not in judged:
            if len(hist) >= T.min_series_history:
                j.judge(i, hist)  # past residuals of history days (point in time)
                for c in failed_columns.get(d, ()):
                    j.leave_out(i, c)  # its past score is not a clean score either
            continue
        shifted = {c: list(range(k, i))[-settings.history_days:] for c, k in shift_start.items()}
        out.append(_judge_day(t, j, i, hist, table, settings, sources, shifted, inputs))
        failed = {r.column for r in out[-1].failed if r.statistic != "fingerprint"}
        stale = any(r.statistic == "fingerprint" for r in out[-1].failed)
        for c in list(run):
            if c not in failed:
                del run[c]
        recurring: set[str] = set()  # today's values are kept too
        for r in out[-1].failed:
            if r.column == TABLE or r.statistic == "fingerprint":
                continue
            key = (r.column, r.statistic, (r.observed or 0) > (r.expected or 0))
            recent[key] = [k for k in recent[key] if (d - t.days[k]).days < T.recurrence_days] + [i]
            if len(recent[key]) >= T.recurrence_failures:  # the same move again and again: its nature
                for k in left_out.pop(r.column, []):
                    j.restore(k, r.column)
                recent[key] = []
                recurring.add(r.column)
        for c in failed - {TABLE} - recurring:
            run[c].append(i)
            if len(run[c]) >= T.level_days and c not in shift_start:
                shift_start[c] = run[c][0]
                for k in left_out.pop(c, []):  # a confirmed shift: its days are the new normal
                    if k >= run[c][0]:
                        j.restore(k, c)
        if d in blocked or stale:
            continue  # the suite/entity quarantined it, or it is a copy: not history
        for c in failed - recurring:
            if c not in shift_start:
                j.leave_out(i, c)
                left_out[c].append(i)
        valid.add(d)
    return out


def _fill_variant(t: SummaryMatrix, j: SeriesModel, i: int, hist: list[int]) -> None:
    d = t.days[i]
    for (c, s), col in t.col.items():
        if s != "variant_share":
            continue
        today = t.counts.get(d, {}).get(c)
        seen = {v for h in hist for v in t.counts.get(t.days[h], {}).get(c, {})}
        if today is None or not seen or not t.rows.get(d):
            val = np.nan
        else:
            normal = {norm(v) for v in seen}
            val = sum(n for v, n in today.items() if v not in seen and norm(v) in normal) / t.rows[d]
        t.x[i, col] = val
        j.y[i, col] = val


def _judge_day(t: SummaryMatrix, j: SeriesModel, i: int, hist: list[int], table: str, settings: LearnedSettings,
               sources: Mapping[str, str], shifted: Mapping[str, list[int]] | None = None,
               inputs: Mapping[str, list[str]] | None = None) -> Judgement:
    d = t.days[i]
    learning = len(hist) < settings.min_history
    severity = "warn" if learning else settings.severity
    jd = Judgement(table, d, learning, len(hist))
    where = f"{table} ds={d.isoformat()}"
    # stale copy: the same content as an earlier day, in a table whose days never repeat
    fp = t.fingerprints.get(d)
    if fp is not None:
        earlier = {t.fingerprints.get(t.days[k]): t.days[k] for k in range(max(0, i - settings.history_days), i)
                   if t.fingerprints.get(t.days[k]) is not None}
        hist_fps = [t.fingerprints[t.days[k]] for k in hist if t.days[k] in t.fingerprints]
        repeats = len(hist_fps) != len(set(hist_fps))
        copy_of = earlier.get(fp)
        failed = copy_of is not None and not repeats and t.rows.get(d, 0) > 0 and not learning
        jd.results.append(LearnedResult(
            table=table, ds=d, type=TYPE_PREFIX + "stale_copy", column=TABLE, statistic="fingerprint",
            observed=None, expected=None, expected_low=None, expected_high=None,
            score=1.0 if copy_of is not None else 0.0, threshold=0.5, success=not failed, severity=severity,
            message=f"{where} table: same content as ds={copy_of.isoformat()} (a stale copy; {len(hist)} valid "
                    "days)" if failed else None, history=len(hist), learning=learning))
    if len(hist) < T.min_series_history or not t.keys:
        if learning:
            jd.results.append(LearnedResult(
                table=table, ds=d, type=TYPE_PREFIX + "learning", column=TABLE, statistic=None, observed=None,
                expected=None, expected_low=None, expected_high=None, score=None, threshold=None, success=True,
                severity="warn", message=None, history=len(hist), learning=True))
        return jd
    score, own, expected, scale = j.judge(i, hist, shifted)
    today = j.cscore[i]
    scored = np.flatnonzero(~np.isnan(today))
    alpha = settings.false_alarm_budget / 100.0 / max(len(scored), 1)  # the budget split over columns
    thresholds = {j.names[n]: column_threshold(j.cscore[hist, n], alpha, len(j.members[n]), len(hist)) for n in scored}
    score = vanished(t, i, hist, score, thresholds, alpha, j)
    score = emerged(t, i, hist, score, thresholds, alpha, j)
    moved = {t.keys[k][0] for k in np.flatnonzero(~np.isnan(own))
             if t.keys[k][0] in thresholds and own[k] > thresholds[t.keys[k][0]]}
    by_column: dict[str, list[int]] = {c: [k for k in j.members[j.names.index(c)] if not math.isnan(score[k])]
                                       for c in thresholds}
    best = {c: max(ks, key=lambda x: score[x]) for c, ks in by_column.items() if ks}
    failing = {c for c, k in best.items() if score[k] > thresholds[c]}
    for c in sorted(best):
        k = best[c]
        # a feature of several sources fails with one of them: that source's alert, not another
        source = sources.get(c) or next((s for s in (inputs or {}).get(c, ()) if s in failing), None)
        stat = t.keys[k][1]
        threshold = thresholds[c]
        failed = bool(score[k] > threshold) and not learning  # learning mode records, never fails
        inv = ((lambda v: float(np.expm1(min(v, 700.0)))) if stat in COUNT_STATS else
               (lambda v: float(np.exp(min(v, 700.0)))) if stat in SCALE_STATS else (lambda v: v))
        band = threshold * scale[k]
        lo, hi = inv(expected[k] - band), inv(expected[k] + band)
        message = None
        if failed:
            others = sorted(moved - {c, TABLE} - ({source} if source else set()))
            message = alert(where, c, stat, t, i, hist, k, source, others)
        jd.results.append(LearnedResult(
            table=table, ds=d, type=TYPE_PREFIX + stat.split(":")[0], column=c, statistic=stat,
            observed=finite(t.x[i, k]), expected=finite(inv(expected[k])), expected_low=finite(lo), expected_high=finite(hi),
            score=finite(score[k]), threshold=threshold, success=not failed, severity=severity, message=message,
            history=len(hist), learning=learning, source_column=source))
    return jd
