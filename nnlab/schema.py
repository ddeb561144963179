"""What every room agrees on, in one place: the sweep's axes, the tables' columns, the end-point kinds,
the confidence level, the limits. A leaf: it imports nothing of nnlab's, so any room may read it.

The axes are the fields of `Config` (one point of an experiment's grid): each carries its section of
the experiment file, its default and the kind of value it takes. Adding an axis is adding one field
here; the experiment file's fields, the grid, run ids, runs.parquet's columns and the summary's
grouping all follow from it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

# -- Limits ---------------------------------------------------------------------------------------
# Per-field bounds, so that an absurd value is a field error before anything is built (a sweep that
# is too big as a whole is refused by nnlab.sweep.planning). Depth 10_000 still covers long chains;
# the engines walk the layers one by one.
MAX_DEPTH = 10_000
MAX_WIDTH = 1_000_000
MAX_EPOCHS = 1_000_000
MAX_SEEDS = 1_000_000
MAX_INT = 2**63 - 1  # seeds, batch sizes: stored as int64
MAX_NAME = 100  # a folder name, with room to spare under the file system's 255 bytes


def _axis(section: str, default: Any, kind: str, *, column: str | None = None, since: bool = False):
    """A field of `Config` that is a sweep axis: its experiment-file ``section``, ``default`` and value
    ``kind`` (nnlab.sweep.experiment.KINDS); its runs.parquet ``column`` when it is not its name;
    ``since``: added after runs were first stored, so left out of a run's identity at its default
    (the runs of older experiment files keep their ids)."""
    meta = {"section": section, "kind": kind, "column": column, "since": since}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Config:
    """One point of the grid: everything a run depends on except its seed."""

    experiment: str
    task: tuple[tuple[str, Any], ...]  # the resolved [task] section, sorted by key
    depth: int = _axis("model", 1, "depth")
    width: int = _axis("model", 4, "width")
    hidden: str = _axis("model", "tanh", "hidden")
    output: str = _axis("model", "tanh", "activation")
    bias: bool = _axis("model", True, "bool")
    init: str = _axis("model", "auto", "init", since=True)
    init_scale: float = _axis("model", 1.0, "pos_float", since=True)
    lr: float = _axis("train", 0.05, "pos_float")
    epochs: int = _axis("train", 100, "epochs")
    batch_size: int = _axis("train", 1, "pos_int")
    # runs.parquet names the loss ``loss_fn``, so that no column called loss holds text
    # (curves.parquet's ``loss`` is a number).
    loss: str = _axis("train", "half_squared", "loss", column="loss_fn")
    # The update rule and the learning rate's schedule (nnlab.sgd.OptimizerSpec, torch.optim's rules);
    # added later, so left out of run ids at their defaults (plain SGD at a constant rate).
    optimizer: str = _axis("train", "sgd", "optimizer", since=True)
    momentum: float = _axis("train", 0.9, "unit", since=True)
    beta1: float = _axis("train", 0.9, "unit", since=True)
    beta2: float = _axis("train", 0.999, "unit", since=True)
    eps: float = _axis("train", 1e-8, "pos_float", since=True)
    weight_decay: float = _axis("train", 0.0, "nonneg_float", since=True)
    schedule: str = _axis("train", "constant", "schedule", since=True)
    warmup: int = _axis("train", 0, "nonneg_int", since=True)
    gamma: float = _axis("train", 0.1, "pos_float", since=True)
    # The step schedule's epochs between steps; 0 means unset (a table's group keys and TOML have no
    # None), and the step schedule needs it set.
    step_every: int = _axis("train", 0, "nonneg_int", since=True)

    @property
    def sizes_hidden(self) -> list[int]:
        """Hidden layer sizes: [width] * depth."""
        return [self.width] * self.depth

    @functools.cached_property
    def key(self) -> str:
        """Canonical JSON of the configuration (the experiment's name left out: renaming an
        experiment does not change its runs); computed once, every run id hashes it."""
        fields = {
            a: getattr(self, a) for a in AXES if a not in LATER_AXES or getattr(self, a) != LATER_AXES[a]
        }
        task = dict(self.task)
        if "sha256" in task:  # a data file: its content identifies the runs, not where it lies
            task.pop("path", None)
        return json.dumps({"task": task, **fields}, sort_keys=True, separators=(",", ":"))

    @property
    def optimizer_fields(self) -> dict[str, Any]:
        """The keywords of `nnlab.train` (and nnlab.sgd.OptimizerSpec) this configuration sets."""
        fields = {name: getattr(self, name) for name in OPTIMIZER_AXES}
        return fields | {"step_every": self.step_every or None}

    def run_id(self, seed: int) -> str:
        """Stable id of the run (this configuration, this seed): 16 hex digits of a SHA-256."""
        return hashlib.sha256(f"{self.key}|seed={int(seed)}".encode()).hexdigest()[:16]


_AXIS_FIELDS = tuple(f for f in dataclasses.fields(Config) if "section" in f.metadata)
OPTIMIZER_AXES = (
    "optimizer",
    "momentum",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "schedule",
    "warmup",
    "gamma",
    "step_every",
)
AXES = tuple(f.name for f in _AXIS_FIELDS)
# Fields of [model] and [train]: (default, kind); any of them may be a list, a sweep axis.
# train.seeds (a count or a list of seeds) is checked on its own.
SECTION_FIELDS: dict[str, dict[str, tuple[Any, str | None]]] = {
    section: {
        f.name: (f.default, f.metadata["kind"]) for f in _AXIS_FIELDS if f.metadata["section"] == section
    }
    for section in ("model", "train")
}
SECTION_FIELDS["train"]["seeds"] = (10, None)
# How much of each curve is stored (not an axis, not part of a run's identity: it changes what is
# kept, never the trajectory): "all" epochs, "log" (log-spaced) or every K-th (an int K >= 1).
SECTION_FIELDS["train"]["record"] = ("all", None)
NOT_AXES = ("seeds", "record")  # fields of [train] that are not sweep axes
COLUMN_OF = {f.name: f.metadata["column"] for f in _AXIS_FIELDS if f.metadata["column"]}
AXIS_COLUMNS = tuple(COLUMN_OF.get(a, a) for a in AXES)
LATER_AXES = {f.name: f.default for f in _AXIS_FIELDS if f.metadata["since"]}

# -- Tables ---------------------------------------------------------------------------------------
# What summary, figures and report read from runs.parquet (older folders may lack init, init_scale).
RUNS_REQUIRED = (
    "run_id",
    "depth",
    "width",
    "hidden",
    "output",
    "lr",
    "batch_size",
    "epochs",
    "seed",
    "n_params",
    "final_loss",
    "diverged",
)
CURVES_COLUMNS = ("run_id", "epoch", "loss")
# Per-run statistics of the curve, computed from every epoch when a job's runs are stored, so that the
# summary never reads curves.parquet (nnlab.sweep.store.curve_statistics; nnlab.analysis.runs reads
# them): ``threshold`` (what ``epochs_to_threshold`` counts), ``initial_loss`` (epoch 0),
# ``late_loss`` (epoch E - max(1, round(LATE * E)): has the run stopped moving?), ``tail_before`` and
# ``tail_last`` (mean loss over the epochs (E - 2w, E - w] and (E - w, E], w = max(1, round(TAIL * E)):
# is it still descending?).
LATE = 0.1
TAIL = 0.05
RUN_STATISTICS = ("threshold", "initial_loss", "late_loss", "tail_before", "tail_last")


def late_epoch(epochs: int) -> int:
    """The epoch a run's final loss is compared with to call it stopped: a tenth of the budget back."""
    return epochs - max(1, round(LATE * epochs))


def tail_window(epochs: int) -> int:
    """The epochs in each of the two windows whose mean losses say whether a run still descends."""
    return max(1, round(TAIL * epochs))


TABLES = ("runs.parquet", "curves.parquet", "networks.parquet")
LANDSCAPE_TABLES = ("endpoints.parquet", "optima.parquet", "barriers.parquet")
# endpoints.parquet: the numbers of a certificate (`nnlab.landscape.Certificate`'s fields of one
# number per end point), then its leading columns, in order (more follow).
ENDPOINT_NUMBERS = (
    "start_loss",
    "polished_loss",
    "grad_norm",
    "lambda_min",
    "lambda_max",
    "n_flat",
    "n_negative",
    "n_symmetry",
    "displacement",
    "norm_start",
    "norm_end",
)
ENDPOINT_COLUMNS = (
    "run_id",
    "kind",
    *ENDPOINT_NUMBERS,
    "optimum",
    "condition",
    "saddle_order",
    "mechanism",
    "reason",
    "borderline",
    "iterations",
)
# optima.parquet's columns after the configuration's axes.
OPTIMA_COLUMNS = (
    "optimum",
    "polished_loss",
    "seeds",
    "run_id",
    "lambda_min",
    "lambda_max",
    "n_flat",
    "extent",
    "barrier_to_solved",
    "bezier_to_solved",
    "best_solved",
)
# barriers.parquet's columns after the configuration's axes.
BARRIER_COLUMNS = ("optimum", "to", "to_run_id", "barrier", "path", "bezier", "bezier_t", "bezier_path")
# splits.parquet (nnlab.sweep.endpoints.split_optima): its columns after the configuration's axes.
SPLITS_TABLE = "splits.parquet"
SPLIT_COLUMNS = (
    "optimum",
    "run_id",
    "layer",
    "unit",
    "a",
    "loss",
    "kind",
    "saddle_order",
    "polished_loss",
    "reason",
)
# What a certified end point is (nnlab.landscape.classify).
KINDS = ("solved", "minimum", "degenerate", "saddle", "valley", "unconverged")

# -- Statistics -----------------------------------------------------------------------------------
LEVEL = 0.95  # every interval's coverage
ALPHA = 1 - LEVEL  # a difference is significant below this p-value
LEVEL_TEXT = f"{LEVEL:.0%}"  # how the level reads in tables, captions and reports ("95%")
# The convergence figure's median and band are those of each configuration's first (smallest) seeds,
# at most this many: a fixed sample, exact per epoch over it, read without the other seeds' curves.
QUANTILE_SEEDS = 500
# Over-capacity: the Wilson lower bound of the success rate (at LEVEL) is at least this: we are 95%
# sure that 90% or more of the seeds succeed.
RELIABLE = 0.9


def decisive_seeds(rate: float) -> float:
    """The fewest seeds at which a success rate of ``rate`` gives a decisive verdict: a Wilson
    interval (at `LEVEL`) that lies at or above `RELIABLE` (over-capacity) or wholly below it
    (critical). The Wilson interval holds r exactly when n (rate - r)^2 <= z^2 r (1 - r), so the
    bound is n = z^2 r (1 - r) / (rate - r)^2 (reached: over-capacity; passed: critical); inf at
    rate = RELIABLE, where no number of seeds decides."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + LEVEL / 2)
    gap = (rate - RELIABLE) ** 2
    if gap == 0:
        return math.inf
    n = z * z * RELIABLE * (1 - RELIABLE) / gap
    # (A hair of slack: 34.99999... must be 35 seeds, not 36, when the bound is an integer.)
    return float(math.ceil(n - 1e-9) if rate > RELIABLE else math.floor(n + 1e-9) + 1)
