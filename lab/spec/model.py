"""The experiment spec's dataclasses: what to run, over which search space, on which resources; each checks
its own fields when made (`ExperimentSpec(**fields)` raises ValueError on a bad one)."""
from __future__ import annotations

import copy
import dataclasses
import importlib.util
import sys
from dataclasses import dataclass, field
from typing import Any

from lab.errors import quoted
from lab.spec.safety import check_name, credential_problem
from lab.workload.config import suggest

DISTRIBUTIONS = ("grid", "choice", "uniform", "loguniform", "randint")


SCHEDULERS = ("fifo", "asha", "hyperband", "pbt")


SEARCHERS = ("random", "optuna", "hyperopt")


STORAGE_SCHEMES = ("file", "s3", "gs", "hdfs", "abfs", "abfss")  # pyarrow filesystems


SEARCHER_PACKAGES = {"optuna": "optuna", "hyperopt": "hyperopt"}  # searcher -> the module it needs


@dataclass(frozen=True)
class Scheduler:
    """Tune trial scheduler: `fifo` runs every trial to its stop; `asha` and `hyperband` stop the weak
    ones early; `pbt` (population based training) copies the best trials' checkpoints into the weakest
    and mutates their hyperparameters (the spec's search space) every `perturbation_interval` iterations."""

    type: str = "fifo"
    max_t: int = 100  # ASHA, HyperBand: the most iterations a trial may run
    grace_period: int = 1  # ASHA: iterations before a trial may be stopped
    reduction_factor: float = 2.0  # ASHA, HyperBand: the fraction 1/rf of trials promoted at each rung
    perturbation_interval: int = 4  # PBT: iterations between exploit/explore rounds
    quantile_fraction: float = 0.25  # PBT: the bottom fraction copies the top fraction
    resample_probability: float = 0.25  # PBT: chance of resampling a value instead of perturbing it
    mutations: tuple[str, ...] = ()  # PBT: the search keys it mutates (default: all of them)
    synchronous: bool = False  # PBT: perturb all trials at once (waits for the slowest)

    def check(self) -> None:
        if self.type not in SCHEDULERS:
            raise ValueError(f"scheduler type must be one of {', '.join(SCHEDULERS)}, got {quoted(self.type)}"
                             f"{_did_you_mean(self.type, SCHEDULERS)}")
        if self.max_t < 1 or self.grace_period < 1 or self.reduction_factor <= 1:
            raise ValueError("scheduler needs max_t >= 1, grace_period >= 1 and reduction_factor > 1")
        if self.type == "asha" and self.grace_period > self.max_t:
            raise ValueError(f"asha needs grace_period <= max_t, got {self.grace_period} > {self.max_t}")
        if self.perturbation_interval < 1:
            raise ValueError(f"perturbation_interval must be >= 1, got {self.perturbation_interval}")
        if not 0 < self.quantile_fraction <= 0.5:
            raise ValueError(f"quantile_fraction must be in (0, 0.5], got {self.quantile_fraction}")
        if not 0 <= self.resample_probability <= 1:
            raise ValueError(f"resample_probability must be in [0, 1], got {self.resample_probability}")
        if self.type != "pbt" and (self.mutations or self.synchronous):
            raise ValueError(f"mutations and synchronous are PBT settings, not {self.type}'s")


@dataclass(frozen=True)
class Searcher:
    """How trials' values are drawn from the search space: `random` (Tune's variant generator: grid and
    random sampling), or a model-based `optuna` (TPE) or `hyperopt` (TPE) that learns from earlier trials."""

    type: str = "random"
    max_concurrent: int = 0  # run at most this many trials at once (0: as many as the resources allow)

    def check(self) -> None:
        if self.type not in SEARCHERS:
            raise ValueError(f"searcher type must be one of {', '.join(SEARCHERS)}, got {quoted(self.type)}"
                             f"{_did_you_mean(self.type, SEARCHERS)}")
        if self.max_concurrent < 0:
            raise ValueError(f"max_concurrent cannot be negative, got {self.max_concurrent}")
        module = SEARCHER_PACKAGES.get(self.type)
        if module and not installed(module):
            raise ValueError(f"searcher '{self.type}' needs the {module} package: pip install 'agent-lab[search]'")


@dataclass(frozen=True)
class Resources:
    """Resources of one trial: CPUs and (fractional) GPUs."""

    cpu: float = 1.0
    gpu: float = 0.0

    def check(self) -> None:
        if self.cpu <= 0 and self.gpu <= 0:
            raise ValueError("resources need cpu > 0 or gpu > 0")
        if self.cpu < 0 or self.gpu < 0:
            raise ValueError("resources cannot be negative")
        if self.gpu > 1 and not float(self.gpu).is_integer():
            raise ValueError(f"a trial asking for more than one GPU needs a whole number, got {self.gpu}")


@dataclass(frozen=True)
class Reference:
    """The score a preset must reach (checked by the benchmarks and printed by `lab best`)."""

    metric: str = ""
    score: float = 0.0


@dataclass(frozen=True)
class ExperimentSpec:
    """One Ray Tune experiment of a workload."""

    name: str
    workload: str
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # fixed workload parameters
    search: dict[str, Any] = field(default_factory=dict)  # param -> {grid|choice|uniform|loguniform|randint: ...}
    metric: str = ""  # the metric that ranks trials, e.g. eval/average_return
    mode: str = "max"  # max or min
    num_samples: int = 1  # samples of the search space (times every grid point)
    scheduler: Scheduler = Scheduler()
    searcher: Searcher = Searcher()
    stop: dict[str, float] = field(default_factory=dict)  # e.g. {training_iteration: 20, eval/average_return: 475}
    resources: Resources = Resources()
    seed: int = 0
    max_failures: int = 0  # retries of a failed trial, from its last checkpoint
    checkpoint_every: int = 1  # iterations between checkpoints (0: only at the end)
    time_budget_s: float = 0.0  # stop the whole experiment after this many seconds (0: none)
    reference: Reference = Reference()
    storage: str = ""  # where Tune writes: a folder or s3://, gs://, file:// URI (default: $LAB_STORAGE)
    mlflow: str = ""  # an MLflow tracking URI to log the trials to as well (default: $LAB_MLFLOW_URI)

    def check(self) -> None:
        check_name(self.name)
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {quoted(self.mode)}")
        if self.num_samples < 1:
            raise ValueError("num_samples must be at least 1")
        if self.max_failures < 0 or self.checkpoint_every < 0 or self.time_budget_s < 0:
            raise ValueError("max_failures, checkpoint_every and time_budget_s cannot be negative")
        if not self.metric:
            raise ValueError("metric is required (the metric that ranks trials)")
        for key, value in self.stop.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"stop criterion '{key}' must be a number, got {quoted(value)}")
        for key, dist in self.search.items():
            check_distribution(key, dist)
        overlap = set(self.search) & set(self.params)
        if overlap:
            raise ValueError(f"'{sorted(overlap)[0]}' is both in params and in search")
        self._check_search_strategy()

    def _check_search_strategy(self) -> None:
        """The scheduler and searcher against the search space (each is checked on its own already)."""
        grids = [key for key, dist in self.search.items() if "grid" in dist]
        if self.searcher.type != "random" and grids:
            raise ValueError(f"searcher '{self.searcher.type}' cannot take grid values ('{grids[0]}'): "
                             "use choice, or searcher type random")
        if self.scheduler.type == "pbt":
            if not self.search:
                raise ValueError("scheduler pbt needs a search space to mutate (search: {param: {...}})")
            unknown = [key for key in self.scheduler.mutations if key not in self.search]
            if unknown:
                raise ValueError(f"pbt mutation '{unknown[0]}' is not in the search space{suggest(unknown[0], self.search)}")
            if self.searcher.max_concurrent == 1:
                raise ValueError("scheduler pbt needs trials side by side: max_concurrent 1 leaves it nothing to compare")
        scheme = self.storage.split("://", 1)[0] if "://" in self.storage else "file"
        if scheme not in STORAGE_SCHEMES:
            raise ValueError(f"storage scheme '{scheme}://' is not supported (use a path or one of "
                             f"{', '.join(s + '://' for s in STORAGE_SCHEMES)})")
        if credential_problem(self.storage) or "@" in self.storage:
            raise ValueError("storage must not carry credentials (they would be recorded): "
                             "set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment")
        if credential_problem(self.mlflow):
            raise ValueError(f"mlflow must not carry credentials ({credential_problem(self.mlflow)}): "
                             "set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD in the environment")
        if self.mlflow and not installed("mlflow"):
            raise ValueError("mlflow needs the mlflow package: pip install 'agent-lab[mlflow]'")

    @property
    def trial_params(self) -> dict[str, Any]:
        """The fixed params with the spec's seed filled in (every workload Config has a seed)."""
        return {"seed": self.seed, **self.params}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Source:
    """Where a spec came from, and whether it may choose the services that receive credentials (storage,
    MLflow): the trust decision reads `trusted`, set explicitly by whoever made the source."""

    kind: str  # preset | file | dict | recorded | command
    label: str  # how messages name it: "preset 'svc-digits'", "spec.yaml", "experiment 3's recorded spec"
    trusted: bool

    @classmethod
    def preset(cls, name: str) -> Source:
        return cls("preset", f"preset '{name}'", trusted=True)  # shipped with the lab

    @classmethod
    def file(cls, path: str, trusted: bool) -> Source:
        return cls("file", path, trusted)

    @classmethod
    def mapping(cls, label: str = "the spec dict", trusted: bool = True) -> Source:
        return cls("dict", label, trusted)  # a dict in the caller's own code is the caller's own

    @classmethod
    def recorded(cls, experiment_id: int, trusted: bool) -> Source:
        return cls("recorded", f"experiment {experiment_id}'s recorded spec", trusted)

    @classmethod
    def command(cls, name: str) -> Source:
        return cls("command", name, trusted=True)  # a spec a lab command builds itself (`lab baselines`)


@dataclass(frozen=True)
class Distribution:
    """One searched parameter, typed: `kind` (one of DISTRIBUTIONS) and `args`, its values (grid, choice) or
    its (low, high) bounds; a randint's whole-number bounds are ints (YAML reads 1e1 as 10.0)."""

    kind: str
    args: tuple

    @classmethod
    def parse(cls, key: str, raw: Any) -> Distribution:
        """ValueError naming `key` when `raw` is not `{kind: args}` of a known distribution."""
        check_distribution(key, raw)
        (kind, args), = raw.items()
        if kind == "randint" and all(isinstance(b, float) and b.is_integer() for b in args):
            args = [int(b) for b in args]
        return cls(kind, tuple(args))

    @property
    def candidates(self) -> tuple:
        """The values a check tries: every listed value, or the two bounds of a range."""
        return self.args

    def to_raw(self) -> dict[str, list]:
        return {self.kind: list(self.args)}


@dataclass(frozen=True)
class RunnableSpec(ExperimentSpec):
    """An ExperimentSpec that passed every check of the one way in (`lab.spec.runnable.runnable`), with its
    source and its search space typed; `to_dict` is the ExperimentSpec's (what the registry records)."""

    source: Source = field(default=Source("dict", "the spec", True), compare=False, repr=False)
    distributions: dict[str, Distribution] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(ExperimentSpec)}


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else copy.deepcopy(value)


def check_distribution(key: str, dist: Any) -> None:
    if not isinstance(dist, dict) or len(dist) != 1:
        raise ValueError(f"search '{key}' must be one of {{{'|'.join(DISTRIBUTIONS)}: ...}}, got {quoted(dist)}")
    (kind, args), = dist.items()
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"search '{key}' has unknown distribution '{kind}'{suggest(kind, DISTRIBUTIONS)}")
    if kind in ("grid", "choice"):
        if not isinstance(args, list) or not args:
            raise ValueError(f"search '{key}': {kind} needs a non-empty list of values")
    else:
        if not (isinstance(args, list) and len(args) == 2 and all(_is_number(a) for a in args)):
            raise ValueError(f"search '{key}': {kind} needs [low, high], got {quoted(args)}")
        low, high = args
        if not low < high or (kind == "loguniform" and low <= 0):
            raise ValueError(f"search '{key}': {kind} needs 0 < low < high for loguniform, low < high otherwise")


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (a None in sys.modules blocks it)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def _did_you_mean(word: str, choices) -> str:
    """' (did you mean ...?)' when a close choice exists, else '' (the caller lists the choices)."""
    hint = suggest(word, choices)
    return hint if hint.startswith(" (did you mean") else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
