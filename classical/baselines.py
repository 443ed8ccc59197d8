"""`lab baselines`: a standard set of scikit-learn models on one data set, as one Tune experiment."""
from __future__ import annotations

from pathlib import Path

from classical import datasets
from classical.cross_validation import DEFAULT_SCORING
from lab.spec import ExperimentSpec, Reference, Resources

# Models that fit in about a second on digits (classifiers) or diabetes (regressors). Left out, as too slow
# for a default run (5-fold CV + a final fit; name them with --models): gradient_boosting (~10 s a fit on
# digits), voting_classifier and stacking_classifier (3-5 s), stacking_regressor.
CLASSIFIERS = ["logistic", "linear_svc", "svc", "knn", "decision_tree", "random_forest", "extra_trees",
               "ada_boost", "hist_gradient_boosting"]
REGRESSORS = ["linear_regression", "polynomial_regression", "ridge", "lasso", "elastic_net", "sgd_regressor", "svr",
              "decision_tree_regressor", "random_forest_regressor", "extra_trees_regressor",
              "gradient_boosting_regressor", "hist_gradient_boosting_regressor", "voting_regressor"]


def baseline_spec(dataset: str, target: str = "", models: list[str] | None = None, cv_folds: int = 5,
                  subset: int = 0, seed: int = 0) -> ExperimentSpec:
    """One trial per model, each scored by k-fold CV on the same folds."""
    data = datasets.load(dataset, target=target, subset=subset, seed=seed)
    models = models or (CLASSIFIERS if data.task == "classification" else REGRESSORS)
    metric = f"cv/{DEFAULT_SCORING[data.task]}"
    params = {"dataset": dataset, "cv_folds": cv_folds, "subset": subset}
    if target:
        params["target"] = target
    return ExperimentSpec(
        name=f"baselines-{Path(dataset).stem}",
        workload="sklearn_cv",
        description=f"Classical baselines ({data.task}) on {dataset}",
        params=params,
        search={"model": {"grid": list(models)}},
        metric=metric,
        mode="max",
        stop={"training_iteration": 1},
        resources=Resources(cpu=1),
        seed=seed,
        reference=Reference(),
    )
