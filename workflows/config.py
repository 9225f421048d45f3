"""The settings of one spray run, from defaults, a TOML file and command-line flags.

Precedence: flags > ``--config`` TOML file > defaults. Keys are the option names (``-`` may
stand for ``_``): run-level keys (classes, model, data, store, ...), the compute keys of
:class:`workflows.settings.ComputeSettings` (composite, device, batch_size, ...), the analysis
keys of :class:`workflows.settings.AnalysisSettings` (grid, k, seed, ...), and the input
pipeline as a ``[preprocessing]`` table (preset, input_size, channels, mean, std, ...) or its
flat keys. Every value is checked before any work starts, with the same rule for a flag and a
TOML key; the resolved values are written to the store with the results.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from spray.preprocess import PreprocessingError, check_request
from workflows.settings import (
    ANALYSIS_FIELDS,
    COMPUTE_FIELDS,
    AnalysisSettings,
    ComputeSettings,
    ConfigError,
    as_tuple,
    check_bool,
    check_int,
    check_text,
    split_values,
)

PREPROCESSING_FLAGS = frozenset(
    {"input_size", "resize", "resize_to", "pad_mode", "channels", "mean", "std", "value_range"}
)
"""Steps of the input pipeline that may also be given as flags or flat TOML keys."""


@dataclass(frozen=True)
class RunConfig:
    """Everything ``spray run`` needs; ``spray audit`` and the step commands reuse it."""

    classes: tuple[str, ...] = ()
    """Class names to analyse (duplicates dropped); ``("all",)`` means every class of the data set."""
    model: str | None = None
    """``package.module:factory`` or ``path/file.py:factory``; None is the built-in demo model."""
    weights: str | None = None
    """A ``state_dict`` file, loaded with ``torch.load(weights_only=True)``."""
    class_names: str | None = None
    """A file with one class name per output of the model, in output order (default: the data
    set's usual label order, ``ImageSource.class_order``)."""
    data: str = "demo"
    """``demo``, ``fashion-mnist``, an image folder or a Pascal VOC root."""
    split: str | None = "test"
    """The split analysed; the thesis used every VOC2007 *test* image of a class (L2100)."""
    store: str = "spray-store.zarr"
    reports: str = "spray-reports"
    scheduler: str | None = None
    """Address of an existing Dask scheduler (``tcp://HOST:PORT``); None starts a local one."""
    workers: int | None = None
    """Local worker processes (default: one per core, or per GPU)."""
    force: bool = False
    """Recompute the relevance maps (of these settings only) and the analyses even where stored."""
    wait: bool = False
    """Wait for another run writing the same classes instead of failing."""
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    """The input pipeline asked for: a preset and/or steps (``spray.preprocess``); unset steps
    come from the model's own pipeline (the demo's) or the ``thesis`` preset."""
    compute: ComputeSettings = field(default_factory=ComputeSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)

    def __post_init__(self) -> None:
        classes = as_tuple("classes", self.classes)
        for name in classes:
            check_text("class", name)
        object.__setattr__(self, "classes", tuple(dict.fromkeys(classes)))  # --class horse --class horse
        for name in ("model", "weights", "class_names", "split", "scheduler"):
            check_text(name, getattr(self, name), optional=True)
        for name in ("data", "store", "reports"):
            check_text(name, getattr(self, name))
        check_int("workers", self.workers, low=1, optional=True)
        check_bool("force", self.force)
        check_bool("wait", self.wait)
        try:
            object.__setattr__(self, "preprocessing", check_request(self.preprocessing))
        except PreprocessingError as error:
            raise ConfigError(str(error)) from None
        if self.analysis.grid not in self.compute.grids:
            object.__setattr__(self, "compute", self.compute.replace(grids=(*self.compute.grids, self.analysis.grid)))

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied, each routed to its stage by name (None: "not given").

        ``preprocessing`` may be a preset name or a request mapping (merged into the current one).
        """
        given = {key.replace("-", "_"): value for key, value in changes.items() if value is not None}
        compute, given = split_values(given, COMPUTE_FIELDS)
        analysis, given = split_values(given, ANALYSIS_FIELDS)
        steps, given = split_values(given, PREPROCESSING_FLAGS)
        request = dict(self.preprocessing)
        if "preprocessing" in given:
            value = given.pop("preprocessing")
            request.update({"preset": value} if isinstance(value, str) else dict(value))
        request.update(steps)
        unknown = sorted(set(given) - RUN_FIELDS)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}")
        return dataclasses.replace(
            self,
            **given,
            preprocessing=request,
            compute=self.compute.replace(**compute) if compute else self.compute,
            analysis=self.analysis.replace(**analysis) if analysis else self.analysis,
        )

    def model_spec(self, class_order: list[str] | None = None) -> dict[str, Any]:
        """The ``spray.models.load_model`` arguments: a user model's outputs are named by
        ``--class-names``, else by ``class_order`` (the data set's usual label order)."""
        given = {
            "model": self.model,
            "weights": self.weights,
            "preprocessing": dict(self.preprocessing) or None,
            "classes": self.class_names or (class_order if self.model is not None else None),
        }
        return {name: value for name, value in given.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        """Every setting, flat, for provenance and the reports' parameter tables."""
        run = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("compute", "analysis")}
        run["preprocessing"] = dict(self.preprocessing)
        return run | dataclasses.asdict(self.compute) | dataclasses.asdict(self.analysis)


RUN_FIELDS = frozenset(f.name for f in fields(RunConfig)) - {"compute", "analysis"}
KNOWN_KEYS = RUN_FIELDS | COMPUTE_FIELDS | ANALYSIS_FIELDS | PREPROCESSING_FLAGS


def load_config(path: str | Path, section: str | None = None) -> dict[str, Any]:
    """Read the run settings from a TOML file (optionally from one ``[section]`` of it).

    Keys are setting names (``-`` may stand for ``_``); a ``[preprocessing]`` table (inside
    the section) holds the input pipeline. An unknown key is an error naming the key and the
    file, never silently ignored; values are checked when the config is built.
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; pass an existing TOML file to --config") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path} is not valid TOML ({error}); fix the file") from None
    if section is not None:
        document = document.get(section, {})
    values: dict[str, Any] = {}
    for raw_key, value in document.items():
        key = raw_key.replace("-", "_")
        if isinstance(value, dict) and key != "preprocessing":
            continue  # another section; its owner reads it
        if key not in KNOWN_KEYS:
            raise ConfigError(
                f"unknown key {raw_key!r} in config file {path}; known keys: {', '.join(sorted(KNOWN_KEYS))}"
            )
        values[key] = _relative_to(path.resolve().parent, key, value)
    return values


PATH_KEYS = frozenset({"model", "weights", "class_names", "data", "store", "reports"})
"""Settings that name files or folders: relative ones in a config file are read from the file's
folder (as `spray schedule` runs it), never from wherever the command was started."""


def _relative_to(folder: Path, key: str, value: Any) -> Any:
    """``value`` with a relative path made relative to ``folder`` (the config file's)."""
    if key not in PATH_KEYS or not isinstance(value, str) or "://" in value:
        return value
    if key == "data" and value in ("demo", "fashion-mnist"):
        return value
    if key == "model":  # only a file factory (path/file.py:fn) is a path; pkg.mod:fn is not
        location, sep, factory = value.rpartition(":")
        return f"{_relative_to(folder, 'weights', location)}{sep}{factory}" if location.endswith(".py") else value
    return value if Path(value).expanduser().is_absolute() else str(folder / value)


def resolve_config(config_file: str | Path | None = None, **flags: Any) -> RunConfig:
    """Defaults, then the config file, then the flags that were given (not None)."""
    config = RunConfig()
    if config_file is not None:
        try:
            config = config.replace(**load_config(config_file))
        except ConfigError as error:
            raise ConfigError(f"config file {config_file}: {error}") from None
    return config.replace(**flags)


__all__ = ["KNOWN_KEYS", "ConfigError", "RunConfig", "load_config", "resolve_config"]
