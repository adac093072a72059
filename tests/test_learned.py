"""Learned checks: co-movement does not alert, a single column breaking away does; table-level
faults; quarantined days stay out of history; the false-alarm budget; learning mode.

Summaries rows are built directly (learned.py is pure Python over `validation/summaries`
rows; tests/test_summaries.py covers the Spark side)."""
from __future__ import annotations

import datetime as dt

import numpy as np

from engine.config import LearnedSettings
from engine.validation.learned import input_columns_of, judge, source_columns_of

START = dt.date(2024, 1, 1)
T = "features/flights"


def _day(rng, i: int, *, storm: float = 0.0, rows: int = 2000) -> dict[tuple[str, str], float]:
    """One clean day's summary: delays and cancellations move together with the weather."""
    weather = rng.normal(0, 1) + storm
    weekly = (1.0, 1.05, 1.0, 1.1, 1.2, 0.7, 0.6)[(START + dt.timedelta(days=i)).weekday()]
    n = float(rng.poisson(rows * weekly))
    s = {("*", "row_count"): n, ("*", "dup_key_fraction"): 0.0}
    for c, base, k in (("dep_delay", 10, 6), ("arr_delay", 8, 6), ("taxi_out", 15, 2)):
        mean = base + k * weather + rng.normal(0, 0.3)
        s[(c, "mean")] = mean
        s[(c, "p95")] = mean * 3 + rng.normal(0, 1)
        s[(c, "null_fraction")] = max(0.0, 0.02 + 0.004 * weather + rng.normal(0, 0.002))
    s[("cancelled", "mean")] = max(0.0, 0.02 + 0.01 * weather + rng.normal(0, 0.002))
    s[("distance", "mean")] = 800 + rng.normal(0, 5)
    s[("distance", "null_fraction")] = max(0.0, 0.01 + rng.normal(0, 0.002))
    s[("region", "share:North")] = 0.6 + rng.normal(0, 0.01)
    s[("region", "share:South")] = 1 - s[("region", "share:North")]
    return s


def _rows(days: dict[int, dict], fingerprints: dict[int, str]) -> list[dict]:
    rows = []
    for i, stats in days.items():
        d = START + dt.timedelta(days=i)
        for (c, st), v in stats.items():
            rows.append({"column": c, "statistic": st, "value": v, "detail": None, "ds": d})
        rows.append({"column": "*", "statistic": "fingerprint", "value": 0.0, "detail": f'"{fingerprints[i]}"', "ds": d})
    return rows


def _history(n: int, seed: int = 0) -> tuple[dict[int, dict], dict[int, str]]:
    rng = np.random.default_rng(seed)
    return {i: _day(rng, i) for i in range(n)}, {i: f"fp{i}" for i in range(n)}


def _judge(days, fps, judged: list[int], **kw):
    statuses = {START + dt.timedelta(days=i): "valid" for i in days if i not in judged}
    statuses.update(kw.pop("statuses", {}))
    kw.setdefault("settings", LearnedSettings(severity="block"))  # these tests quarantine
    return {(j.ds - START).days: j for j in judge(_rows(days, fps), table=T, statuses=statuses,
                                                 days=[START + dt.timedelta(days=i) for i in judged], **kw)}


def test_storm_moving_correlated_columns_does_not_alert_but_a_single_null_surge_does():
    days, fps = _history(62)
    rng = np.random.default_rng(7)
    days[60] = _day(rng, 60, storm=6.0)  # delays, cancellations and missing delays all rise together
    days[61] = dict(days[61])
    days[61][("distance", "null_fraction")] = 0.10  # alone, +10 points of nulls
    out = _judge(days, fps, [60, 61])
    assert out[60].failed == [], [r.message for r in out[60].failed]
    failed = out[61].failed
    assert [(r.column, r.statistic) for r in failed] == [("distance", "null_fraction")]
    assert out[61].quarantine and not out[61].learning
    msg = failed[0].message
    assert msg.startswith(f"{T} ds=2024-03-02 column distance: 10.0% null (usual ")
    assert "valid days; no other column moved)" in msg


def test_stale_copy_partial_load_and_duplicates_are_table_level_faults():
    days, fps = _history(64)
    fps[60] = fps[59]  # a stale copy of yesterday: same content fingerprint
    days[61] = dict(days[61])
    days[61][("region", "share:North")] = 0.2  # most of North missing (a partial load of one segment)
    days[61][("region", "share:South")] = 0.8
    days[61][("*", "row_count")] *= 0.55
    days[62] = dict(days[62])
    days[62][("*", "dup_key_fraction")] = 0.15  # duplicated rows
    days[62][("*", "row_count")] *= 1.18
    out = _judge(days, fps, [60, 61, 62, 63])
    stale = out[60].failed
    assert [(r.type, r.column) for r in stale] == [("learned:stale_copy", "*")]
    assert "same content as ds=2024-02-29" in stale[0].message
    assert {r.column for r in out[61].failed} >= {"region"}
    assert any(r.statistic.startswith("share:") for r in out[61].failed)
    assert ("*", "dup_key_fraction") in {(r.column, r.statistic) for r in out[62].failed}
    assert out[63].failed == []


def test_a_day_quarantined_by_learned_checks_stays_history_without_its_failed_column():
    days, fps = _history(44)
    for i in (40, 41, 42):
        days[i] = dict(days[i])
        days[i][("distance", "mean")] = 5000.0
    # day 40 was quarantined by an earlier run (reason unknown: not history); 41..43 judged now
    out = _judge(days, fps, [41, 42, 43], statuses={START + dt.timedelta(days=40): "quarantined"})
    assert out[41].history == 40  # days 0..39: day 40 is not history
    assert out[41].quarantine and out[42].quarantine  # 41's distance mean never became history for 42
    assert out[42].history == 41 and out[43].history == 42  # ... but the rest of day 41 did
    assert out[43].failed == []
    # an earlier day whose learned checks failed on one column: history without that column
    out = _judge(days, fps, [41], statuses={START + dt.timedelta(days=40): "quarantined"},
                 failed_columns={START + dt.timedelta(days=40): {"distance"}})
    assert out[41].history == 41 and out[41].quarantine


def test_one_false_positive_in_block_mode_does_not_cascade():
    """A clean history replayed in block mode, with one clean day made to fail (a false
    positive): every later day is judged against a current history and none is quarantined."""
    days, fps = _history(120, seed=11)
    rng = np.random.default_rng(3)
    for i in days:  # a row id rising every day (the first judged day of issue 20's cascade)
        days[i] = dict(days[i])
        start = 150.0 * i + rng.integers(0, 20)
        days[i].update({("row_id", "mean"): start + 75, ("row_id", "p50"): start + 75,
                        ("row_id", "p05"): start + 7, ("row_id", "p95"): start + 142,
                        ("row_id", "null_fraction"): 0.0})
    days[40][("distance", "null_fraction")] = 0.2  # the one false positive
    out = _judge(days, fps, list(range(14, 120)))
    quarantined = [i for i, j in out.items() if j.quarantine]
    assert 40 in quarantined
    assert [i for i in quarantined if i > 40] == [], [m for i in quarantined for m in out[i].alerts]
    assert out[119].history == 90  # the history kept moving (history_days), day 40 included


def test_a_run_quarantining_more_than_its_cap_quarantines_nothing_and_says_so():
    days, fps = _history(60)
    for i in range(30, 60):  # a month where a third of the days break
        if i % 3 == 0:
            days[i] = dict(days[i])
            days[i][("distance", "null_fraction")] = 0.3 + 0.01 * i
    judged = list(range(30, 60))
    out = _judge(days, fps, judged, settings=LearnedSettings(severity="block", max_quarantine_share=0.2))
    assert sum(bool(j.failed) for j in out.values()) >= 9
    assert not any(j.quarantine for j in out.values()) and all(j.capped for j in out.values())
    out = _judge(days, fps, judged, settings=LearnedSettings(severity="block", max_quarantine_share=0.5))
    assert sum(j.quarantine for j in out.values()) >= 9 and not any(j.capped for j in out.values())


def test_an_entity_key_and_a_monotonic_id_are_judged_for_nulls_only():
    days, fps = _history(62)
    for i in days:
        days[i] = dict(days[i])
        for c, base in (("order_id", 1000.0), ("row_id", 5000.0)):  # ids rising every day
            days[i][(c, "mean")] = base + 150 * i + 75
            days[i][(c, "p50")] = base + 150 * i + 75
            days[i][(c, "p05")] = base + 150 * i + 7
            days[i][(c, "p95")] = base + 150 * i + 142
            days[i][(c, "null_fraction")] = 0.0
    for c in ("order_id", "row_id"):  # a jump of the id sequence (a new id range) is no fault
        for k in (("mean", 9e6), ("p50", 9e6), ("p05", 9e6 - 60), ("p95", 9e6 + 60)):
            days[60][(c, k[0])] = k[1]
    days[61][("row_id", "null_fraction")] = 0.2  # nulls in an id are
    out = _judge(days, fps, [60, 61], entity=["order_id"])
    assert out[60].failed == [], out[60].alerts
    assert [(r.column, r.statistic) for r in out[61].failed] == [("row_id", "null_fraction")]
    assert not any(r.column in ("order_id", "row_id") and r.statistic != "null_fraction"
                   for j in out.values() for r in j.results)


def test_negative_duplicate_fraction_of_an_approximate_count_is_read_as_zero():
    days, fps = _history(62)
    for i in days:
        days[i] = dict(days[i])
        days[i][("*", "dup_key_fraction")] = -0.009  # approx_count_distinct overshot the row count
    days[61][("*", "dup_key_fraction")] = 0.15
    out = _judge(days, fps, [60, 61])
    dup = [r for r in out[61].results if r.statistic == "dup_key_fraction"]
    assert dup and not dup[0].success and "15.0% duplicate keys" in dup[0].message
    assert "-" not in dup[0].message.split("duplicate keys")[0].split(": ")[-1]
    assert all(r.observed is None or r.observed >= 0 for j in out.values() for r in j.results
               if r.statistic == "dup_key_fraction")


def test_a_rolling_window_over_a_clean_history_never_alerts():
    """A 7-day rolling mean of a clean column (smooth, autocorrelated) is context: its source
    column alerts on its own day, the window never does, not even when the day leaves it."""
    rng = np.random.default_rng(2)
    days, fps = _history(150, seed=4)
    raw = rng.normal(50, 5, 150)
    raw[70] = 400.0  # one warned source day: it enters seven windows and leaves one
    for i in days:
        days[i] = dict(days[i])
        days[i][("amount", "mean")] = raw[i]
        days[i][("amount_7d", "mean")] = float(np.mean(raw[max(0, i - 7):i])) if i else 50.0
    out = _judge(days, fps, list(range(14, 150)), context=["amount_7d"], settings=LearnedSettings())
    assert not any(r.column == "amount_7d" for j in out.values() for r in j.failed)
    assert ("amount", "mean") in {(r.column, r.statistic) for r in out[70].failed}
def test_clean_history_stays_within_the_false_alarm_budget():
    days, fps = _history(220, seed=3)
    judged = list(range(14, 220))
    out = _judge(days, fps, judged)
    alerts = sum(1 for j in out.values() if j.failed and not j.learning)
    scored = sum(1 for j in out.values() if not j.learning)
    assert scored >= 200
    assert alerts <= 0.01 * scored + 1, [m for j in out.values() for m in j.alerts]


def test_learning_mode_until_min_history_records_and_never_fails():
    days, fps = _history(12)
    days[11] = dict(days[11])
    days[11][("distance", "null_fraction")] = 0.5
    out = _judge(days, fps, [11], settings=LearnedSettings(min_history=14, severity="block"))
    assert out[11].learning and not out[11].quarantine and out[11].history == 11
    assert out[11].failed == [] and out[11].alerts == []  # recorded as learning rows, no alert
    rows = [r.result_row("run") for r in out[11].results]
    assert rows and all(r["success"] and '"learning": true' in r["kwargs"] for r in rows)
    out = _judge(days, fps, [11], settings=LearnedSettings(min_history=5, severity="block"))
    assert not out[11].learning and out[11].quarantine


def test_a_derived_feature_names_its_source_column():
    assert source_columns_of({"log_distance": "ln(distance)", "speed": "distance / air_time", "k": "'distance'"},
                             ["distance", "air_time"]) == {"log_distance": "distance"}


def test_a_feature_of_two_sources_that_fails_with_one_of_them_is_that_sources_alert():
    """total = a + b: a broken `a` breaks `total` too; the alert is a's (total's result names
    a as its source column), not a second alert on another column. When only `total` breaks,
    it alerts as itself."""
    rng = np.random.default_rng(9)
    days, fps = _history(64)
    for i in days:
        days[i] = dict(days[i])
        a, b = rng.normal(10, 1), rng.normal(5, 0.5)
        days[i].update({("a", "mean"): a, ("b", "mean"): b, ("total", "mean"): a + b})
    days[61].update({("a", "mean"): 100.0, ("total", "mean"): 100.0 + days[61][("b", "mean")]})
    days[63][("total", "mean")] = 200.0  # the feature alone (its expression changed)
    inputs = input_columns_of({"total": "a + b"}, ["a", "b"])
    assert inputs == {"total": ["a", "b"]}
    out = _judge(days, fps, [61, 62, 63], inputs=inputs)
    failed = {r.column: r for r in out[61].failed}
    assert set(failed) == {"a", "total"}, [r.message for r in out[61].failed]
    assert failed["total"].source_column == "a" and "column total (from a)" in failed["total"].message
    assert {r.source_column or r.column for r in out[61].failed} == {"a"}
    assert [(r.column, r.source_column) for r in out[63].failed] == [("total", None)]


def test_duplicate_fractions_of_an_approximate_count_are_judged_above_its_noise():
    """dup_key_fraction comes from approx_count_distinct (1% relative error): on a clean table
    it wanders between 0 and ~2% by measurement alone. That noise is not a fault; 15% is."""
    rng = np.random.default_rng(11)
    days, fps = _history(120)
    for i in days:
        days[i] = dict(days[i])
        days[i][("*", "dup_key_fraction")] = abs(rng.normal(0.0, 0.006)) if i % 5 == 0 else 0.0
    days[101][("*", "dup_key_fraction")] = 0.025  # 2.5 sd of the count's noise: measurement
    days[110][("*", "dup_key_fraction")] = 0.15
    out = _judge(days, fps, list(range(60, 120)))
    dup_days = sorted(i for i, j in out.items() for r in j.failed if r.statistic == "dup_key_fraction")
    assert dup_days == [110], dup_days


def test_a_spread_of_zero_on_a_day_with_a_handful_of_rows_reads_as_that_days_resolution():
    """An interquartile range of 0 on a tiny day (three rows, two of them tied) is modeled as
    what three rows can resolve, stddev / sqrt(3), not as log(0) = -27.6, which made one
    weekday's effect -30 in log units and every later day of that weekday alert (seen on a
    real set's first weeks)."""
    from engine.validation.learned.series import SeriesModel
    from engine.validation.learned.table import SummaryMatrix

    days, fps = _history(30)
    for i in days:
        days[i] = dict(days[i])
        rows = 3.0 if i in (1, 8) else 200.0
        p25, p75 = (0.0, 0.0) if rows == 3 else (1.0, 16.0)
        days[i].update({("*", "row_count"): rows, ("age", "p25"): p25, ("age", "p75"): p75,
                        ("age", "p50"): 5.0, ("age", "stddev"): 9.0, ("age", "mean"): 9.0})
    t = SummaryMatrix(_rows(days, fps), None, set())
    model = SeriesModel(t, LearnedSettings())
    k = t.keys.index(("age", "iqr"))
    assert np.allclose(model.y[[1, 8], k], np.log(9.0 / np.sqrt(3.0)))
    assert np.allclose(model.y[[2, 29], k], np.log(15.0))
    out = _judge(days, fps, list(range(16, 30)), settings=LearnedSettings())
    assert not any(r.column == "age" for j in out.values() for r in j.failed), \
        [r.message for j in out.values() for r in j.failed if r.column == "age"]


def test_one_row_of_another_length_in_a_column_of_one_length_is_not_a_fault_but_truncation_is():
    """species is Dog or Cat (mean length exactly 3 on every day); one Goat among 90 rows
    moves the mean length by 1/90: a single row, not a broken column. Cut to one letter on
    half the rows, it alerts."""
    import json

    rng = np.random.default_rng(13)
    days, fps = _history(70)
    rows = []
    for i in days:
        days[i] = dict(days[i])
        n = 90
        counts = {"Dog": int(rng.integers(50, 60))}
        counts["Cat"] = n - counts["Dog"]
        if i == 64:
            counts = {"Dog": 55, "Cat": 34, "Goat": 1}
        if i == 67:
            counts = {"Dog": 25, "Cat": 20, "D": 25, "C": 20}
        mean_length = sum(len(v) * k for v, k in counts.items()) / n
        days[i].update({("*", "row_count"): float(n), ("species", "mean_length"): mean_length,
                        ("species", "null_fraction"): 0.0})
        rows.append({"column": "species", "statistic": "value_counts", "value": None,
                     "detail": json.dumps(counts), "ds": START + dt.timedelta(days=i)})
    statuses = {START + dt.timedelta(days=i): "valid" for i in days if i < 60}
    out = {(j.ds - START).days: j for j in judge(_rows(days, fps) + rows, table=T, statuses=statuses,
                                                 days=[START + dt.timedelta(days=i) for i in range(60, 70)])}
    failed = {i: [(r.column, r.statistic) for r in j.failed if r.column == "species"] for i, j in out.items()}
    assert failed[64] == [], [r.message for r in out[64].failed]
    assert ("species", "mean_length") in failed[67], [r.message for r in out[67].failed]


def test_a_day_the_suite_quarantines_does_not_become_history():
    days, fps = _history(44)
    out = _judge(days, fps, [41, 42], blocked=[START + dt.timedelta(days=41)])
    assert out[41].failed == [] and out[42].history == 41  # 0..40, not 41


def test_a_feature_set_overrides_only_the_keys_it_sets():
    project = LearnedSettings(min_history=20, severity="warn")
    override = LearnedSettings.model_validate({"false_alarm_budget": 0.5})
    merged = project.merged(override)
    assert (merged.min_history, merged.severity, merged.false_alarm_budget) == (20, "warn", 0.5)
    assert project.merged(None) is project


def test_a_holiday_with_low_volume_and_stable_shares_does_not_alert():
    days, fps = _history(62)
    days[60] = dict(days[60])
    days[60][("*", "row_count")] *= 0.35  # a holiday: a third of the usual rows, the same mix
    out = _judge(days, fps, [60, 61])
    assert out[60].failed == [] and out[61].failed == [], [m for j in out.values() for m in j.alerts]


def test_a_column_empty_throughout_its_history_starts_being_filled_without_alerting():
    days, fps = _history(62)
    for i in days:
        days[i] = dict(days[i])
        days[i][("coupon", "null_fraction")] = 1.0 if i < 60 else 0.15
    out = _judge(days, fps, [60, 61])
    assert out[60].failed == [] and out[61].failed == []


def test_a_unit_change_shows_in_the_robust_spread_although_the_mean_is_noisy():
    rng = np.random.default_rng(5)
    days, fps = _history(62)
    for i in days:  # a column whose daily level wanders widely, with a stable spread
        days[i] = dict(days[i])
        level = rng.normal(20, 12)
        days[i].update({("delay", "p25"): level - 10 + rng.normal(0, 0.3), ("delay", "p50"): level,
                        ("delay", "p75"): level + 10 + rng.normal(0, 0.3), ("delay", "mean"): level + 1})
    days[61].update({k: v * 0.01 for k, v in days[61].items() if k[0] == "delay"})  # minutes -> hundreds
    out = _judge(days, fps, [60, 61])
    assert out[60].failed == []
    assert [(r.column, r.statistic) for r in out[61].failed] == [("delay", "iqr")]


def _with_lag_and_segments(days: dict[int, dict], seed: int = 0) -> None:
    """Adds the table's event-time lag (hours between the event and ds, spread over the day)
    and a small segment (6% of rows) to each day's summary."""
    rng = np.random.default_rng(seed)
    for i in days:
        days[i] = dict(days[i])
        n = days[i][("*", "row_count")]
        noise = rng.normal(0, 7 / np.sqrt(n))
        days[i].update({("*", "lag_mean"): 12 + noise, ("*", "lag_p05"): 1.2 + noise + rng.normal(0, 0.2),
                        ("*", "lag_p50"): 12 + noise + rng.normal(0, 0.3),
                        ("*", "lag_p95"): 22.8 + noise + rng.normal(0, 0.2)})
        tiny = rng.binomial(int(n), 0.06) / n
        days[i][("region", "share:Islands")] = tiny
        days[i][("region", "share:North")] -= tiny


def test_a_timezone_shift_of_the_event_time_is_caught():
    days, fps = _history(62)
    _with_lag_and_segments(days)
    for k in ("lag_mean", "lag_p05", "lag_p50", "lag_p95"):
        days[61][("*", k)] -= 5.0  # event times written five hours later (another time zone)
    out = _judge(days, fps, [60, 61])
    assert out[60].failed == [], out[60].alerts
    assert [r.column for r in out[61].failed] == ["*"] and out[61].failed[0].statistic.startswith("lag")


def test_a_partial_load_of_a_small_segment_is_caught_on_a_small_table():
    """A segment of 6% of ~160 rows missing: by chance (binomial) once in ~20,000 days. (A 5%
    segment on 138 rows would be missing by chance with p = 0.0015, at the edge of one
    column's share of the budget: such a day is not alerted on.)"""
    rng = np.random.default_rng(1)
    days = {i: _day(rng, i, rows=136) for i in range(62)}
    fps = {i: f"fp{i}" for i in range(62)}
    _with_lag_and_segments(days, seed=1)
    lost = days[59][("region", "share:Islands")]  # a Thursday: ~160 rows, ~9 of them Islands
    days[59][("region", "share:Islands")] = 0.0  # the Islands' file never arrived
    days[59][("region", "share:North")] /= 1 - lost
    days[59][("region", "share:South")] /= 1 - lost
    days[59][("*", "row_count")] *= 1 - lost
    out = _judge(days, fps, [58, 59])
    assert out[58].failed == [], out[58].alerts
    failed = out[59].failed
    assert [(r.column, r.statistic) for r in failed] == [("region", "share:Islands")]
    assert "0.0% of rows with region = Islands" in failed[0].message


def test_the_cold_start_weeks_stay_within_the_budget_on_a_clean_history():
    """The first weeks after min_history (few past scores to calibrate on) on clean
    histories: at most the budget's 1 alert per 100 partitions, plus one."""
    alerts = judged = 0
    for seed in range(5):
        days, fps = _history(48, seed=20 + seed)
        _with_lag_and_segments(days, seed=seed)
        out = _judge(days, fps, list(range(14, 48)))
        judged += sum(not j.learning for j in out.values())
        alerts += sum(bool(j.failed) for j in out.values())
    assert judged == 5 * 34
    assert alerts <= 0.01 * judged + 1


def test_a_column_constant_within_each_day_is_judged_for_its_nulls_and_constancy_only():
    """near_christmas is 0 on every row for two months, then 1 on every row: the calendar,
    not a fault. The same column with a sentinel in a fifth of its rows is one."""
    days, fps = _history(64)
    for i, s in days.items():
        s[("near_christmas", "mean")] = 1.0 if i >= 60 else 0.0
        s[("near_christmas", "zero_fraction")] = 0.0 if i >= 60 else 1.0
        s[("near_christmas", "mode_share")] = 1.0
        s[("near_christmas", "null_fraction")] = 0.0
    days[63][("near_christmas", "mode_share")] = 0.8
    days[63][("near_christmas", "mean")] = 0.8 - 0.2 * 999
    out = _judge(days, fps, [60, 61, 62, 63], settings=LearnedSettings())
    assert all(j.failed == [] for i, j in out.items() if i < 63), [out[i].alerts for i in out]
    assert {(r.column, r.statistic) for r in out[63].failed} == {("near_christmas", "mode_share")}


def test_rows_of_a_kind_never_seen_in_history_are_judged_by_their_binomial_odds():
    """Three null rows of 50 in a column never null in 60 days of 50 rows: the Gaussian
    noise floor of a fraction near 0 calls that a 3-sigma day; with at most 3 in 3,000 rows
    (the rule of three) it happens once in ~40,000 days. One null row is not alerted."""
    rng = np.random.default_rng(7)
    days = {i: _day(rng, i, rows=50) for i in range(62)}
    fps = {i: f"fp{i}" for i in range(62)}
    for s in days.values():
        s[("distance", "null_fraction")] = 0.0
    failed = {}
    for nulls in (1, 3):
        days[61][("distance", "null_fraction")] = nulls / days[61][("*", "row_count")]
        out = _judge(days, fps, [61], settings=LearnedSettings())
        failed[nulls] = {(r.column, r.statistic) for r in out[61].failed}
    assert ("distance", "null_fraction") not in failed[1], failed
    assert ("distance", "null_fraction") in failed[3], failed


def test_the_threshold_floor_is_wide_on_a_short_history_and_gaussian_on_a_long_one():
    from statistics import NormalDist

    from engine.validation.learned.calibration import floor

    alpha = 0.01 / 20
    gauss = NormalDist().inv_cdf(1 - alpha / 6)
    assert floor(alpha, 3, 14) > 1.5 * gauss  # 14 days: a MAD scale from ~5 observations' worth
    assert floor(alpha, 3, 30) > floor(alpha, 3, 90) > floor(alpha, 3, 1000)
    assert abs(floor(alpha, 3, 5000) / gauss - 1) < 0.01


def test_a_rare_value_that_keeps_coming_back_is_learned_instead_of_alerting_for_ever():
    """From day 60 a breed with a digit in its name shows up every third day (2% of rows):
    the first days alert; once the same move has failed 4 times in 28 days its days come back
    into the history (left out, it could never be learned) and it stops alerting."""
    rng = np.random.default_rng(9)
    days, fps = _history(150, seed=9)
    for i, s in days.items():
        s[("breed", "digit_share")] = float(rng.uniform(0.015, 0.025)) if i >= 60 and i % 3 == 0 else 0.0
        s[("breed", "null_fraction")] = 0.0
    out = _judge(days, fps, list(range(14, 150)), settings=LearnedSettings())
    alerted = [i for i, j in out.items() if any(r.column == "breed" for r in j.failed)]
    assert alerted and alerted[0] == 60, alerted
    assert len(alerted) <= 6 and max(alerted) < 100, alerted


def test_a_timezone_shift_is_caught_although_the_hour_feature_moves_with_it():
    """The hour of the event is a feature; busy evenings move it and the lag together, so
    each is the other's best peer. Event times written four hours off move the lag's mean and
    quantiles by the same four hours (a translation): co-movement must not explain that."""
    rng = np.random.default_rng(3)
    days, fps = _history(90, seed=3)
    _with_lag_and_segments(days, seed=3)
    for s in days.values():
        evening = rng.normal(0, 0.3)  # a busy evening: later events, shorter lags
        for k in ("lag_mean", "lag_p05", "lag_p50", "lag_p95"):
            s[("*", k)] -= evening * (1.0 if k != "lag_p05" else 0.3)
        s[("hour", "mean")] = 12 + evening + rng.normal(0, 0.05)
    for k in ("lag_mean", "lag_p05", "lag_p50", "lag_p95"):
        days[89][("*", k)] -= 4.0
    days[89][("hour", "mean")] += 4.0
    out = _judge(days, fps, [88, 89], settings=LearnedSettings())
    assert out[88].failed == [], out[88].alerts
    assert "*" in {r.column for r in out[89].failed}, [(r.column, r.statistic, r.score, r.threshold)
                                                      for r in out[89].results if r.column == "*"]


def test_a_kind_of_row_seen_on_a_few_history_days_is_still_judged_by_its_binomial_odds():
    """Two single null rows in 60 days of 50 rows (an approximate count's noise, or a rare
    real one): the rate is at most (2 + 3) / 3,000, so three nulls today are still improbable."""
    rng = np.random.default_rng(7)
    days = {i: _day(rng, i, rows=50) for i in range(62)}
    fps = {i: f"fp{i}" for i in range(62)}
    for i, s in days.items():
        s[("distance", "null_fraction")] = 1 / s[("*", "row_count")] if i in (20, 45) else 0.0
    days[61][("distance", "null_fraction")] = 3 / days[61][("*", "row_count")]
    out = _judge(days, fps, [61], settings=LearnedSettings())
    assert ("distance", "null_fraction") in {(r.column, r.statistic) for r in out[61].failed}, out[61].alerts
