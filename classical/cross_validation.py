"""A scikit-learn Pipeline scored by k-fold cross-validation, then on a held-out test split.

One `step()` is one full `cross_validate` run, so a Tune sweep of this workload is a grid or random
search where every configuration is a trial (what GridSearchCV does, but tracked and distributed).
Hyperparameters use scikit-learn's `step__param` names, e.g. `svc__C` for `make_pipeline(StandardScaler(), SVC())`.

Classifiers also get test precision / recall / F1 (macro over classes for multiclass) and ROC AUC
(one-vs-rest, macro, for multiclass; only when the model has predict_proba or decision_function),
and, in TensorBoard, the confusion matrix and the ROC and precision-recall curves of the test split.
`reduce` puts a dimensionality reducer (PCA, incremental PCA, kernel PCA, LLE) in front of the estimator.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from classical import datasets, models
from lab.errors import DataError, LabError, SpecError
from lab.workload import Workload, build_dataclass

DEFAULT_SCORING = {"classification": "accuracy", "regression": "neg_root_mean_squared_error"}


class CrossValidatedPipeline(Workload):
    name = "sklearn_cv"
    test_params = {"dataset": "iris", "model": "logistic", "cv_folds": 3}
    max_curves = 3  # multiclass curves: the micro-average and this many worst classes (by ROC AUC)

    @dataclass
    class Config:
        dataset: str = "digits"  # a name of classical.datasets.DATASETS, or a path to a .csv file
        target: str = ""  # the label column of a CSV file
        data_sha256: str = ""  # a CSV file's content hash, recorded when the spec loads (checked in setup)
        subset: int = 0  # keep this many rows (stratified), 0 for all
        model: str = "svc"  # see classical.models
        cv_folds: int = 5  # k of the (stratified, for classification) k-fold CV
        test_size: float = 0.2  # fraction held out for the final test score
        scoring: str = ""  # a scikit-learn scorer name; default: accuracy or neg RMSE
        reduce: Literal["none", "pca", "incremental_pca", "kernel_pca", "lle"] = "none"  # a reducer before the estimator
        n_components: int | float = 0.95  # of `reduce`: a count, or (pca only) the fraction of variance to keep
        refit: bool = True  # refit on the whole training split: test metrics, figures, a saved pipeline (GridSearchCV's refit)
        log_figures: bool = True  # confusion matrix, ROC and PR curves to TensorBoard (matplotlib: ~1 s a trial)
        # Chapter 2's preprocessing of a DataFrame (CSV files, autompg); see classical/transformers.py
        ratios: list[str] = field(default_factory=list)  # added 'a/b' columns, e.g. total_rooms/households
        log_columns: list[str] = field(default_factory=list)  # log1p before scaling (heavy-tailed columns)
        cluster_columns: list[str] = field(default_factory=list)  # RBF similarity to k-means centres of these
        n_clusters: int = 10  # of cluster_columns
        cluster_gamma: float = 1.0  # of cluster_columns (on standardized columns)
        stratify_column: str = ""  # stratify the test split on this column (numbers: 5 quantile bins)
        seed: int = 0
        estimator_params: dict[str, Any] = field(default_factory=dict)  # `step__param` values

        def check(self) -> None:
            if self.cv_folds < 2:
                raise ValueError("cv_folds must be at least 2")
            if self.n_components <= 0:
                raise ValueError(f"n_components must be positive, got {self.n_components}")
            if self.reduce not in ("none", "pca") and not float(self.n_components).is_integer():
                raise ValueError(f"n_components must be a whole number for reduce '{self.reduce}' "
                                 f"(a fraction of variance, like {self.n_components}, works only with pca)")
            if not 0.0 < self.test_size < 1.0:
                raise ValueError("test_size must be between 0 and 1")
            if self.subset < 0:
                raise ValueError("subset cannot be negative")
            if self.n_clusters < 2:
                raise ValueError("n_clusters must be at least 2")

    @classmethod
    def resolve_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        return datasets.resolve_data_file(params)

    @classmethod
    def searchable_params(cls, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The pipeline's `step__param` names (and defaults) by step, for the model that `params` name."""
        config = build_dataclass(cls.Config, {k: v for k, v in params.items()
                                              if k in ("model", "reduce", "n_components")}, f"workload '{cls.name}'")
        pipeline = build_pipeline(config.model, config.reduce, config.n_components)
        groups: dict[str, dict[str, Any]] = {}
        for name, value in pipeline.get_params(deep=True).items():
            if "__" in name and "__" not in name.split("__", 1)[1]:  # step__param, not step__sub__param
                groups.setdefault(name.split("__", 1)[0], {})[name] = value
        return groups

    @classmethod
    def make_config(cls, params: dict[str, Any]) -> Any:
        """Own fields as usual; any other key must be a parameter of the model's pipeline."""
        own = {f.name for f in dataclasses.fields(cls.Config)} - {"estimator_params"}
        estimator_params = {k: v for k, v in params.items() if k not in own}
        owner = f"workload '{cls.name}'"
        problems = []
        try:
            config = build_dataclass(cls.Config, {k: v for k, v in params.items() if k in own}, owner)
        except SpecError as exc:  # still check the step__param names against the model, if it is valid
            problems, config = str(exc).splitlines(), None
            try:
                config = build_dataclass(cls.Config, {k: params[k] for k in ("model", "reduce", "n_components")
                                                      if k in params}, owner)
            except SpecError:
                raise SpecError("\n".join(problems)) from None
        pipeline = build_pipeline(config.model, config.reduce, config.n_components)
        problems += unknown_step_params(pipeline, config.model, estimator_params, sorted(own))
        known = pipeline.get_params()
        for key, value in estimator_params.items():
            if key in known:
                try:
                    _check_step_param(key, value)
                except SpecError as exc:
                    problems.append(str(exc))
        if problems:
            raise SpecError("\n".join(problems))
        _check_estimator_params(pipeline, estimator_params)
        frame_options = config.ratios or config.log_columns or config.cluster_columns or config.stratify_column
        if config.dataset.endswith(".csv") or config.dataset not in datasets.DATASETS or frame_options:
            try:  # a user's file (or a typo): check it now, not in every trial
                data = datasets.load(config.dataset, target=config.target)
            except DataError as exc:
                raise SpecError(str(exc)) from None
            if frame_options:
                _check_frame_options(config, data.X)
        return dataclasses.replace(config, estimator_params=estimator_params)

    @classmethod
    def metric_names(cls, config) -> frozenset[str]:
        """Test metrics only with `refit`; ROC AUC where the model scores (not hard voting) and every class is tested."""
        task = datasets.task_of(config.dataset, config.target)
        scoring = config.scoring or DEFAULT_SCORING[task]
        names = {f"cv/{scoring}", f"cv/{scoring}_std", "charts/fit_seconds", "charts/wall_seconds", "done"}
        if config.refit:
            names.add(f"test/{scoring}")
            names |= ({"test/precision", "test/recall", "test/f1", "test/roc_auc"} if task == "classification"
                      else {"test/r2"})
            if config.reduce != "none":
                names.add("charts/n_components")
            if config.reduce in ("pca", "incremental_pca"):
                names.add("charts/explained_variance")
        return frozenset(names)

    def setup(self) -> None:
        from sklearn.model_selection import train_test_split

        c = self.config
        data = datasets.load(c.dataset, target=c.target, sha256=c.data_sha256, subset=c.subset, seed=c.seed)
        self.task = data.task
        self.scoring = c.scoring or DEFAULT_SCORING[data.task]
        stratify = data.y if data.task == "classification" else None
        if c.stratify_column:  # the book's income categories: a representative test set
            stratify = strata(data.X[c.stratify_column])
        self.X_train, self.X_test, self.y_train, self.y_test = train_test_split(
            data.X, data.y, test_size=c.test_size, random_state=c.seed, stratify=stratify
        )
        self.pipeline = build_pipeline(c.model, c.reduce, c.n_components).set_params(**c.estimator_params)
        if hasattr(data.X, "columns"):  # a DataFrame: mixed column types, missing values
            from classical._transformers import preprocessor

            self.pipeline.steps.insert(0, ("preprocess", preprocessor(
                data.X, c.ratios, c.log_columns, c.cluster_columns, c.n_clusters, c.cluster_gamma, c.seed)))
        _seed_estimators(self.pipeline, c.seed)
        self.results: dict[str, float] = {}

    def cv_splitter(self):
        from sklearn.model_selection import KFold, StratifiedKFold

        splitter = StratifiedKFold if self.task == "classification" else KFold
        return splitter(n_splits=self.config.cv_folds, shuffle=True, random_state=self.config.seed)

    def step(self) -> dict[str, Any]:
        from sklearn.metrics import get_scorer
        from sklearn.model_selection import cross_validate

        start = time.perf_counter()
        cv = cross_validate(self.pipeline, self.X_train, self.y_train, cv=self.cv_splitter(), scoring=self.scoring)
        scores = cv["test_score"]
        self.results = {
            f"cv/{self.scoring}": float(np.mean(scores)),
            f"cv/{self.scoring}_std": float(np.std(scores)),
            "charts/fit_seconds": float(np.mean(cv["fit_time"])),
        }
        if not self.config.refit:  # CV scores only (a large sweep; refit the best one later)
            self.results["charts/wall_seconds"] = time.perf_counter() - start
            return {**self.results, "done": True}
        self.pipeline.fit(self.X_train, self.y_train)
        self.results[f"test/{self.scoring}"] = float(get_scorer(self.scoring)(self.pipeline, self.X_test, self.y_test))
        self.results.update(self._reducer_charts())
        if self.task == "classification":
            extra = self._classification_metrics()
        else:
            from sklearn.metrics import r2_score

            extra = {"test/r2": float(r2_score(self.y_test, self.pipeline.predict(self.X_test)))}
        for key, value in extra.items():  # `scoring: f1` already gave test/f1: keep the scorer's
            self.results.setdefault(key, value)
        self.results["charts/wall_seconds"] = time.perf_counter() - start
        return {**self.results, "done": True}

    def _reducer_charts(self) -> dict[str, float]:
        """The share of variance the (PCA-like) reducer kept, and how many components it kept."""
        if self.config.reduce == "none":
            return {}
        reducer = self.pipeline.steps[-2][1]
        charts = {"charts/n_components": float(getattr(reducer, "n_components_", self.config.n_components))}
        if hasattr(reducer, "explained_variance_ratio_"):
            charts["charts/explained_variance"] = float(np.sum(reducer.explained_variance_ratio_))
        return charts

    def _scores(self) -> np.ndarray | None:
        """Test-split confidence scores: probabilities, else decision values; column k is classes_[k]."""
        for method in ("predict_proba", "decision_function"):
            if hasattr(self.pipeline, method):
                scores = np.asarray(getattr(self.pipeline, method)(self.X_test))
                if scores.ndim == 2 and scores.shape[1] == 2:
                    scores = scores[:, 1]  # binary: the positive class, classes_[1]
                return scores
        return None  # e.g. hard voting

    def _classification_metrics(self) -> dict[str, float]:
        """Precision, recall and F1 (multiclass: macro), ROC AUC (multiclass: one-vs-rest, macro).

        Binary: of the positive class classes_[1], the label that sorts last (1 of 0/1, 'yes' of no/yes).
        """
        from sklearn.metrics import precision_recall_fscore_support, roc_auc_score
        from sklearn.preprocessing import label_binarize

        classes = self.pipeline.classes_
        binary = len(classes) == 2
        y_pred = self.pipeline.predict(self.X_test)
        precision, recall, f1, _ = precision_recall_fscore_support(
            self.y_test, y_pred, average="binary" if binary else "macro",
            pos_label=classes[1] if binary else 1, zero_division=0)
        metrics = {"test/precision": float(precision), "test/recall": float(recall), "test/f1": float(f1)}
        scores = self._scores()
        per_class_auc = None
        if scores is not None:
            truth = label_binarize(self.y_test, classes=classes)  # (n, 1) when binary, else (n, k)
            try:
                if binary:
                    metrics["test/roc_auc"] = float(roc_auc_score(truth[:, 0], scores))
                else:  # one-vs-rest, macro; any per-class scores (not only probabilities) rank correctly
                    per_class_auc = roc_auc_score(truth, scores, average=None)
                    metrics["test/roc_auc"] = float(np.mean(per_class_auc))
            except ValueError:  # a class missing from the test split: no AUC
                pass
        if self.context.logger is not None and self.config.log_figures:
            self._log_figures(scores, per_class_auc)
        return metrics

    def _log_figures(self, scores, per_class_auc) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay
        from sklearn.preprocessing import label_binarize

        display = ConfusionMatrixDisplay.from_estimator(self.pipeline, self.X_test, self.y_test, colorbar=False)
        self.context.logger.figure("test/confusion_matrix", display.figure_)
        if scores is None:
            return
        classes = self.pipeline.classes_
        truth = label_binarize(self.y_test, classes=classes)
        if len(classes) == 2:
            curves = [(f"class {classes[1]}", truth[:, 0], scores)]
        else:  # the micro-average (every class's decisions pooled), then the classes the model ranks worst
            curves = [("micro-average", truth.ravel(), scores.ravel())]
            if per_class_auc is not None:
                worst = np.argsort(per_class_auc)[: self.max_curves]
                curves += [(f"class {classes[k]} vs rest", truth[:, k], scores[:, k]) for k in worst]
        for tag, display_cls, axes in (("test/roc_curve", RocCurveDisplay, ("False positive rate", "True positive rate")),
                                       ("test/pr_curve", PrecisionRecallDisplay, ("Recall", "Precision"))):
            figure, ax = plt.subplots(figsize=(5, 4))
            for name, y_true, y_score in curves:
                display_cls.from_predictions(y_true, y_score, pos_label=1, name=name, ax=ax)
            ax.set_xlabel(axes[0])
            ax.set_ylabel(axes[1])  # not "(Positive label: 1)": each curve names its positive class
            ax.set_title("test split")
            self.context.logger.figure(tag, figure)

    def save(self, checkpoint_dir: str) -> None:
        import skops.io

        with open(os.path.join(checkpoint_dir, "results.json"), "w") as handle:
            json.dump(self.results, handle)
        if hasattr(self.pipeline, "n_features_in_") or _is_fitted(self.pipeline):
            skops.io.dump(self.pipeline, os.path.join(checkpoint_dir, "pipeline.skops"))

    def restore(self, checkpoint_dir: str) -> None:
        with open(os.path.join(checkpoint_dir, "results.json")) as handle:
            self.results = json.load(handle)
        path = os.path.join(checkpoint_dir, "pipeline.skops")
        if os.path.exists(path):
            self.pipeline = load_pipeline(path)

    @classmethod
    def load_exported(cls, path: str):
        return load_pipeline(path)

    def export(self, out_dir: str) -> str:
        c = self.config
        return export_pipeline(self.pipeline, out_dir, {"workload": self.name, "dataset": c.dataset, "target": c.target,
                                                         "model": c.model, "task": self.task, "metrics": self.results},
                               self.X_train)


def strata(column):
    """Labels to stratify on: a categorical column as is, a numeric one cut into 5 quantile bins."""
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(column) or column.nunique() <= 10:
        return column.astype(str).fillna("missing").to_numpy()
    return pd.qcut(column.rank(method="first"), 5, labels=False).fillna(-1).to_numpy()


def _check_frame_options(config, X) -> None:
    """SpecError when ratio/log/cluster/stratify columns are asked of data without such columns."""
    from classical._transformers import check_columns

    if not hasattr(X, "columns"):
        raise SpecError(f"ratios, log_columns, cluster_columns and stratify_column need named columns "
                        f"(a CSV file or autompg), but '{config.dataset}' is an array data set")
    try:
        check_columns(X, config.ratios, config.log_columns, config.cluster_columns)
    except ValueError as exc:
        raise SpecError(f"{config.dataset}: {exc}") from None
    if config.stratify_column and config.stratify_column not in X.columns:
        from lab.workload import suggest

        raise SpecError(f"{config.dataset}: no column '{config.stratify_column}' to stratify on"
                        f"{suggest(config.stratify_column, list(map(str, X.columns)))}")


def export_pipeline(pipeline, out_dir: str, about: dict[str, Any], X=None) -> str:
    """The fitted pipeline as `<out_dir>/pipeline.skops` (no pickle), described by `model.json` beside it:
    its input schema (from `X`, the data it was fitted on, else the pipeline's own record) and how to load
    it with skops alone (README, "Using an exported model without the lab").

    In the lab, `classical.cross_validation.load_pipeline(out_dir)` loads it, trusting only known types.
    """
    import skops.io

    if not _is_fitted(pipeline):
        raise LabError("the trial's pipeline is not fitted (was it run with refit=false?): nothing to export")
    path = os.path.join(out_dir, "pipeline.skops")
    skops.io.dump(pipeline, path)
    types = sorted(skops.io.get_untrusted_types(file=path))
    own = sorted({t.rsplit(".", 1)[0] for t in types if t.split(".", 1)[0] not in LIBRARY_PACKAGES})
    with open(os.path.join(out_dir, "model.json"), "w") as handle:
        json.dump({**about, "format": "skops", "file": "pipeline.skops", "input_schema": input_schema(pipeline, X),
                   "load": {
                       "requires": _versions("scikit-learn", "skops", "numpy", "scipy", "pandas"),
                       "trusted_types": types,  # what get_untrusted_types reports for this file: nothing else
                       "needs_modules": own,  # code of the lab the file refers to (import it to load the file)
                       "python": SKOPS_RECIPE,
                   },
                   "load_with_lab": "classical.cross_validation.load_pipeline"}, handle, indent=2, default=str)
    return path


LIBRARY_PACKAGES = ("sklearn", "numpy", "scipy", "pandas", "builtins", "collections")
SKOPS_RECIPE = """import json, skops.io
about = json.load(open("model.json"))
found = skops.io.get_untrusted_types(file="pipeline.skops")
unexpected = sorted(set(found) - set(about["load"]["trusted_types"]))
assert not unexpected, f"types the export did not list: {unexpected}"
pipeline = skops.io.load("pipeline.skops", trusted=found)"""


def input_schema(pipeline, X=None) -> dict[str, Any]:
    """The features a fitted pipeline takes: each column's name and dtype (a DataFrame), or their count and
    dtype (an array)."""
    import numpy as np

    if X is not None and hasattr(X, "columns"):
        return {"kind": "dataframe", "columns": [{"name": str(name), "dtype": str(dtype)}
                                                 for name, dtype in X.dtypes.items()]}
    names = getattr(pipeline, "feature_names_in_", None)
    if names is not None:
        return {"kind": "dataframe", "columns": [{"name": str(name), "dtype": None} for name in names]}
    count = getattr(pipeline, "n_features_in_", None) if X is None else np.shape(X)[1]
    dtype = str(np.asarray(X).dtype) if X is not None else None
    return {"kind": "array", "shape": [None, count], "dtype": dtype}


def _versions(*packages: str) -> dict[str, str]:
    """The installed version of each package (what the export was written with)."""
    from importlib import metadata

    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def build_pipeline(model: str, reduce: str = "none", n_components: int | float = 0.95):
    """The catalogue's pipeline for `model`, with the reducer (if any) just before the estimator."""
    pipeline = models.make(model)
    step = models.reducer(reduce, n_components)
    if step is not None:
        pipeline.steps.insert(len(pipeline.steps) - 1, step)
    return pipeline


def load_pipeline(path: str):
    """The fitted pipeline of a `.skops` file, or of the folder `lab export` wrote (its `pipeline.skops`).

    Only the types the lab's own pipelines need are trusted (`classical._skops_trust.TRUSTED_TYPES`, an
    exact list, no prefixes): a file naming anything else (a callable like `numpy.testing.runstring`
    would run code) is refused with a LabError, before anything in it is built.
    """
    import skops.io

    from classical._skops_trust import TRUSTED_TYPES

    if os.path.isdir(path):
        path = os.path.join(path, "pipeline.skops")
    if not os.path.isfile(path):
        raise LabError(f"no skops file at {path}: `lab export` writes <folder>/pipeline.skops")
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - not a zip, no schema, a newer protocol...
        raise LabError(f"{path} is not a readable skops file: {(str(exc).splitlines() or [type(exc).__name__])[0]}") from None
    unsafe = sorted(t for t in untrusted if t not in TRUSTED_TYPES)
    if unsafe:
        raise LabError(f"{path} names types the lab does not trust (a skops file may run code): "
                       f"{', '.join(_printable(t) for t in unsafe[:3])}{' ...' if len(unsafe) > 3 else ''}")
    return skops.io.load(path, trusted=list(untrusted))


def _printable(name: str) -> str:
    """A type name from a file, shortened and without control characters, for a one-line message."""
    return "".join(c if c.isprintable() else "?" for c in name)[:80]


def _is_fitted(pipeline) -> bool:
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(pipeline)
        return True
    except Exception:  # noqa: BLE001 - NotFittedError and friends
        return False


def _seed_estimators(pipeline, seed: int) -> None:
    """Set random_state on every step that has one and was not given one."""
    params = pipeline.get_params()
    pipeline.set_params(**{k: seed for k, v in params.items() if k.endswith("__random_state") and v is None})


def unknown_step_params(pipeline, model: str, params: dict[str, Any], own: list[str]) -> list[str]:
    """One line per key of `params` that is no `step__param` of `pipeline`, with what it may have meant."""
    from lab.workload import close_names

    known = pipeline.get_params()
    steps = [name for name, _ in pipeline.steps]
    lines = []
    for key in (k for k in params if k not in known):
        step = key.split("__", 1)[0] if "__" in key else ""
        if step and step not in steps:
            lines.append(f"unknown parameter '{key}' for model '{model}': it has no step '{step}' "
                         f"(its steps: {', '.join(steps)})")
            continue
        close = close_names(key, [k for k in known if "__" in k] + own)
        hint = (f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else
                f" (`lab params sklearn_cv --set model={model}` lists them)")
        lines.append(f"unknown parameter '{key}' for model '{model}'{hint}")
    return lines


PLAIN = (str, int, float, bool, type(None))


def _check_step_param(key: str, value: Any) -> None:
    """A spec sets `step__param` values of plain data, never a pipeline's own settings (`memory` would make
    joblib cache and load pickles in a folder the spec names) nor an object."""
    if "__" not in key or key.rsplit("__", 1)[-1] == "memory":
        raise SpecError(f"parameter '{key}' is not a `step__param` of the model's pipeline "
                        f"(a spec sets only its steps' parameters, e.g. svc__C)")
    items = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(item, PLAIN) for item in items):
        raise SpecError(f"parameter '{key}' must be a number, a string, a boolean or a list of them")


def _check_estimator_params(pipeline, params: dict[str, Any]) -> None:
    """Let scikit-learn's own parameter validation reject wrong types or values, as one line."""
    pipeline = pipeline.set_params(**params)
    for _, step in pipeline.steps:
        validate = getattr(step, "_validate_params", None)
        if validate is None:
            continue
        try:
            validate()
        except (ValueError, TypeError) as exc:
            raise SpecError(str(exc).splitlines()[0]) from None
