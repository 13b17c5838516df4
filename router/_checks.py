"""What scikit-learn's estimator checks cannot pass, and why: a fixed class tree.

``TwoStageClassifier`` classifies into the classes of its tree, so a label
that the tree lacks is refused at :meth:`~router.TwoStageClassifier.fit`.
The checks fit on the labels in :data:`CHECK_LABELS` and on float labels; a
tree holding the former passes every check but those on the latter.
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

def expected_failed_checks(estimator: Any) -> dict[str, str]:
    """The checks of :func:`sklearn.utils.estimator_checks.check_estimator` that ``estimator`` fails, with why.

    Pass it as ``check_estimator(est, expected_failed_checks=expected_failed_checks(est))``
    or to ``parametrize_with_checks``.

    Parameters
    ----------
    estimator : FlatClassifier or TwoStageClassifier

    Returns
    -------
    dict of str to str
        Check name to reason: none for :class:`FlatClassifier`; for
        :class:`TwoStageClassifier`, the check that fits on float labels.

    Notes
    -----
    The other checks fit on the labels of :data:`CHECK_LABELS`.  Give the
    estimator a tree that holds them all (``tests/router/test_checks.py``
    builds one from a parent mapping); with a tree that lacks one, every
    check that fits on it fails as well, by refusing the unknown label.
    """
    return {} if getattr(estimator, "tree", None) is None else dict(_FLOAT_LABELS)
