"""What a sweep will cost before it runs: configurations, runs, parameters, the memory a job needs and
an estimated time (`nnlab run --dry-run`), and the limits past which a sweep is refused up front.

A room between the experiment and the sweep: it reads an `Experiment` and the data's shape, never a
network or a table, and allocates nothing in proportion to the grid until the grid has passed the
limits (a count of runs is a product of the axes' lengths, a configuration's parameters a formula).

Limits, each with its reason (`Plan.refusal` says which one, and how to get under it):

- `MAX_RUNS` runs in one experiment: every run is hashed into an id and stored as a row, and a resume
  compares the grid against what is stored; past a million, that bookkeeping alone takes minutes.
- `MAX_CURVE_POINTS` loss values (runs x (epochs + 1)): the merge holds every stored loss in memory at
  once (Arrow tables: the parts' lists, then curves.parquet's columns); summary reads runs only, and
  figures and report only the curves they draw.
- `MAX_DEPTH` hidden layers: the engines walk the layers one by one, and a plain chain of that many
  saturating layers passes no gradient back anyway.
- Memory: a job (a configuration and up to `SEEDS_PER_JOB` of its seeds) must fit in this machine's
  memory, and ``jobs`` of them at once (each in a worker process of about `WORKER_BYTES`) in the
  memory available now.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from nnlab.schema import AXES, LEVEL_TEXT, QUANTILE_SEEDS, RELIABLE, Config, decisive_seeds
from nnlab.sgd import STEP_SECONDS, layout, train_memory, train_seconds
from nnlab.sweep.experiment import Experiment, ExperimentError
from nnlab.sweep.folder import StorageError, UnsafePath, atomic_write_text
from nnlab.sweep.store import recorded_epochs
from nnlab.tasks import task_shape

MAX_RUNS = 1_000_000
MAX_CURVE_POINTS = 100_000_000
MAX_DEPTH = 10_000
SEEDS_PER_JOB = 32  # two 16-lane chunks: a job keeps the engine's replica axis full
WORKER_BYTES = 250 * 2**20  # a worker process's imports (numba and LLVM, numpy, scipy): measured 240 MB
COMPILE_SECONDS = 30.0  # the first use of a layout compiles its kernels: 20-40 s on this machine
# The fixed costs of `nnlab run` besides training, measured on this project's machine idle (Intel
# Xeon, 2 cores; the phases of runs of quick, chain_gradients and xor_capacity; about twice as long on
# a busy machine):
PROCESS_SECONDS = 0.8  # the command itself: interpreter and imports, the data, the plan, the folder
START_SECONDS = 1.0  # --jobs > 1: starting the worker processes (imports, loading the cached kernels)
LOAD_SECONDS = 0.4  # --jobs 1: loading the cached kernels in this process
JOB_SECONDS = 0.004  # per job: its data, initialization, statistics and part file
MERGE_SECONDS = 0.2  # the merge into the tables: reading the parts, writing three tables,
MERGE_VALUE_SECONDS = 0.3e-6  # and per stored loss value (0.9 s for xor_capacity's 2.8 million)
# Disk per stored loss value and per run, measured on XOR sweeps (320 to 150,000 runs: 8.5 to 10.4
# bytes a value in curves.parquet, about as much again in parts/, which stay beside the tables).
CURVE_VALUE_BYTES = 10
RUN_ROW_BYTES = 150  # a runs.parquet row (32 columns), and again in its part file
# `nnlab summary`'s peak memory: the interpreter and its imports, then per run (runs.parquet in pandas,
# the configurations' groups and bootstraps): 156 MB at 320 runs, 238 MB at 20,000 (bench_analysis.py).
ANALYSIS_BASE_BYTES = 160 * 2**20
ANALYSIS_RUN_BYTES = 4500
# `nnlab figures`' peak: the summary's, matplotlib's and seaborn's imports, and per loss value read (the
# convergence figure's sample of seeds as `read_curves` returns it, 20 bytes, and its quantile block):
# 486 MB at 20,000 runs x 301 epochs, 3 million values read (bench_analysis.py).
FIGURES_BASE_BYTES = 100 * 2**20
FIGURES_VALUE_BYTES = 48


@dataclass(frozen=True)
class ConfigPlan:
    """One configuration of the grid, planned.

    Attributes
    ----------
    config : Config
    n_params : int
        Parameters of one network (weights and biases).
    layout : str
        The compiled layout that trains it (`nnlab.sgd.layout`).
    job_bytes : int
        Memory its largest job needs: `nnlab.sgd.train_memory` for ``min(seeds, SEEDS_PER_JOB)``
        replicas, plus the initial networks, the data and the job's part table.
    run_seconds : float
        Estimated seconds to train one of its runs on one thread (`run_seconds`).
    """

    config: Config
    n_params: int
    layout: str
    job_bytes: int
    run_seconds: float


@dataclass(frozen=True)
class Plan:
    """A sweep's plan (`preview`): what it would train, and whether it is refused.

    Attributes
    ----------
    experiment : Experiment
    samples, test_samples, inputs, outputs : int
        The data's shape: training samples (after the held-out split), held-out samples, d, out.
    n_configs, n_seeds, runs : int
        Configurations, seeds per configuration, runs (their product).
    stored : int
        Runs of this grid already stored in the results folder (a rerun reuses them).
    jobs : int
        Worker processes (1: in this process).
    configs : tuple of ConfigPlan
        Every configuration (empty when the grid was refused before it was enumerated).
    curve_points : int
        Loss values curves.parquet will hold: runs x (epochs + 1).
    job_bytes : int
        The largest job's memory.
    train_seconds : float
        Estimated wall time of `nnlab run` training the runs still to train (`wall_seconds`), without
        compiling; 0 when every run is stored.
    compile : tuple of str
        Layouts whose kernels are not compiled yet (each about `COMPILE_SECONDS` on first use).
    refusal : str or None
        Why the sweep is refused (a limit, with its reason and a way under it), or None.
    memory : dict
        ``total`` and ``available`` bytes of this machine (what the memory limit compared against).
    stored_points : int
        Loss values the curves will store (``train.record`` thins them; `curve_points` counts every
        epoch).
    disk_bytes : dict
        Estimated disk of the finished sweep: ``curves`` (curves.parquet), ``runs`` (runs.parquet),
        ``networks`` (networks.parquet, with save_networks), ``parts`` (parts/, kept beside them).
    analysis_bytes : int
        Estimated peak memory of `nnlab summary`, which reads runs.parquet only (runs x columns), never
        the curves.
    figures_bytes : int
        Estimated peak memory of `nnlab figures` and `report`: the summary's, and the curves they read
        (each configuration's first `nnlab.schema.QUANTILE_SEEDS` seeds and the seeds drawn one by one),
        never curves.parquet whole.
    """

    experiment: Experiment
    samples: int
    test_samples: int
    inputs: int
    outputs: int
    n_configs: int
    n_seeds: int
    runs: int
    stored: int
    jobs: int
    configs: tuple[ConfigPlan, ...]
    curve_points: int
    job_bytes: int
    train_seconds: float
    compile: tuple[str, ...] = ()
    refusal: str | None = None
    memory: dict = field(default_factory=dict)
    # Where the step rates come from (`step_rates`): "" another machine's, "idle" or "busy" this one's.
    measured: str = ""
    stored_points: int = 0
    disk_bytes: dict = field(default_factory=dict)
    analysis_bytes: int = 0
    figures_bytes: int = 0

    @property
    def seconds(self) -> float:
        """Estimated wall time: training plus compiling."""
        return self.train_seconds + COMPILE_SECONDS * len(self.compile)

    def text(self) -> str:
        """The plan as `nnlab run --dry-run` prints it."""
        exp = self.experiment
        swept = {a: v for a, v in {**exp.model, **exp.train}.items() if a in AXES and isinstance(v, list)}
        runs = f"{self.runs:,} runs"
        if self.stored:
            runs += f"; {self.stored:,} already stored, {self.todo:,} to train"
        held = f" (+ {self.test_samples:,} held out)" if self.test_samples else ""
        lines = [
            f"{exp.name}: {self.n_configs:,} configurations x {self.n_seeds:,} {_seeds(exp)} = {runs}",
            f"data: task {exp.task['kind']}, {self.samples:,} training samples{held}, {self.inputs} inputs, "
            f"{self.outputs} outputs",
            "swept: "
            + ("; ".join(f"{a} {_values(v)}" for a, v in swept.items()) or "nothing (one configuration)"),
        ]
        if self.configs:
            layouts = ", ".join(sorted({c.layout for c in self.configs}))
            lines.append(
                f"parameters per network: {_span([c.n_params for c in self.configs])}; layout {layouts}; "
                f"curves: {self.curve_points:,} loss values"
            )
            seeds = min(self.n_seeds, SEEDS_PER_JOB)
            memory = f"memory: {_bytes(self.job_bytes)} for the largest job ({seeds} seeds)"
            if self.jobs > 1:
                memory += f", plus about {_bytes(WORKER_BYTES)} per worker process"
            if self.memory:
                memory += (
                    f"; {_bytes(self.memory['available'])} of this machine's {_bytes(self.memory['total'])} "
                    "are available"
                )
            lines.append(memory)
            lines += self._analysis_lines()
            how = f"{self.jobs} worker processes" if self.jobs > 1 else "in this process, one thread"
            time = f"time: about {_duration(self.train_seconds)} ({how})"
            if self.compile:
                kernels = " and ".join(self.compile)
                time += (
                    f" + about {COMPILE_SECONDS * len(self.compile):.0f} s compiling the {kernels} kernels"
                )
            if self.measured == "busy":
                lines.append(
                    f"{time}; from step rates measured on this machine while it was busy (up to 2x slow; "
                    "measured again once it is not)"
                )
            elif self.measured:
                lines.append(f"{time}; from step rates measured on this machine (when idle)")
            else:
                lines.append(f"{time}; a rough estimate from another machine's step rates, often off by 2x")
        lines.append(f"refused: {self.refusal}" if self.refusal else "nothing was written (a dry run)")
        return "\n".join(lines)

    __str__ = text

    def _analysis_lines(self) -> list[str]:
        """What the sweep leaves on disk, what reading it takes, and what its seeds can decide."""
        disk = self.disk_bytes
        networks = f", networks.parquet {_bytes(disk['networks'])}" if disk.get("networks") else ""
        lines = [
            f"disk: about {_bytes(sum(disk.values()))} (curves.parquet {_bytes(disk['curves'])} for "
            f"{self.stored_points:,} loss values, runs.parquet {_bytes(disk['runs'])}{networks}, and parts/ "
            f"{_bytes(disk['parts'])}, kept beside them: a rerun resumes from it)",
            f"analysis: nnlab summary reads runs.parquet only ({self.runs:,} runs x 32 columns), never the "
            f"curves: about {_bytes(self.analysis_bytes)} of memory; nnlab figures and report read only the "
            f"curves they draw (at most each configuration's first {QUANTILE_SEEDS} seeds, a row group at a "
            f"time): about {_bytes(self.figures_bytes)}",
        ]
        return [*lines, _seeds_line(self.n_seeds)]

    @property
    def todo(self) -> int:
        """Runs still to train: ``runs - stored``."""
        return self.runs - self.stored


def _seeds(exp: Experiment) -> str:
    """The seeds as a range when they are one (``seeds = 5`` is 0..4), else the first few."""
    seeds = exp.train["seeds"]
    if isinstance(seeds, int):
        return f"seeds (0..{seeds - 1})"
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"seeds ({seeds[0]}..{seeds[-1]})"
    return "seeds (" + ", ".join(map(str, seeds[:6])) + (", ...)" if len(seeds) > 6 else ")")


def _seeds_line(n: int) -> str:
    """How many seeds a decisive verdict needs (`nnlab.schema.decisive_seeds`), and what ``n`` decide:
    the success rates at or above which over-capacity is sure, and below which critical is."""
    need = (
        f"verdicts: a decisive one (the Wilson {LEVEL_TEXT} interval of the success rate wholly on one "
        "side of "
        f"{RELIABLE:.0%}) needs {decisive_seeds(1.0):.0f} seeds at a 100% success rate, "
        f"{decisive_seeds(0.95):.0f} at 95%, {decisive_seeds(0.8):.0f} at 80%, more the nearer to "
        f"{RELIABLE:.0%}"
    )
    # n (rate - r)^2 >= z^2 r (1 - r): the rates n seeds decide, either side of r.
    margin = _z() * math.sqrt(RELIABLE * (1 - RELIABLE) / n)
    high, low = RELIABLE + margin, RELIABLE - margin
    over = f"over-capacity from {high:.1%} solved" if high <= 1 else "no rate is sure to be over-capacity"
    return f"{need}; with {n:,} seeds: {over}, critical below {max(low, 0):.1%}"


def _z() -> float:
    """The standard normal's quantile of the intervals (1.96 at 95%)."""
    from statistics import NormalDist

    from nnlab.schema import LEVEL

    return NormalDist().inv_cdf(0.5 + LEVEL / 2)


def _values(v: list) -> str:
    return "[" + ", ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v) + "]"


def _span(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,} to {hi:,}"


def _bytes(n: float) -> str:
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.{1 if seconds < 600 else 0}f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def machine_memory() -> dict[str, int]:
    """``total`` physical memory and the memory ``available`` now (Linux's MemAvailable; the total
    where it is not known), in bytes."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    available = total
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"total": int(total), "available": int(available)}


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def data_shape(exp: Experiment) -> tuple[int, int, int, int]:
    """(training samples, held-out samples, d, out) of the experiment's data, its task's fields
    validated, without loading the digits (`nnlab.tasks.task_shape`)."""
    params = {k: v for k, v in exp.task.items() if k not in ("kind", "test_fraction")}
    try:
        n, d, out = task_shape(exp.task["kind"], params)
    except ValueError as err:
        message = str(err)
        raise ExperimentError(message if message.startswith("task") else f"task.{message}") from None
    n_test = int(round(exp.task["test_fraction"] * n))
    if n_test >= n:
        raise ExperimentError(
            f"task.test_fraction: {exp.task['test_fraction']:g} leaves no training samples out of {n}"
        )
    return n - n_test, n_test, d, out


def _n_params(d: int, width: int, depth: int, out: int, bias: bool) -> int:
    """Parameters of [d, width x depth, out], by formula (no list of depth sizes)."""
    weights = d * width + width * width * (depth - 1) + width * out
    return weights + ((width * depth + out) if bias else 0)


def _grid_size(exp: Experiment) -> int:
    values = {**exp.model, **exp.train}
    return math.prod(len(values[a]) if isinstance(values[a], list) else 1 for a in AXES)


def preview(
    exp: Experiment,
    *,
    shape: tuple[int, int, int, int],
    jobs: int = 1,
    done: Collection[str] = (),
    remote: bool = False,
    memory: dict[str, int] | None = None,
    check_compiled: bool = True,
) -> Plan:
    """Plan ``exp``'s sweep on data of ``shape`` = (training samples, held-out samples, d, out).

    Parameters
    ----------
    jobs : int
        Worker processes (1: in this process).
    done : collection of str
        Run ids already stored in the results folder: those of the grid are not counted in the time.
    remote : bool
        The jobs run on a Dask scheduler elsewhere: this machine's memory limits them not.
    memory : dict, optional
        `machine_memory` (measured when not given).
    check_compiled : bool
        Look up whether the layouts' kernels are compiled yet (imports numba, about 0.5 s).

    Returns
    -------
    Plan
        ``refusal`` says why the sweep cannot run, if it cannot (checked in this order: the number of
        runs, the curves' size, depth, then memory); nothing in proportion to the grid is allocated
        before the counts pass.
    """
    n, n_test, d, out = shape
    n_configs = _grid_size(exp)
    n_seeds = len(exp.train["seeds"]) if isinstance(exp.train["seeds"], list) else int(exp.train["seeds"])
    runs = n_configs * n_seeds
    epochs = exp.train["epochs"]
    curve_points = sum(n_seeds * (e + 1) for e in (epochs if isinstance(epochs, list) else [epochs]))
    curve_points *= n_configs // (len(epochs) if isinstance(epochs, list) else 1)
    memory = memory if memory is not None else machine_memory()
    base = dict(
        experiment=exp,
        samples=n,
        test_samples=n_test,
        inputs=d,
        outputs=out,
        n_configs=n_configs,
        n_seeds=n_seeds,
        runs=runs,
        stored=0,
        jobs=jobs,
        curve_points=curve_points,
        memory={} if remote else memory,
    )
    refusal = None
    if runs > MAX_RUNS:
        refusal = (
            f"{n_configs:,} configurations x {n_seeds:,} seeds = {runs:,} runs, more than the {MAX_RUNS:,} "
            "one experiment may hold (each run is hashed, stored and checked on every resume); split the "
            "study into several experiments"
        )
    elif curve_points > MAX_CURVE_POINTS:
        refusal = (
            f"the loss curves would hold {curve_points:,} values (runs x (epochs + 1)), more than "
            f"{MAX_CURVE_POINTS:,} (the merge holds them in memory at once: about "
            f"{_bytes(MAX_CURVE_POINTS * 40)}); fewer seeds, epochs or configurations"
        )
    else:
        depths = exp.model["depth"] if isinstance(exp.model["depth"], list) else [exp.model["depth"]]
        if max(depths) > MAX_DEPTH:
            refusal = (
                f"model.depth: {max(depths):,} hidden layers, more than {MAX_DEPTH:,} (the engines walk the "
                "layers one by one, and no gradient crosses that many saturating layers)"
            )
    if refusal:
        return Plan(**base, configs=(), job_bytes=0, train_seconds=0.0, refusal=refusal)

    R = min(n_seeds, SEEDS_PER_JOB)
    rates, measured = step_rates(measure=check_compiled)
    base["measured"] = measured
    configs = exp.configs()
    stored = sum(c.run_id(s) in done for c in configs for s in exp.seeds) if done else 0
    base["stored"] = stored
    planned = []
    same: dict[tuple, ConfigPlan] = {}  # configurations that differ only in lr, init or loss cost the same
    for c in configs:
        key = (c.depth, c.width, c.bias, c.epochs, c.batch_size, c.optimizer)
        if key in same:
            planned.append(dataclasses.replace(same[key], config=c))
            continue
        P = _n_params(d, c.width, c.depth, out, c.bias)
        # A job holds the initial networks, the kernels' copy and the trained networks, at least.
        floor = 3 * 8 * R * P
        if floor > memory["total"] and not remote:
            return Plan(
                **base,
                configs=(),
                job_bytes=floor,
                train_seconds=0.0,
                refusal=_too_big(c, R, P, floor, memory),
            )
        sizes = [d, *c.sizes_hidden, out]
        parts = train_memory(sizes, replicas=R, n=n, epochs=c.epochs, batch_size=c.batch_size, bias=c.bias)
        job = sum(parts.values()) + 8 * R * (P + 2 * (c.epochs + 1)) + 8 * (n + n_test) * (d + out)
        if exp.save_networks:
            job += 8 * R * P  # the part table's copy of the parameters
        fit = dict(epochs=c.epochs, batch_size=c.batch_size, bias=c.bias, optimizer=c.optimizer)
        seconds = run_seconds(sizes, n=n, rates=rates, **fit)
        same[key] = ConfigPlan(c, P, layout(sizes, c.batch_size), job, seconds)
        planned.append(same[key])
    job_bytes = max(p.job_bytes for p in planned)
    footprint = _footprint(exp, planned, n_seeds)
    seconds = wall_seconds(planned, n_seeds, jobs=jobs, todo=(runs - stored) / runs)
    if seconds:
        seconds += MERGE_SECONDS + MERGE_VALUE_SECONDS * footprint["stored_points"]
    compile_ = ()
    if check_compiled and runs > stored:
        from nnlab.sgd import uncompiled

        compile_ = tuple(uncompiled(sorted({p.layout for p in planned})))
    plan = Plan(
        **base,
        configs=tuple(planned),
        job_bytes=job_bytes,
        train_seconds=seconds,
        compile=compile_,
        **footprint,
    )
    if not remote:
        biggest = max(planned, key=lambda p: p.job_bytes)
        refusal = _memory_refusal(biggest, R, jobs, memory)
        if refusal:
            return dataclasses.replace(plan, refusal=refusal)
    return plan


def _footprint(exp: Experiment, planned: list[ConfigPlan], n_seeds: int) -> dict:
    """The finished sweep's stored loss values, disk and the memory of `nnlab summary` and `figures`
    (`Plan`'s ``stored_points``, ``disk_bytes``, ``analysis_bytes``, ``figures_bytes``)."""
    record = exp.train.get("record", "all")
    kept: dict[int, int] = {}
    for p in planned:
        if p.config.epochs not in kept:
            kept[p.config.epochs] = len(recorded_epochs(p.config.epochs, record))
    points = n_seeds * sum(kept[p.config.epochs] for p in planned)
    # (convergence's sample of seeds per configuration, and seed_curves' at most 30 seeds of 40 of them)
    read = min(n_seeds, QUANTILE_SEEDS) * sum(kept[p.config.epochs] for p in planned)
    read += min(n_seeds, 30) * sum(kept[p.config.epochs] for p in planned[:40])
    runs = n_seeds * len(planned)
    networks = 8 * n_seeds * sum(p.n_params for p in planned) if exp.save_networks else 0
    disk = {"curves": CURVE_VALUE_BYTES * points, "runs": RUN_ROW_BYTES * runs, "networks": networks}
    disk["parts"] = sum(disk.values())
    return {
        "stored_points": points,
        "disk_bytes": disk,
        "analysis_bytes": ANALYSIS_BASE_BYTES + ANALYSIS_RUN_BYTES * runs,
        "figures_bytes": ANALYSIS_BASE_BYTES
        + ANALYSIS_RUN_BYTES * runs
        + FIGURES_BASE_BYTES
        + FIGURES_VALUE_BYTES * read,
    }


def run_seconds(
    sizes: list[int],
    *,
    n: int,
    epochs: int,
    batch_size: int,
    bias: bool,
    rates: dict | None = None,
    optimizer: str = "sgd",
) -> float:
    """Seconds one run of ``sizes`` takes on one thread: epochs x n steps at ``rates`` (kind ->
    (a, b): a + b P seconds a step, P parameters; `step_rates`), `nnlab.sgd.STEP_SECONDS` by default,
    and the ``optimizer``'s cost per update (`nnlab.sgd.train_seconds`)."""
    fit = dict(epochs=epochs, batch_size=batch_size, bias=bias, optimizer=optimizer)
    return train_seconds(sizes, replicas=1, n=n, rates=rates, **fit)


def billed_replicas(seeds: int, kind: str) -> int:
    """The replicas ``seeds`` seeds of one configuration cost in jobs of `SEEDS_PER_JOB`: in the lane
    layout a job's last chunk is padded to whole lanes (`nnlab.machine.lanes`), and a chunk of 2
    replicas costs as much as one of 16 (50 seeds: jobs of 32 and 18, as dear as 64 seeds)."""
    if kind != "lanes":
        return seeds
    from nnlab import machine

    lanes = machine.lanes()
    full, rest = divmod(seeds, SEEDS_PER_JOB)
    return full * SEEDS_PER_JOB + -(-rest // lanes) * lanes


def wall_seconds(planned: list[ConfigPlan], n_seeds: int, *, jobs: int, todo: float = 1.0) -> float:
    """Wall time of `nnlab run` training the share ``todo`` of the configurations ``planned`` (each
    of ``n_seeds`` seeds), merge aside: the command's start (`PROCESS_SECONDS`), the workers' start
    (`START_SECONDS`) or the kernels' load in this process (`LOAD_SECONDS`), then the jobs' work
    (`run_seconds` x `billed_replicas`, plus `JOB_SECONDS` a job) shared by ``jobs`` workers (at
    most one per core), or the longest job when it is longer. 0 when nothing is to train."""
    if not planned or todo <= 0:
        return 0.0
    parallel = max(1, min(jobs, cores()))
    per_config = math.ceil(n_seeds / SEEDS_PER_JOB)
    work = longest = 0.0
    for p in planned:
        work += p.run_seconds * billed_replicas(n_seeds, p.layout) + JOB_SECONDS * per_config
        longest = max(longest, p.run_seconds * billed_replicas(min(n_seeds, SEEDS_PER_JOB), p.layout))
    start = START_SECONDS if jobs > 1 else LOAD_SECONDS
    return PROCESS_SECONDS + start + max(work * todo / parallel, longest)


# What `step_rates` trains, per kind: (sizes, batch size, replicas, samples, epochs), each about 50 ms
# here; two sizes for the lanes, whose steps have a fixed cost a besides b per parameter.
CALIBRATION = {
    "lanes": (([2, 8, 1], 1, 16, 64, 400), ([16, 64, 16], 1, 16, 64, 40)),
    "replica per sample": (([64, 256, 64], 1, 2, 32, 30),),
    "replica": (([64, 256, 64], 8, 2, 64, 40),),
}
RATES_FILE = "step_rates.json"


def _rates_key() -> str:
    """What the step rates depend on: the processor, numba, and the engine's source."""
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    here = Path(__file__).resolve().parent.parent
    source = b"".join((here / name).read_bytes() for name in ("_kernels.py", "sgd.py"))
    return f"{cpu}|numba {numba.__version__}|{hashlib.sha256(source).hexdigest()[:16]}"


def _rates_path() -> Path:
    """Beside the compiled kernels (numba's cache, nnlab/__pycache__), never in a results folder."""
    return Path(__file__).resolve().parent.parent / "__pycache__" / RATES_FILE


def step_rates(*, measure: bool = True) -> tuple[dict, str]:
    """This machine's step rates (kind -> (a, b), as `nnlab.sgd.STEP_SECONDS`) and where they come
    from: "" (none measured here), "idle" or "busy" (measured here, some on a busy machine). Read
    from nnlab/__pycache__/step_rates.json, else (``measure``) measured once by training a tiny
    problem per kind with `nnlab.sgd.train` (about a second) and stored there. A kind
    whose kernels are not compiled yet keeps the default (another machine's) rather than compile now,
    and is measured by a later plan once they are. Rates measured on a busy machine (`busy`: other
    processes slow a measurement, and the cache would keep it) are used, and measured again, once, by
    the first plan that finds the machine not busy."""
    rates, done, was_busy = dict(STEP_SECONDS), [], False
    try:
        key = _rates_key()
        stored = json.loads(_rates_path().read_text(encoding="utf-8"))
        if stored.get("key") == key:
            done = [k for k in stored["measured"] if k in rates]
            rates.update({k: tuple(stored["rates"][k]) for k in done})
            was_busy = bool(stored.get("busy"))
            if measure and was_busy and not busy():
                done, was_busy = [], False
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ImportError):
        pass
    if not measure or len(done) == len(rates):
        return rates, ("busy" if was_busy else "idle") if done else ""
    from nnlab.sgd import uncompiled

    missing = set(uncompiled(sorted({layout(c[0][0], c[0][1]) for c in CALIBRATION.values()})))
    todo = [k for k, p in CALIBRATION.items() if k not in done and layout(p[0][0], p[0][1]) not in missing]
    loaded = busy()
    for kind in todo:
        rates[kind] = _measure(CALIBRATION[kind])
    if todo:
        # A cache only: one that cannot be written (or is not a plain file) is measured again later.
        with contextlib.suppress(OSError, StorageError, UnsafePath):
            path = _rates_path()
            path.parent.mkdir(exist_ok=True)
            record = {"key": _rates_key(), "measured": [*done, *todo], "rates": rates, "busy": loaded}
            atomic_write_text(path, json.dumps(record))  # whole: another process may read it
    if not (done or todo):
        return rates, ""
    return rates, "busy" if (todo and loaded) or (done and was_busy) else "idle"


def busy() -> bool:
    """Whether this machine is busy: a 1-minute load average of at least its cores (a measurement
    then shares a core, and was seen up to 2x slow)."""
    try:
        return os.getloadavg()[0] >= cores()
    except (OSError, AttributeError):
        return False


def _measure(problems) -> tuple[float, float]:
    """(a, b) of one kind from timing `nnlab.sgd.train` on ``problems`` (best of three each)."""
    import numpy as np

    from nnlab.network import init_network
    from nnlab.sgd import train

    per_step, params = [], []
    for sizes, batch, replicas, n, epochs in problems:
        rng = np.random.default_rng(0)
        X, Y = rng.standard_normal((n, sizes[0])), np.tanh(rng.standard_normal((n, sizes[-1])))
        net = init_network(sizes, seeds=list(range(replicas)))
        train(net, X, Y, lr=0.01, epochs=1, batch_size=batch, threads=1)  # loads the kernels
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            train(net, X, Y, lr=0.01, epochs=epochs, batch_size=batch, threads=1)
            best = min(best, time.perf_counter() - start)
        per_step.append(best / (replicas * n * epochs))
        params.append(sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True)))
    if len(problems) == 1:
        return 0.0, per_step[0] / params[0]
    b = max(0.0, (per_step[1] - per_step[0]) / (params[1] - params[0]))
    return max(0.0, per_step[0] - b * params[0]), b


def _where(c: Config) -> str:
    return f"depth {c.depth:,} x width {c.width:,}"


def _too_big(c: Config, R: int, P: int, need: int, memory: dict) -> str:
    return (
        f"a job of {R} seeds of {_where(c)} ({P:,} parameters each) needs at least {_bytes(need)}, more "
        f"than this machine's {_bytes(memory['total'])} of memory; a smaller network"
    )


def _memory_refusal(p: ConfigPlan, R: int, jobs: int, memory: dict) -> str | None:
    """Why jobs of ``p`` cannot fit in memory, or None."""
    one = p.job_bytes + (WORKER_BYTES if jobs > 1 else 0)
    if one > memory["total"]:
        return _too_big(p.config, R, p.n_params, one, memory)
    if jobs * one > memory["available"]:
        fit = int(memory["available"] // one)
        advice = f"use --jobs {fit}" if fit >= 1 else "free some memory, or a smaller network"
        return (
            f"--jobs {jobs}: {jobs} jobs at once of {_where(p.config)} ({R} seeds each) need "
            f"{_bytes(jobs * one)}, and {_bytes(memory['available'])} of this machine's "
            f"{_bytes(memory['total'])} are available now; {advice}"
        )
    return None


def refuse(plan: Plan) -> None:
    """An ExperimentError (``refused: <why>``) when the plan is refused."""
    if plan.refusal:
        raise ExperimentError(f"refused: {plan.refusal}")
