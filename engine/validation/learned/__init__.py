"""Learned checks (the reduce): each partition's summary against the table's own history.

Pure Python / numpy on the driver over the small `validation/summaries` rows; no Spark.

For every (column, statistic) series, point in time (only VALID partitions before the judged
day, at most `history_days` of them):
1. expected value: a robust local level (median of the latest 7 valid days), with a local
   linear trend and a weekday effect where each is supported by the history (the trend where
   it shrinks the one-step-ahead errors, a weekday where its median effect stands out of its
   standard error); scale: 1.4826 x MAD of the one-step-ahead errors, floored by the
   statistic's sampling noise on the day's rows (binomial for fractions, counting noise for
   counts, spread/sqrt(rows) for means and quantiles, approx_count_distinct's 1% for the
   duplicate fractions, one character in one row for a mean length; a zero iqr reads as
   stddev/sqrt(rows)) -> a standardized residual z.
   Counts are modeled on a log scale, the interquartile range (a robust spread, derived from
   p25/p75) too. String columns with few values get one share series per value.
2. co-movement: each series is regressed on its most correlated series of OTHER columns
   (correlation of past residuals over the days both hold a value; row count and distinct counts take part as peers: they
   carry the table's volume; a derived feature and the columns it is computed from are never
   each other's peers). A storm or holiday that moves many columns together is
   predicted by the peers; the prediction's uncertainty grows with its leverage (how far
   the peers are outside their past range). The series score is the smaller of its own move
   and its break from its peers (each in units of its own past spread). An event-time lag
   that moved as a whole (mean and quantiles by the same hours: a time-zone shift) keeps its
   own score: the hour features derived from the event time moved with it.
3. per-column scores: a column's score is the max over its alerting series, where
   - extremes (min, max, stddev) are recorded but never alert: heavy tails move them on
     clean days, and a sentinel or unit change also moves robust statistics;
   - volume (row count, distinct count) never alerts alone: a holiday is not a fault;
   - a location statistic (mean, quantiles; for the table the event-time lag) counts only
     up to the second largest of its family: a shifted distribution moves at least two;
   - a column null throughout its history, a value share absent from most of it, and order
     statistics of columns with at most Tuning.discrete values have nothing to learn from;
   - a numeric column constant within its days holds the day's value (a holiday flag): only
     its nulls and its constancy (mode share) are judged.
   A derived feature of several source columns that fails on a day one of them fails is that
   source's alert (`column total (from a)`), not a second one.
4. calibration: each column's threshold comes from its OWN past column scores (replayed over
   its clean history): an exponential tail above their median with the median excess as
   scale, at the level budget / 100 / (number of scored columns), so a table stays within
   `false_alarm_budget` alerts per 100 partitions; never below the Student t bound of the max
   over the column's series (Tuning.mad_efficiency x history degrees of freedom: wide while
   the history is short), and Tuning.cold_start_widening x that bound while fewer than
   Tuning.min_tail_history past scores exist. A fraction of rows that was 0 on nearly every day of
   its history (nulls, duplicates) is judged by the binomial odds of today's count (rule of three).
Deterministic table-level checks: a partition whose content fingerprint equals an earlier
day's (a stale copy) when the history never repeats itself.
A column that fails Tuning.level_days judged days in a row has shifted for good (a source started
filling it, a new unit was adopted upstream): from then on its series are judged against the
days since the shift began, so it alerts for a week, not forever. The same move of a column
failing Tuning.recurrence_failures times within Tuning.recurrence_days is a pattern (a
weekday, a rare value that returns): its left-out days come back into the history.
Entity keys and monotonic ids (a centre that rises day after day) are judged for nulls only;
rolling windows are context (they explain others, never alert: their source days alert on
their own day). A segment absent today though present every day of its history alerts by
its binomial probability. Until `min_history` valid partitions exist the checks run in
learning mode (recorded as successes, never alerting or quarantining).

No cascade: a day a learned check fails on stays history with the failed columns left out
(also when it is quarantined by learned checks alone), so one false positive never freezes
the history; a run that would quarantine more than `max_quarantine_share` of the days it
judged quarantines none and reports (judge.py).

Modules, in the order of the data: vocabulary (what each statistic is), tuning (the
constants, one object), table (summaries -> a day x series matrix), series (the series model:
level, trend, weekday, scale, scores), comovement (peers), calibration (thresholds), messages
(alert texts), results (what is returned), lineage (source/context/failed columns), judge
(the day-by-day loop).
"""
from engine.validation.learned.judge import judge
from engine.validation.learned.lineage import context_columns, failed_columns_of, input_columns_of, source_columns_of
from engine.validation.learned.results import Judgement, LearnedResult
from engine.validation.learned.tuning import TUNING, Tuning
from engine.validation.learned.vocabulary import TYPE_PREFIX

__all__ = ["Judgement", "LearnedResult", "TUNING", "TYPE_PREFIX", "Tuning", "context_columns", "failed_columns_of",
           "input_columns_of", "judge", "source_columns_of"]
