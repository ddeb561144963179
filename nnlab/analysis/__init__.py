"""Statistics of a sweep's tables: DataFrame in, DataFrame out. It reads tables, never the sweep's code.

Rooms, by job:

- `intervals`: Wilson and bootstrap intervals, quantiles, IQM, the expected running time (ERT).
- `runs`: per-run statistics (first epoch below the threshold, still descending, worse than at
  start, the uncertified optima estimate).
- `summary`: one row per configuration (`summarize`), every statistic with its interval.
- `verdicts`: capacity labels (`verdict`), the capacity table, each architecture at its best setting.
- `comparisons`: two sweeps side by side, tests between neighbouring widths.
- `survival`: success over time with censoring: Kaplan-Meier curves of the epochs to threshold
  (failed runs censored at the budget, or followed into their SGD escape continuation), the log-rank
  test between neighbouring widths.
- `pruning`: saved networks analysed: units a network does not need, gradients along a chain.

Every public name of the rooms is also here (``nnlab.analysis.summarize``, ...).
"""

from nnlab.analysis.comparisons import compare, neighbour_tests
from nnlab.analysis.intervals import (
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    Z,
    bootstrap_ci,
    ert,
    iqm,
    quantiles,
    wilson,
)
from nnlab.analysis.pruning import (
    PRUNE_ATOL,
    PRUNE_MAX_UNITS,
    PRUNE_RTOL,
    chain_gradients,
    redundancy,
    redundant_units,
)
from nnlab.analysis.runs import (
    DESCENT,
    GTOL,
    RTOL,
    config_axes,
    descending_runs,
    hit_epochs,
    optima_estimate,
    stopped_runs,
    varying_axes,
    worsened_runs,
)
from nnlab.analysis.summary import endpoint_counts, summarize
from nnlab.analysis.survival import (
    continued,
    kaplan_meier,
    logrank_tests,
    survival_curves,
    survival_times,
    with_continuations,
)
from nnlab.analysis.verdicts import (
    CRITICAL,
    DIVERGED,
    LABELS,
    OVER,
    RELIABLE,
    STUCK,
    TUNING,
    UNDECIDED,
    UNDER,
    UNSOLVED,
    WORSE,
    best_settings,
    capacity,
    decide_seeds,
    verdict,
    verdict_text,
)
from nnlab.schema import ALPHA, KINDS, LEVEL, decisive_seeds

__all__ = [
    "ALPHA",
    "BOOTSTRAP_REPS",
    "BOOTSTRAP_SEED",
    "CRITICAL",
    "DESCENT",
    "DIVERGED",
    "GTOL",
    "KINDS",
    "LABELS",
    "LEVEL",
    "OVER",
    "PRUNE_ATOL",
    "PRUNE_MAX_UNITS",
    "PRUNE_RTOL",
    "RELIABLE",
    "RTOL",
    "STUCK",
    "TUNING",
    "UNDECIDED",
    "UNDER",
    "UNSOLVED",
    "WORSE",
    "Z",
    "best_settings",
    "bootstrap_ci",
    "capacity",
    "chain_gradients",
    "compare",
    "config_axes",
    "continued",
    "decide_seeds",
    "decisive_seeds",
    "descending_runs",
    "endpoint_counts",
    "ert",
    "hit_epochs",
    "iqm",
    "kaplan_meier",
    "logrank_tests",
    "neighbour_tests",
    "optima_estimate",
    "quantiles",
    "redundancy",
    "redundant_units",
    "stopped_runs",
    "summarize",
    "survival_curves",
    "survival_times",
    "varying_axes",
    "verdict",
    "verdict_text",
    "wilson",
    "with_continuations",
    "worsened_runs",
]
