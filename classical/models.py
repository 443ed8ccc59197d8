"""The catalogue of scikit-learn models: name -> a fresh Pipeline, and the dimensionality reducers.

Step names follow `make_pipeline`, so hyperparameters are addressed the scikit-learn way:
`svc__C`, `randomforestclassifier__n_estimators`, `ridge__alpha`, `polynomialfeatures__degree`,
`votingclassifier__rf__n_estimators` (inside an ensemble: the member's name, then its parameter),
`adaboostclassifier__estimator__max_depth`, `votingclassifier__svc__estimator__C`.

Chapters of the book: linear and polynomial regression, SGD, softmax regression (4); SVMs (5);
decision trees (6); ensembles: voting, bagging/random forests, extra trees, AdaBoost, gradient
boosting, stacking (7); dimensionality reduction (8, as pipeline steps: see `reducer`).
"""
from __future__ import annotations

from typing import Callable

from lab.errors import SpecError
from lab.workload import suggest

REDUCERS = ("none", "pca", "incremental_pca", "kernel_pca", "lle")


def _catalogue() -> dict[str, Callable]:
    from sklearn import calibration, ensemble, linear_model, neighbors, svm, tree
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    scaled = lambda estimator: lambda: make_pipeline(StandardScaler(), estimator())  # noqa: E731
    plain = lambda estimator: lambda: make_pipeline(estimator())  # noqa: E731

    def voting_classifier():  # the book's soft-voting trio: diverse models, averaged class probabilities
        return ensemble.VotingClassifier([
            ("lr", linear_model.LogisticRegression(max_iter=2000)),
            ("rf", ensemble.RandomForestClassifier(n_estimators=100)),
            # the book's SVC(probability=True), which scikit-learn 1.9 deprecates in favour of this
            ("svc", calibration.CalibratedClassifierCV(svm.SVC(), ensemble=False)),
        ], voting="soft")

    def stacking_classifier():  # a blender (logistic regression) trained on out-of-fold predictions
        return ensemble.StackingClassifier([
            ("lr", linear_model.LogisticRegression(max_iter=2000)),
            ("rf", ensemble.RandomForestClassifier(n_estimators=100)),
            ("svc", svm.SVC()),
        ], final_estimator=linear_model.LogisticRegression(max_iter=2000), cv=5)

    def voting_regressor():
        return ensemble.VotingRegressor([
            ("ridge", linear_model.Ridge()),
            ("rf", ensemble.RandomForestRegressor(n_estimators=100)),
            ("svr", svm.SVR()),
        ])

    def stacking_regressor():  # default blender: RidgeCV
        return ensemble.StackingRegressor([
            ("ridge", linear_model.Ridge()),
            ("rf", ensemble.RandomForestRegressor(n_estimators=100)),
            ("svr", svm.SVR()),
        ], cv=5)

    return {
        # classification
        "svc": scaled(svm.SVC),
        "linear_svc": scaled(lambda: svm.LinearSVC(dual="auto")),
        "logistic": scaled(lambda: linear_model.LogisticRegression(max_iter=2000)),
        # the book's softmax_reg: multinomial LogisticRegression (lbfgs; scikit-learn's only multiclass
        # form since `multi_class` went away) with its weak regularization, C=30
        "softmax_regression": scaled(lambda: linear_model.LogisticRegression(C=30, max_iter=5000)),
        "sgd_classifier": scaled(linear_model.SGDClassifier),
        "knn": scaled(neighbors.KNeighborsClassifier),
        "decision_tree": plain(tree.DecisionTreeClassifier),
        "random_forest": plain(ensemble.RandomForestClassifier),
        "extra_trees": plain(ensemble.ExtraTreesClassifier),
        # stumps given explicitly, so that `adaboostclassifier__estimator__max_depth` can be searched
        "ada_boost": plain(lambda: ensemble.AdaBoostClassifier(tree.DecisionTreeClassifier(max_depth=1))),
        "gradient_boosting": plain(ensemble.GradientBoostingClassifier),
        "hist_gradient_boosting": plain(ensemble.HistGradientBoostingClassifier),
        "voting_classifier": scaled(voting_classifier),
        "stacking_classifier": scaled(stacking_classifier),
        # regression
        "linear_regression": scaled(linear_model.LinearRegression),
        "polynomial_regression": lambda: make_pipeline(
            StandardScaler(), PolynomialFeatures(degree=2, include_bias=False), linear_model.LinearRegression()),
        "sgd_regressor": scaled(linear_model.SGDRegressor),
        "ridge": scaled(linear_model.Ridge),
        "lasso": scaled(linear_model.Lasso),
        "elastic_net": scaled(linear_model.ElasticNet),
        "svr": scaled(svm.SVR),
        "decision_tree_regressor": plain(tree.DecisionTreeRegressor),
        "random_forest_regressor": plain(ensemble.RandomForestRegressor),
        "extra_trees_regressor": plain(ensemble.ExtraTreesRegressor),
        "gradient_boosting_regressor": plain(ensemble.GradientBoostingRegressor),
        "hist_gradient_boosting_regressor": plain(ensemble.HistGradientBoostingRegressor),
        "voting_regressor": scaled(voting_regressor),
        "stacking_regressor": scaled(stacking_regressor),
    }


def names() -> list[str]:
    return sorted(_catalogue())


def make(name: str):
    catalogue = _catalogue()
    if name not in catalogue:
        raise SpecError(f"unknown model '{name}'{suggest(name, catalogue)}")
    return catalogue[name]()


def reducer(kind: str, n_components: int | float) -> tuple[str, object] | None:
    """A dimensionality-reduction step as (make_pipeline's step name, estimator); None for 'none'.

    `n_components` below 1 is PCA's fraction of variance to keep (0.95: the book's choice); the
    other reducers need a whole number. Their hyperparameters are searchable as usual:
    `kernelpca__gamma`, `kernelpca__kernel`, `locallylinearembedding__n_neighbors`, `pca__whiten`.
    """
    from sklearn import decomposition, manifold

    if kind == "none":
        return None
    n = int(n_components) if float(n_components).is_integer() else float(n_components)
    steps = {
        "pca": lambda: ("pca", decomposition.PCA(n_components=n)),
        "incremental_pca": lambda: ("incrementalpca", decomposition.IncrementalPCA(n_components=n)),
        "kernel_pca": lambda: ("kernelpca", decomposition.KernelPCA(n_components=n, kernel="rbf")),
        "lle": lambda: ("locallylinearembedding", manifold.LocallyLinearEmbedding(n_components=n, n_neighbors=10)),
    }
    if kind not in steps:
        raise SpecError(f"unknown reducer '{kind}'{suggest(kind, REDUCERS)}")
    return steps[kind]()
