"""What the summary statistics are (how each is modeled, which ones alert): vocabulary, not tuning."""
from __future__ import annotations

from engine.validation.summaries import DUP_RSD, TABLE  # noqa: F401 (column '*': the table's own statistics)

TYPE_PREFIX = "learned:"  # validation/results expectation_type of a learned check
COUNT_STATS = {"row_count", "distinct"}  # modeled on a log scale (multiplicative change)
FRACTION_STATS = {"null_fraction", "zero_fraction", "negative_fraction", "mode_share", "upper_share",
                  "lower_share", "digit_share", "space_share", "dup_key_fraction", "dup_row_fraction",
                  "lag_future_fraction", "variant_share"}
SCALE_STATS = {"iqr"}  # modeled on a log scale (a unit change multiplies it)
EXTREMES = {"min", "max", "stddev"}  # recorded, never alerted on: heavy tails move them on clean days
# volume: explains other series (as their peers), never alerts alone: a holiday is not a fault
CONTEXT = {"row_count", "distinct"}
# fractions measured through an approximate distinct count: their noise is at least DUP_RSD
APPROXIMATE = {"dup_key_fraction": DUP_RSD, "dup_row_fraction": DUP_RSD}
