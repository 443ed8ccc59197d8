"""Custom transformers of the book's first project, and the preprocessing ColumnTransformer built from them.

    preprocessor(frame, ratios=["total_rooms/households"], log_columns=["population"],
                 cluster_columns=["latitude", "longitude"], n_clusters=10)

Numbers are imputed (median) and scaled, categories imputed and one-hot encoded; `a/b` ratio columns,
log columns and the RBF similarity to k-means centres (`ClusterSimilarity`) are added as in chapter 2.
They follow the scikit-learn estimator contract, so skops can save them (`classical.cross_validation`
trusts this module's types when loading). The leading underscore keeps this module (which imports
scikit-learn) out of workload discovery, so the CLI starts without scikit-learn.
"""
from __future__ import annotations

import numpy as np
from pandas.api.types import is_numeric_dtype
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted


class ClusterSimilarity(TransformerMixin, BaseEstimator):
    """K-means on the input columns, then each row's Gaussian RBF similarity to every cluster centre."""

    def __init__(self, n_clusters: int = 10, gamma: float = 1.0, random_state=None):
        self.n_clusters = n_clusters
        self.gamma = gamma
        self.random_state = random_state

    def fit(self, X, y=None, sample_weight=None):
        from sklearn.cluster import KMeans

        X = check_array(X)
        self.n_features_in_ = X.shape[1]
        self.kmeans_ = KMeans(self.n_clusters, n_init=10, random_state=self.random_state)
        self.kmeans_.fit(X, sample_weight=sample_weight)
        return self

    def transform(self, X):
        from sklearn.metrics.pairwise import rbf_kernel

        check_is_fitted(self)
        return rbf_kernel(check_array(X), self.kmeans_.cluster_centers_, gamma=self.gamma)

    def get_feature_names_out(self, input_features=None):
        return np.array([f"cluster_{i}_similarity" for i in range(self.n_clusters)], dtype=object)


def column_ratio(X):
    """The first column divided by the second (the book's rooms_per_house, bedrooms_ratio, ...)."""
    X = np.asarray(X, dtype=np.float64)
    return X[:, [0]] / X[:, [1]]


def ratio_name(_transformer, _input_features):  # FunctionTransformer's feature_names_out
    return ["ratio"]


def preprocessor(frame, ratios=(), log_columns=(), cluster_columns=(), n_clusters: int = 10,
                 cluster_gamma: float = 1.0, seed: int = 0):
    """Chapter 2's ColumnTransformer for a DataFrame; every column not in a log or cluster step goes to the
    default steps (impute + scale numbers, impute + one-hot categories)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    def ratio_pipeline():
        return make_pipeline(SimpleImputer(strategy="median"),
                             FunctionTransformer(column_ratio, feature_names_out=ratio_name), StandardScaler())

    steps = [(f"ratio_{a}_per_{b}", ratio_pipeline(), [a, b]) for a, b in (r.split("/") for r in ratios)]
    if log_columns:
        steps.append(("log", make_pipeline(SimpleImputer(strategy="median"),
                                           FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
                                           StandardScaler()), list(log_columns)))
    if cluster_columns:
        steps.append(("geo", make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                                           ClusterSimilarity(n_clusters, cluster_gamma, random_state=seed)),
                      list(cluster_columns)))
    named = set(log_columns) | set(cluster_columns)  # ratio inputs also stay as columns of their own
    others = [c for c in frame.columns if c not in named]
    rest = frame[others]
    numeric = [c for c in others if is_numeric_dtype(rest[c])]
    categorical = [c for c in others if c not in numeric]
    if numeric:
        steps.append(("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric))
    if categorical:
        steps.append(("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                           OneHotEncoder(handle_unknown="ignore")), categorical))
    return ColumnTransformer(steps)


def check_columns(frame, ratios=(), log_columns=(), cluster_columns=()) -> None:
    """ValueError naming the first ratio/log/cluster column the frame lacks or that is not numeric."""
    from lab.workload import suggest

    for ratio in ratios:
        if ratio.count("/") != 1 or not all(ratio.split("/")):
            raise ValueError(f"ratio '{ratio}' must look like 'numerator/denominator'")
    for column in [c for r in ratios for c in r.split("/")] + list(log_columns) + list(cluster_columns):
        if column not in frame.columns:
            raise ValueError(f"no column '{column}'{suggest(column, list(map(str, frame.columns)))}")
        if not is_numeric_dtype(frame[column]):
            raise ValueError(f"column '{column}' is not numeric: it cannot be a ratio, log or cluster column")
    if log_columns and (frame[list(log_columns)] <= -1).any().any():
        bad = next(c for c in log_columns if (frame[c] <= -1).any())
        raise ValueError(f"log column '{bad}' has values <= -1: log1p is undefined there")
