"""Experiment files: TOML in, a validated `Experiment` out, and its grid of configurations.

An experiment has top-level ``name``, ``description``, ``threshold``, and sections ``[task]``,
``[model]`` and ``[train]`` (documented in experiments/README.md). In [model] and [train] a list is
a sweep axis; ``train.seeds`` is a count (seeds 0..count-1) or a list of seeds, trained together on
the replica axis. Every error names the field and what is allowed, and suggests the closest field
for a typo.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import itertools
import json
import os
import re
import reprlib
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnlab.errors import InputError, did_you_mean
from nnlab.functions import ACTIVATIONS, ELEMENTWISE, LOSSES, check_pairing
from nnlab.network import INITS
from nnlab.schema import (
    AXES,
    MAX_DEPTH,
    MAX_EPOCHS,
    MAX_INT,
    MAX_NAME,
    MAX_SEEDS,
    MAX_WIDTH,
    NOT_AXES,
    OPTIMIZER_AXES,
    SECTION_FIELDS,
    Config,
)
from nnlab.sgd import OPTIMIZERS, SCHEDULES, OptimizerSpec, unused_fields
from nnlab.tasks import TASKS, check_data_file, file_sha256

ACTIVATION_NAMES = tuple(ACTIVATIONS)
HIDDEN_NAMES = tuple(ELEMENTWISE)
LOSS_NAMES = tuple(LOSSES)
NAME = re.compile(r"^[A-Za-z0-9_-]+$")

TOP = {"name", "description", "threshold", "save_networks", "task", "model", "train"}
SECTIONS = {"task", "model", "train"}


def _int_in(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


# What a value of each kind must be: (test, description for the error).
KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "pos_int": (_int_in(1, MAX_INT), "an int in 1..2**63-1"),
    "depth": (_int_in(1, MAX_DEPTH), f"an int in 1..{MAX_DEPTH:_}"),
    "width": (_int_in(1, MAX_WIDTH), f"an int in 1..{MAX_WIDTH:_}"),
    "pos_float": (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < float("inf"),
        "a number > 0",
    ),
    # Every epoch's loss is kept (curves.parquet): a bound that fails here, not as a MemoryError.
    "epochs": (_int_in(1, MAX_EPOCHS), f"an int in 1..{MAX_EPOCHS:_}"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "activation": (lambda v: v in ACTIVATION_NAMES, "one of " + ", ".join(ACTIVATION_NAMES)),
    # softmax mixes the units of a layer: an output activation only.
    "hidden": (lambda v: v in HIDDEN_NAMES, "one of " + ", ".join(HIDDEN_NAMES) + " (softmax: output only)"),
    "loss": (lambda v: v in LOSS_NAMES, "one of " + ", ".join(LOSS_NAMES)),
    "init": (lambda v: v in INITS, "one of " + ", ".join(INITS)),
    "optimizer": (lambda v: v in OPTIMIZERS, "one of " + ", ".join(OPTIMIZERS)),
    "schedule": (lambda v: v in SCHEDULES, "one of " + ", ".join(SCHEDULES)),
    "unit": (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1,
        "a number in [0, 1)",
    ),
    "nonneg_float": (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < float("inf"),
        "a number >= 0",
    ),
    "nonneg_int": (_int_in(0, MAX_INT), "an int >= 0"),
}
FLOAT_KINDS = (
    "pos_float",
    "unit",
    "nonneg_float",
)  # numbers that come back as floats (1 and 1.0: one run id)
FIELDS = SECTION_FIELDS
TASK_COMMON = {"kind", "seed", "test_fraction"}


class ExperimentError(InputError):
    """A malformed or invalid experiment: the message names the field."""


@dataclass(frozen=True)
class Experiment:
    """A validated experiment file."""

    name: str
    description: str
    threshold: float
    save_networks: bool
    task: Mapping[str, Any]
    model: Mapping[str, Any]
    train: Mapping[str, Any]

    @property
    def seeds(self) -> list[int]:
        """The seeds of every configuration: ``seeds = 5`` is a count, seeds 0..4; a list is itself.
        (`nnlab.init_network(seeds=5)` is one replica of seed 5.)"""
        s = self.train["seeds"]
        return list(range(s)) if isinstance(s, int) else list(s)

    def configs(self) -> list[Config]:
        """The cartesian product of every list-valued field of [model] and [train] (seeds aside)."""
        values = {**self.model, **{k: v for k, v in self.train.items() if k not in NOT_AXES}}
        axes = [values[a] if isinstance(values[a], list) else [values[a]] for a in AXES]
        task = tuple(sorted(self.task.items()))
        # A field the configuration's optimizer or schedule does not read keeps its default there (a
        # sweep over optimizers with beta1 = 0.95 trains plain SGD once, as plain SGD's run ids say).
        configs = [_normalized(Config(self.name, task, *combo)) for combo in itertools.product(*axes)]
        first = {}
        for c in configs:
            first.setdefault(c.key, c)
        return list(first.values())

    def to_toml(self) -> str:
        """The resolved experiment as TOML (every default filled in)."""
        lines = [f"name = {_toml(self.name)}", f"description = {_toml(self.description)}"]
        lines += [f"threshold = {_toml(self.threshold)}", f"save_networks = {_toml(self.save_networks)}"]
        for section in ("task", "model", "train"):
            lines += ["", f"[{section}]"]
            for key, value in getattr(self, section).items():
                if (section, key) == ("train", "record") and value == "all":
                    continue  # the default, left out so that older folders' files stay as they were
                lines.append(f"{key} = {_toml(value)}")
                if (section, key) == ("train", "seeds") and isinstance(value, int):
                    # A count here, where nnlab.init_network(seeds=5) is one replica of seed 5.
                    lines[-1] += f"  # a count: seeds 0..{value - 1}"
        return "\n".join(lines) + "\n"


def _normalized(c: Config) -> Config:
    """``c`` with the optimizer fields its rule and schedule do not read at their defaults."""
    unused = unused_fields(c.optimizer, c.schedule)
    defaults = {f.name: f.default for f in dataclasses.fields(Config) if f.name in unused}
    return dataclasses.replace(c, **defaults) if any(getattr(c, k) != v for k, v in defaults.items()) else c


def _check_optimizers(train: Mapping[str, Any]) -> None:
    """Every optimizer field must be read by some configuration's rule or schedule (a field no
    configuration reads is a mistake worth one line), and every configuration's fields must make an
    `nnlab.sgd.OptimizerSpec` (the step schedule needs step_every)."""
    listed = {k: train[k] if isinstance(train[k], list) else [train[k]] for k in OPTIMIZER_AXES}
    defaults = {f.name: f.default for f in dataclasses.fields(Config) if f.name in OPTIMIZER_AXES}
    combos = [(o, sch) for o in listed["optimizer"] for sch in listed["schedule"]]
    for name in OPTIMIZER_AXES:
        if listed[name] != [defaults[name]] and all(name in unused_fields(o, sch) for o, sch in combos):
            users = "momentum and nesterov use" if name == "momentum" else "adam and adamw use"
            if name in ("gamma", "step_every"):
                users = 'the schedule "step" uses'
            raise ExperimentError(
                f"train.{name}: only {users} it; this experiment's optimizer is "
                f"{shown(train['optimizer'])} and its schedule {shown(train['schedule'])}"
            )
    for optimizer, schedule in combos:
        values = {k: v[0] for k, v in listed.items()} | {"optimizer": optimizer, "schedule": schedule}
        config = _normalized(dataclasses.replace(Config("", ()), **values))
        try:
            OptimizerSpec(**config.optimizer_fields)
        except ValueError as err:
            raise ExperimentError(f"train.{err}") from None


def task_columns(task: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved [task] section as runs.parquet's ``task_<field>`` columns: every field of its kind,
    defaults filled in (``kind`` itself is the ``task`` column); a list (a file's ``inputs``,
    ``targets``) as JSON text, a field without a value as None."""
    fields = {
        k: p.default
        for k, p in inspect.signature(TASKS[task["kind"]]).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    values = {**fields, **{k: v for k, v in task.items() if k != "kind"}}
    return {f"task_{k}": json.dumps(v) if isinstance(v, list) else v for k, v in sorted(values.items())}


# TOML's short escapes; every other control character as \\u and its four hex digits. Anything
# else, up to U+10FFFF, is written as itself (TOML files are UTF-8), never as JSON's surrogate pairs.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    """A TOML basic string holding ``text`` exactly (any Unicode scalar value)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, float):
        return repr(value) if value == value else "nan"  # inf and nan are TOML's words too
    return repr(value)


# The names a field of each kind takes, for "did you mean".
NAMES = {
    "activation": ACTIVATION_NAMES,
    "hidden": HIDDEN_NAMES,
    "init": tuple(INITS),
    "loss": LOSS_NAMES,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
}


def shown(value: Any) -> str:
    """A value for an error message: as TOML spells it (true, false), nesting and length cut short
    (a deeply nested array would otherwise fill the line, or exceed the recursion limit)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother = 3, 6, 4, 60, 60
    return short.repr(value)


def _unknown(where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            names = sorted(allowed)
            hint = did_you_mean(key, names)
            raise ExperimentError(f"{where}{key}: unknown field{hint}; allowed: {', '.join(names)}")


def _check(field: str, value: Any, kind: str) -> Any:
    """Validate one scalar (or each element of a sweep list) against ``kind``; numbers of kind
    pos_float come back as floats."""
    if isinstance(value, list) and not value:
        raise ExperimentError(f"{field}: an empty list sweeps nothing; give at least one value")
    test, description = KINDS[kind]
    for v in value if isinstance(value, list) else [value]:
        if not test(v):
            # Only a field that takes a name suggests one (lr = "squred" is not a misspelt loss).
            names = NAMES.get(kind, ())
            hint = did_you_mean(v, names) if isinstance(v, str) else ""
            raise ExperimentError(f"{field}: expected {description}, got {shown(v)}{hint}")
    if kind not in FLOAT_KINDS:
        return value
    return [float(v) for v in value] if isinstance(value, list) else float(value)


def validate(data: Mapping[str, Any]) -> Experiment:
    """An `Experiment` from a parsed TOML document, or an ExperimentError naming the field."""
    _unknown("", data, TOP)
    name = data.get("name")
    if name is None:
        raise ExperimentError("name: required (letters, digits, '-' and '_'; results go to results/<name>/)")
    if not isinstance(name, str) or not NAME.match(name):
        raise ExperimentError(f"name: expected letters, digits, '-' and '_' only, got {shown(name)}")
    if len(name) > MAX_NAME:
        raise ExperimentError(f"name: at most {MAX_NAME} characters (it names a folder), got {len(name)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ExperimentError(f"description: expected a string, got {shown(description)}")
    threshold = data.get("threshold", 1e-3)
    save = data.get("save_networks", False)
    for key, value, kind in (("threshold", threshold, "pos_float"), ("save_networks", save, "bool")):
        if isinstance(value, list):  # one value for the whole sweep: not an axis
            raise ExperimentError(f"{key}: expected one value (not a sweep axis), got {shown(value)}")
        _check(key, value, kind)
    for section in ("task", "model", "train"):
        if section in data and not isinstance(data[section], dict):
            raise ExperimentError(
                f"{section}: expected a [{section}] section (a table), got {shown(data[section])}"
            )

    task = dict(data.get("task", {}))
    kind = task.get("kind")
    if not isinstance(kind, str) or kind not in TASKS:
        hint = did_you_mean(kind, sorted(TASKS)) if isinstance(kind, str) else ""
        raise ExperimentError(
            f"task.kind: expected one of {', '.join(sorted(TASKS))}, got {shown(kind)}{hint}"
        )
    fields = set(inspect.signature(TASKS[kind]).parameters) | TASK_COMMON
    _unknown("task.", task, fields)
    task.setdefault("seed", 0)
    task.setdefault("test_fraction", 0.0)
    if not _int_in(0, MAX_INT)(task["seed"]):
        raise ExperimentError(f"task.seed: expected an int in 0..2**63-1, got {shown(task['seed'])}")
    tf = task["test_fraction"]
    if not isinstance(tf, int | float) or isinstance(tf, bool) or not 0 <= tf < 1:
        raise ExperimentError(f"task.test_fraction: expected a number in [0, 1), got {shown(tf)}")

    sections = {}
    for section, fields in FIELDS.items():
        values = {**{k: default for k, (default, _) in fields.items()}, **data.get(section, {})}
        _unknown(f"{section}.", values, set(fields))
        for key, (_, kind_) in fields.items():
            if kind_ is not None:
                values[key] = _check(f"{section}.{key}", values[key], kind_)
            v = values[key]
            if key not in NOT_AXES and isinstance(v, list) and len(set(v)) != len(v):
                # The grid would hold a configuration twice, the folder never its runs twice.
                raise ExperimentError(f"{section}.{key}: a value is listed twice in {shown(v)}")
        sections[section] = values
    model, train = sections["model"], sections["train"]
    _check_pairings(model["output"], train["loss"])
    _check_optimizers(train)
    record = train["record"]
    if not (record in ("all", "log") or _int_in(1, MAX_EPOCHS)(record)):
        raise ExperimentError(
            f'train.record: expected "all", "log" or an int K >= 1 (every K-th epoch), got {shown(record)}'
        )
    seeds = train["seeds"]
    if isinstance(seeds, list):
        if not seeds or not all(_int_in(0, MAX_INT)(s) for s in seeds):
            bad = next((s for s in seeds if not _int_in(0, MAX_INT)(s)), seeds)
            raise ExperimentError(
                f"train.seeds: expected a count >= 1 or a list of ints in 0..2**63-1, got {shown(bad)}"
            )
        if len(seeds) > MAX_SEEDS:
            raise ExperimentError(f"train.seeds: at most {MAX_SEEDS:_} seeds, got a list of {len(seeds):_}")
        if len(set(seeds)) != len(seeds):
            raise ExperimentError(f"train.seeds: a seed is listed twice in {shown(seeds)}")
    elif not _int_in(1, MAX_SEEDS)(seeds):
        raise ExperimentError(
            f"train.seeds: expected a count in 1..{MAX_SEEDS:_} or a list of ints in 0..2**63-1, "
            f"got {shown(seeds)}"
        )
    return Experiment(name, description, float(threshold), save, task, model, train)


def _check_pairings(outputs: Any, losses: Any) -> None:
    """Every output activation of the grid must go with every loss (`nnlab.functions.PAIRINGS`)."""
    for output in outputs if isinstance(outputs, list) else [outputs]:
        for loss in losses if isinstance(losses, list) else [losses]:
            try:
                check_pairing(output, loss)
            except ValueError as err:
                raise ExperimentError(f"model.output, train.loss: {err}") from None


def parse_override(text: str) -> tuple[str | None, str, Any]:
    """``section.key=value`` (or ``key=value`` for a top-level field such as ``threshold``) ->
    (section or None, key, value); the value is read as TOML (``[2, 4]``, ``0.1``, ``true``,
    ``"relu"``), and a bare word stays a string (``model.hidden=relu``)."""
    match = re.match(r"^\s*(?:([A-Za-z_]+)\.)?([A-Za-z_]+)\s*=(.*)$", text)
    if not match:
        raise ExperimentError(f"--set: expected section.key=value or key=value, got {text!r}")
    section, key, raw = match.group(1), match.group(2), match.group(3).strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except RecursionError:
        raise ExperimentError(f"--set {shown(text)}: the value is nested too deeply") from None
    except tomllib.TOMLDecodeError as err:
        if raw[:1] in "[{\"'" or not raw:  # meant as a list, table or string: say it is malformed
            raise ExperimentError(f"--set {text}: the value is not valid TOML ({err})") from None
        value = raw  # a bare word: a string (model.hidden=relu)
    return section, key, value


def load(path: str | Path, overrides: Sequence[str] = ()) -> Experiment:
    """Read, override (``--set section.key=value``) and validate an experiment file."""
    p = Path(path)
    # os.path (not Path.is_dir): it answers False, not OSError, for a name too long to exist.
    if os.path.isdir(p):
        raise ExperimentError(f"experiment: {p} is a folder; give an experiment file (.toml)")
    if not os.path.isfile(p):
        raise ExperimentError(f"experiment: no such file: {p}")
    try:
        # (utf-8-sig: a byte-order mark, as Windows editors write one, is read past, as in a CSV.)
        data = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as err:
        raise ExperimentError(f"experiment: {p.name} is not valid TOML: {err}") from None
    except RecursionError:
        raise ExperimentError(f"experiment: {p.name} nests arrays or tables too deeply") from None
    except UnicodeDecodeError:
        raise ExperimentError(f"experiment: {p.name} is not a UTF-8 text file") from None
    except OSError as err:
        raise ExperimentError(f"experiment: cannot read {p}: {err.strerror or err}") from None
    return from_dict(data, overrides, base=p.parent)


def from_dict(
    data: Mapping[str, Any], overrides: Sequence[str] = (), *, base: str | Path = "."
) -> Experiment:
    """An `Experiment` from a plain dict shaped like an experiment file (``{"name": ..., "task":
    {...}, "model": {...}, "train": {...}}``), overridden (``section.key=value``) and validated; a
    `file` task's relative path is read from ``base``. ``data`` is not modified."""
    if not isinstance(data, Mapping):
        raise ExperimentError(f"experiment: expected a dict like an experiment file, got {shown(data)}")
    try:
        data = _plain(copy.deepcopy(dict(data)), "")  # (a fresh copy: the caller's dict is left alone)
    except RecursionError:
        raise ExperimentError("experiment: it nests arrays or tables too deeply") from None
    for text in check_overrides(overrides):
        section, key, value = parse_override(text)
        if section is None:
            fields = sorted(TOP - SECTIONS)
            if key not in fields:
                home = [f"{sec}.{key}" for sec, names in FIELDS.items() if key in names]
                hint = f" (did you mean '{home[0]}'?)" if home else did_you_mean(key, fields)
                raise ExperimentError(
                    f"--set {text}: a key without a section must be one of {', '.join(fields)}{hint}; "
                    "other keys take their section (train.lr=0.1)"
                )
            data[key] = value
            continue
        if section not in SECTIONS:
            raise ExperimentError(f"--set {text}: section must be task, model or train, got '{section}'")
        if not isinstance(data.get(section, {}), dict):
            raise ExperimentError(
                f"{section}: expected a [{section}] section (a table), got {data[section]!r}"
            )
        data.setdefault(section, {})[key] = value
    exp = validate(data)
    if exp.task["kind"] == "file" and "path" in exp.task:
        exp = _pin_data_file(exp, Path(base))
    return exp


def check_overrides(overrides: Any) -> list[str]:
    """``overrides`` as a list of ``section.key=value`` strings; a lone string (which would be
    read character by character) or anything but strings is refused."""
    if isinstance(overrides, str | bytes):
        raise ExperimentError(
            f"overrides: expected a list of 'section.key=value' strings, got the string {shown(overrides)} "
            f"(write [{shown(overrides)}])"
        )
    if not isinstance(overrides, Sequence | set | frozenset):
        raise ExperimentError(f"overrides: expected a list of 'section.key=value', got {shown(overrides)}")
    texts = list(overrides)
    for text in texts:
        if not isinstance(text, str):
            raise ExperimentError(f"overrides: expected 'section.key=value' strings, got {shown(text)}")
    return texts


def _plain(value: Any, where: str) -> Any:
    """A value of an experiment dict as TOML would have given it: numpy scalars as Python's
    (``np.int64(2)`` is 2), tuples as lists; a string holding a lone surrogate (no Unicode text,
    no TOML file can hold it) is refused, naming its field."""
    import numpy as np

    if isinstance(value, dict):
        return {k: _plain(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    if isinstance(value, np.generic) and value.dtype.kind in "biufU":
        return value.item()
    if isinstance(value, str) and any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        where = where or "experiment"
        raise ExperimentError(f"{where}: {shown(value)} holds a lone surrogate, which is no Unicode text")
    return value


def _pin_data_file(exp: Experiment, base: Path) -> Experiment:
    """A `file` task with its path made absolute (a relative path is read from the experiment
    file's folder) and the file's SHA-256 recorded, unless the experiment already records one (a
    results folder's experiment.toml: the data is checked against it when it is read)."""
    task = dict(exp.task)
    if not isinstance(task["path"], str):
        raise ExperimentError(f"task.path: expected a file name (a string), got {task['path']!r}")
    path = Path(task["path"]).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if "sha256" not in task:
        try:
            check_data_file(path, "task.path")
        except InputError as err:
            where = " (a relative path is read from the experiment file's folder)"
            raise ExperimentError(f"{err}{where if 'no such file' in str(err) else ''}") from None
        task["sha256"] = file_sha256(path)
    task["path"] = str(path)
    return dataclasses.replace(exp, task=task)
