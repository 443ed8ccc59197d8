"""The catalogue of scikit-learn models: name -> a fresh Pipeline.

Step names follow `make_pipeline`, so hyperparameters are addressed the scikit-learn way:
`svc__C`, `randomforestclassifier__n_estimators`, `ridge__alpha`.
"""
from __future__ import annotations

from typing import Callable

from lab.errors import SpecError
from lab.workload import suggest


def _catalogue() -> dict[str, Callable]:
    from sklearn import ensemble, linear_model, neighbors, svm, tree
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scaled = lambda estimator: lambda: make_pipeline(StandardScaler(), estimator())  # noqa: E731
    plain = lambda estimator: lambda: make_pipeline(estimator())  # noqa: E731
    return {
        # classification
        "svc": scaled(svm.SVC),
        "linear_svc": scaled(lambda: svm.LinearSVC(dual="auto")),
        "logistic": scaled(lambda: linear_model.LogisticRegression(max_iter=2000)),
        "sgd_classifier": scaled(linear_model.SGDClassifier),
        "knn": scaled(neighbors.KNeighborsClassifier),
        "decision_tree": plain(tree.DecisionTreeClassifier),
        "random_forest": plain(ensemble.RandomForestClassifier),
        "extra_trees": plain(ensemble.ExtraTreesClassifier),
        "hist_gradient_boosting": plain(ensemble.HistGradientBoostingClassifier),
        # regression
        "linear_regression": scaled(linear_model.LinearRegression),
        "ridge": scaled(linear_model.Ridge),
        "lasso": scaled(linear_model.Lasso),
        "elastic_net": scaled(linear_model.ElasticNet),
        "svr": scaled(svm.SVR),
        "random_forest_regressor": plain(ensemble.RandomForestRegressor),
        "hist_gradient_boosting_regressor": plain(ensemble.HistGradientBoostingRegressor),
    }


def names() -> list[str]:
    return sorted(_catalogue())


def make(name: str):
    catalogue = _catalogue()
    if name not in catalogue:
        raise SpecError(f"unknown model '{name}'{suggest(name, catalogue)}")
    return catalogue[name]()
