"""A scikit-learn Pipeline scored by k-fold cross-validation, then on a held-out test split.

One `step()` is one full `cross_validate` run, so a Tune sweep of this workload is a grid or random
search where every configuration is a trial (what GridSearchCV does, but tracked and distributed).
Hyperparameters use scikit-learn's `step__param` names, e.g. `svc__C` for `make_pipeline(StandardScaler(), SVC())`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from classical import datasets, models
from lab.errors import DataError, SpecError
from lab.workload import Workload, build_dataclass, register

DEFAULT_SCORING = {"classification": "accuracy", "regression": "neg_root_mean_squared_error"}


@register
class CrossValidatedPipeline(Workload):
    name = "sklearn_cv"
    test_params = {"dataset": "iris", "model": "logistic", "cv_folds": 3}
    log_figures = True  # the confusion matrix image (matplotlib: ~0.3 s a trial)

    @dataclass
    class Config:
        dataset: str = "digits"  # a name of classical.datasets.DATASETS, or a path to a .csv file
        target: str = ""  # the label column of a CSV file
        subset: int = 0  # keep this many rows (stratified), 0 for all
        model: str = "svc"  # see classical.models
        cv_folds: int = 5  # k of the (stratified, for classification) k-fold CV
        test_size: float = 0.2  # fraction held out for the final test score
        scoring: str = ""  # a scikit-learn scorer name; default: accuracy or neg RMSE
        seed: int = 0
        estimator_params: dict[str, Any] = field(default_factory=dict)  # `step__param` values

        def check(self) -> None:
            if self.cv_folds < 2:
                raise ValueError("cv_folds must be at least 2")
            if not 0.0 < self.test_size < 1.0:
                raise ValueError("test_size must be between 0 and 1")
            if self.subset < 0:
                raise ValueError("subset cannot be negative")

    @classmethod
    def make_config(cls, params: dict[str, Any]) -> Any:
        """Own fields as usual; any other key must be a parameter of the model's pipeline."""
        own = {f.name for f in dataclasses.fields(cls.Config)} - {"estimator_params"}
        estimator_params = {k: v for k, v in params.items() if k not in own}
        config = build_dataclass(cls.Config, {k: v for k, v in params.items() if k in own}, f"workload '{cls.name}'")
        pipeline = models.make(config.model)
        known = pipeline.get_params()
        for key in estimator_params:
            if key not in known:
                hints = [k for k in known if "__" in k]
                from lab.workload import suggest

                raise SpecError(f"unknown parameter '{key}' for model '{config.model}'{suggest(key, hints)}")
        _check_estimator_params(pipeline, estimator_params)
        if config.dataset.endswith(".csv") or config.dataset not in datasets.DATASETS:
            try:  # a user's file (or a typo): check it now, not in every trial
                datasets.load(config.dataset, target=config.target)
            except DataError as exc:
                raise SpecError(str(exc)) from None
        return dataclasses.replace(config, estimator_params=estimator_params)

    def setup(self) -> None:
        from sklearn.model_selection import train_test_split

        c = self.config
        data = datasets.load(c.dataset, target=c.target, subset=c.subset, seed=c.seed)
        self.task = data.task
        self.scoring = c.scoring or DEFAULT_SCORING[data.task]
        stratify = data.y if data.task == "classification" else None
        self.X_train, self.X_test, self.y_train, self.y_test = train_test_split(
            data.X, data.y, test_size=c.test_size, random_state=c.seed, stratify=stratify
        )
        self.pipeline = models.make(c.model).set_params(**c.estimator_params)
        if hasattr(data.X, "columns"):  # a CSV file: mixed column types, missing values
            self.pipeline.steps.insert(0, ("preprocess", datasets.preprocessor(data.X)))
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
        self.pipeline.fit(self.X_train, self.y_train)
        test_score = get_scorer(self.scoring)(self.pipeline, self.X_test, self.y_test)
        scores = cv["test_score"]
        self.results = {
            f"cv/{self.scoring}": float(np.mean(scores)),
            f"cv/{self.scoring}_std": float(np.std(scores)),
            f"test/{self.scoring}": float(test_score),
            "charts/fit_seconds": float(np.mean(cv["fit_time"])),
            "charts/wall_seconds": time.perf_counter() - start,
        }
        if self.task == "classification" and self.context.logger is not None and self.log_figures:
            self._log_confusion_matrix()
        return {**self.results, "done": True}

    def _log_confusion_matrix(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        from sklearn.metrics import ConfusionMatrixDisplay

        display = ConfusionMatrixDisplay.from_estimator(self.pipeline, self.X_test, self.y_test, colorbar=False)
        self.context.logger.figure("test/confusion_matrix", display.figure_)

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


def load_pipeline(path: str):
    """Load a skops file, trusting only scikit-learn, NumPy and SciPy types (no arbitrary code)."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    unsafe = [t for t in untrusted if not t.startswith(("sklearn.", "numpy.", "scipy."))]
    if unsafe:
        raise SpecError(f"{path} holds types that are not scikit-learn's: {', '.join(unsafe[:3])}")
    return skops.io.load(path, trusted=untrusted)


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
