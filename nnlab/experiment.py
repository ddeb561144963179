"""Experiment files: TOML in, a validated `Experiment` out, and its grid of configurations.

An experiment has top-level ``name``, ``description``, ``threshold``, and sections ``[task]``,
``[model]`` and ``[train]`` (documented in experiments/README.md). In [model] and [train] a list is
a sweep axis; ``train.seeds`` is a count (seeds 0..count-1) or a list of seeds, trained together on
the replica axis. Every error names the field and what is allowed, and suggests the closest field
for a typo.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import itertools
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnlab.tasks import TASKS

ACTIVATIONS = ("identity", "relu", "sigmoid", "tanh")
LOSSES = ("half_squared", "squared")
NAME = re.compile(r"^[A-Za-z0-9_-]+$")

TOP = {"name", "description", "threshold", "save_networks", "task", "model", "train"}
MODEL_DEFAULTS: dict[str, Any] = {"depth": 1, "width": 4, "hidden": "tanh", "output": "tanh", "bias": True}
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 0.05,
    "epochs": 100,
    "batch_size": 1,
    "loss": "half_squared",
    "seeds": 10,
}
TASK_COMMON = {"kind", "seed", "test_fraction"}
AXES = ("depth", "width", "hidden", "output", "bias", "lr", "epochs", "batch_size", "loss")


class ExperimentError(ValueError):
    """A malformed or invalid experiment: the message names the field."""


@dataclass(frozen=True)
class Config:
    """One point of the grid: everything a run depends on except its seed."""

    experiment: str
    task: tuple[tuple[str, Any], ...]  # the resolved [task] section, sorted by key
    depth: int
    width: int
    hidden: str
    output: str
    bias: bool
    lr: float
    epochs: int
    batch_size: int
    loss: str

    @property
    def sizes_hidden(self) -> list[int]:
        """Hidden layer sizes: [width] * depth."""
        return [self.width] * self.depth

    def key(self) -> str:
        """Canonical JSON of the configuration (the experiment's name left out: renaming an
        experiment does not change its runs)."""
        fields = {a: getattr(self, a) for a in AXES}
        return json.dumps({"task": dict(self.task), **fields}, sort_keys=True, separators=(",", ":"))

    def run_id(self, seed: int) -> str:
        """Stable id of the run (this configuration, this seed): 16 hex digits of a SHA-256."""
        return hashlib.sha256(f"{self.key()}|seed={int(seed)}".encode()).hexdigest()[:16]


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
        s = self.train["seeds"]
        return list(range(s)) if isinstance(s, int) else list(s)

    def configs(self) -> list[Config]:
        """The cartesian product of every list-valued field of [model] and [train] (seeds aside)."""
        values = {**self.model, **{k: v for k, v in self.train.items() if k != "seeds"}}
        axes = [values[a] if isinstance(values[a], list) else [values[a]] for a in AXES]
        task = tuple(sorted(self.task.items()))
        return [Config(self.name, task, *combo) for combo in itertools.product(*axes)]

    def to_toml(self) -> str:
        """The resolved experiment as TOML (every default filled in)."""
        lines = [f"name = {_toml(self.name)}", f"description = {_toml(self.description)}"]
        lines += [f"threshold = {_toml(self.threshold)}", f"save_networks = {_toml(self.save_networks)}"]
        for section in ("task", "model", "train"):
            lines += ["", f"[{section}]"]
            lines += [f"{k} = {_toml(v)}" for k, v in getattr(self, section).items()]
        return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _suggest(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unknown(where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            names = sorted(allowed)
            hint = _suggest(key, names)
            raise ExperimentError(f"{where}{key}: unknown field{hint}; allowed: {', '.join(names)}")


def _check(field: str, value: Any, kind: str) -> Any:
    """Validate one scalar (or each element of a sweep list) against ``kind``."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        raise ExperimentError(f"{field}: an empty list sweeps nothing; give at least one value")
    for v in items:
        ok = {
            "pos_int": isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "pos_float": isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < float("inf"),
            "bool": isinstance(v, bool),
            "activation": v in ACTIVATIONS,
            "loss": v in LOSSES,
        }[kind]
        if not ok:
            allowed = {
                "pos_int": "an int >= 1",
                "pos_float": "a number > 0",
                "bool": "true or false",
                "activation": "one of " + ", ".join(ACTIVATIONS),
                "loss": "one of " + ", ".join(LOSSES),
            }[kind]
            hint = _suggest(v, ACTIVATIONS if kind == "activation" else LOSSES) if isinstance(v, str) else ""
            raise ExperimentError(f"{field}: expected {allowed}, got {v!r}{hint}")
    if kind != "pos_float":
        return value
    return [float(v) for v in value] if isinstance(value, list) else float(value)


def validate(data: Mapping[str, Any]) -> Experiment:
    """An `Experiment` from a parsed TOML document, or an ExperimentError naming the field."""
    _unknown("", data, TOP)
    name = data.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ExperimentError(f"name: expected letters, digits, '-' and '_' only, got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ExperimentError(f"description: expected a string, got {description!r}")
    threshold = data.get("threshold", 1e-3)
    _check("threshold", threshold, "pos_float")
    save = data.get("save_networks", False)
    _check("save_networks", save, "bool")
    for section in ("task", "model", "train"):
        if section in data and not isinstance(data[section], dict):
            raise ExperimentError(
                f"{section}: expected a [{section}] section (a table), got {data[section]!r}"
            )

    task = dict(data.get("task", {}))
    kind = task.get("kind")
    if kind not in TASKS:
        hint = _suggest(str(kind), sorted(TASKS))
        raise ExperimentError(f"task.kind: expected one of {', '.join(sorted(TASKS))}, got {kind!r}{hint}")
    fields = set(inspect.signature(TASKS[kind]).parameters) | TASK_COMMON
    _unknown("task.", task, fields)
    task.setdefault("seed", 0)
    task.setdefault("test_fraction", 0.0)
    if not isinstance(task["seed"], int) or isinstance(task["seed"], bool) or task["seed"] < 0:
        raise ExperimentError(f"task.seed: expected an int >= 0, got {task['seed']!r}")
    tf = task["test_fraction"]
    if not isinstance(tf, int | float) or isinstance(tf, bool) or not 0 <= tf < 1:
        raise ExperimentError(f"task.test_fraction: expected a number in [0, 1), got {tf!r}")

    model = {**MODEL_DEFAULTS, **data.get("model", {})}
    _unknown("model.", model, set(MODEL_DEFAULTS))
    for key, kind_ in (
        ("depth", "pos_int"),
        ("width", "pos_int"),
        ("hidden", "activation"),
        ("output", "activation"),
        ("bias", "bool"),
    ):
        model[key] = _check(f"model.{key}", model[key], kind_)

    train = {**TRAIN_DEFAULTS, **data.get("train", {})}
    _unknown("train.", train, set(TRAIN_DEFAULTS))
    for key, kind_ in (
        ("lr", "pos_float"),
        ("epochs", "pos_int"),
        ("batch_size", "pos_int"),
        ("loss", "loss"),
    ):
        train[key] = _check(f"train.{key}", train[key], kind_)
    seeds = train["seeds"]
    if isinstance(seeds, list):
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise ExperimentError(f"train.seeds: expected a count >= 1 or a list of ints >= 0, got {seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise ExperimentError(f"train.seeds: a seed is listed twice in {seeds!r}")
    elif not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ExperimentError(f"train.seeds: expected a count >= 1 or a list of ints >= 0, got {seeds!r}")
    return Experiment(name, description, float(threshold), save, task, model, train)


def parse_override(text: str) -> tuple[str, str, Any]:
    """``section.key=value`` -> (section, key, value); the value is read as TOML (``[2, 4]``,
    ``0.1``, ``true``, ``"relu"``), and a bare word stays a string (``model.hidden=relu``)."""
    match = re.match(r"^\s*([A-Za-z_]+)\.([A-Za-z_]+)\s*=(.*)$", text)
    if not match:
        raise ExperimentError(f"--set: expected section.key=value, got {text!r}")
    section, key, raw = match.group(1), match.group(2), match.group(3).strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, key, value


def load(path: str | Path, overrides: Sequence[str] = ()) -> Experiment:
    """Read, override (``--set section.key=value``) and validate an experiment file."""
    p = Path(path)
    if not p.is_file():
        raise ExperimentError(f"experiment: no such file: {p}")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ExperimentError(f"experiment: {p.name} is not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ExperimentError(f"experiment: {p.name} is not a UTF-8 text file") from None
    for text in overrides:
        section, key, value = parse_override(text)
        if section not in ("task", "model", "train"):
            raise ExperimentError(f"--set {text}: section must be task, model or train, got '{section}'")
        data.setdefault(section, {})[key] = value
    return validate(data)
