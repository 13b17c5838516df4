"""What scikit-learn's estimator checks cannot pass, and why.

* ``TwoStageClassifier`` classifies into the classes of its tree, so a label
  that the tree lacks is refused at :meth:`~router.TwoStageClassifier.fit`.
  The checks fit on the labels in :data:`CHECK_LABELS` and on float labels; a
  tree holding the former passes every check but those on the latter.
* ``NetworkTwoStage`` takes images (or trunk activations), while the checks
  fit on 2-D feature arrays; it refuses those with one ``InputError``, so every
  check that fits fails, and the checks of the estimator contract (parameters,
  cloning, ``repr``, the unfitted state, tags) pass.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CHECK_LABELS", "expected_failed_checks"]

CHECK_LABELS = ("-1", "0", "1", "2", "3", "one", "two", "three")
"""The labels scikit-learn's estimator checks fit on, besides float ones."""


_FLOAT_LABELS = {
    "check_estimators_nan_inf": "fits on float labels (1.0): a class tree names its classes by strings or "
                                "integers, so a float label is refused",
}

_FIT_ON_FEATURES = (
    "check_classifier_data_not_an_array", "check_classifiers_classes", "check_classifiers_one_label",
    "check_classifiers_regression_target", "check_classifiers_train", "check_complex_data", "check_dict_unchanged",
    "check_dont_overwrite_parameters", "check_dtype_object", "check_estimator_sparse_array",
    "check_estimator_sparse_matrix", "check_estimator_sparse_tag", "check_estimators_dtypes",
    "check_estimators_empty_data_messages", "check_estimators_fit_returns_self", "check_estimators_nan_inf",
    "check_estimators_overwrite_params", "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_fit2d_1feature", "check_fit2d_1sample", "check_fit2d_predict1d", "check_fit_check_is_fitted",
    "check_fit_idempotent", "check_fit_score_takes_y", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_n_features_in", "check_n_features_in_after_fitting",
    "check_pipeline_consistency", "check_positive_only_tag_during_fit", "check_readonly_memmap_input",
    "check_requires_y_none", "check_supervised_y_2d",
)
_IMAGES = ("fits on a 2-D feature array: NetworkTwoStage takes images or trunk activations (n, C, H, W) and "
           "refuses other input with an InputError")


def expected_failed_checks(estimator: Any) -> dict[str, str]:
    """The checks of :func:`sklearn.utils.estimator_checks.check_estimator` that ``estimator`` fails, with why.

    Pass it as ``check_estimator(est, expected_failed_checks=expected_failed_checks(est))``
    or to ``parametrize_with_checks``.

    Parameters
    ----------
    estimator : FlatClassifier, TwoStageClassifier or NetworkTwoStage

    Returns
    -------
    dict of str to str
        Check name to reason: none for :class:`FlatClassifier`; for
        :class:`TwoStageClassifier`, the check that fits on float labels; for
        :class:`NetworkTwoStage`, every check that fits on 2-D features.

    Notes
    -----
    The other checks fit on the labels of :data:`CHECK_LABELS`.  Give the
    estimator a tree that holds them all (``tests/router/test_checks.py``
    builds one from a parent mapping); with a tree that lacks one, every
    check that fits on it fails as well, by refusing the unknown label.
    """
    if getattr(estimator, "takes_images", False):
        return dict.fromkeys(_FIT_ON_FEATURES, _IMAGES)
    return {} if getattr(estimator, "tree", None) is None else dict(_FLOAT_LABELS)
