"""The sweep wing: an experiment file in, a results folder out.

Rooms, in the order data flows through them:

- `experiment`: TOML in, a validated `Experiment` out, and its grid of configurations.
- `planning`: a sweep's plan (configurations, runs, memory, time) and its up-front refusals.
- `workers`: the pool that runs jobs (joblib's loky, or a Dask cluster) and ends them.
- `folder`: a results folder kept safe (one writer, whole files, nothing outside it touched).
- `store`: part files, their merge into the tables, and reading a folder back.
- `runner`: plan, train and store the runs (`run`, `dry_run`).
- `progress`: what a running sweep says.
- `endpoints`: `nnlab landscape`'s driver, certifying a folder's end points.

The public functions of `runner` and `store` are also here: ``nnlab.sweep.run``,
``nnlab.sweep.read_results``, ...
"""

# The rooms import each other by their own names (nnlab.sweep.store, ...), so this order is free.
from nnlab.sweep import endpoints, experiment, folder, planning, progress, runner, store, workers  # noqa: F401
from nnlab.sweep.runner import Job, check_targets, dry_run, load_data, plan, run, run_job  # noqa: F401
from nnlab.sweep.store import (  # noqa: F401
    PART,
    PARTS,
    TABLES,
    Results,
    check_out_path,
    merge,
    part_files,
    read_networks,
    read_parts,
    read_results,
    stored_run_ids,
    upgrade,
    write_part,
)
