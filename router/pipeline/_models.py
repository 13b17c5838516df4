"""Either kind of saved model: load by the manifest's format, save, and edit under the writer lock."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hierarchy import UnknownClassError
from memory.store import locked_edit, open_snapshot

from ..network import NetworkTwoStage, is_network, load_network, save_network
from ..twostage import TwoStageClassifier, load_twostage, save_twostage

__all__ = ["class_of", "edit_classifier", "load_classifier", "load_model", "save_classifier"]


def load_model(path: str | os.PathLike[str], *, fingerprint: str | None = None) -> TwoStageClassifier | NetworkTwoStage:
    """Load a saved model of either kind, chosen by its manifest's format.

    Parameters
    ----------
    path : path-like
        A directory written by ``save`` of either model.
    fingerprint : str, optional
        The backbone fingerprint the caller's queries come from; a model built
        on another one is refused.

    Returns
    -------
    TwoStageClassifier or NetworkTwoStage
        A memory-level model, or a network-level one.

    Raises
    ------
    MemoryFormatError
        Not a saved model, another format version, or a file that is
        missing, corrupt, unlisted or from another model.
    BackboneMismatchError
        ``fingerprint`` differs from the one the model was built with.
    """
    root = Path(path)
    if is_network(open_snapshot(root, "classifier").manifest):
        return load_network(root, fingerprint=fingerprint)
    return load_twostage(root, fingerprint=fingerprint)


#: The same as :func:`load_model` (the name the first releases used).
load_classifier = load_model


def save_classifier(clf: TwoStageClassifier | NetworkTwoStage, path: str | os.PathLike[str], *,
                    wait: float = 0.0) -> Path:
    """Write a model of either kind to the directory ``path``; a crash leaves the previous save loadable.

    Parameters
    ----------
    clf : TwoStageClassifier or NetworkTwoStage
    path : path-like
    wait : float, default 0
        Seconds to wait for another writer's lock.

    Raises
    ------
    ConcurrentWriteError
        Another writer holds the lock, or committed to ``path`` after ``clf``
        was loaded from it (saving would drop that edit).
    """
    if isinstance(clf, NetworkTwoStage):
        return save_network(clf, path, wait=wait)
    return save_twostage(clf, path, wait=wait)


@contextlib.contextmanager
def edit_classifier(
    path: str | os.PathLike[str], *, wait: float = 60.0, fingerprint: str | None = None,
) -> Iterator[TwoStageClassifier | NetworkTwoStage]:
    """Load, edit and save a saved model of either kind while holding its writer lock throughout.

    Another writer (the command line's ``memory add``/``remove``, another
    edit block) waits up to ``wait`` seconds instead of overwriting this edit.
    The model is saved when the block ends normally; if the block raises,
    nothing is saved.

    Examples
    --------
    >>> with edit_classifier("model/") as clf:        # doctest: +SKIP
    ...     clf.remove(source="web")
    """
    with locked_edit(Path(path), lambda root: load_model(root, fingerprint=fingerprint),
                     save_classifier, wait) as clf:
        yield clf


def class_of(tree: Any, name: str) -> str:
    """The class of ``tree`` that ``name`` denotes (see ``ClassTree.resolve_classes``), else ``name``."""
    try:
        return tree.resolve_classes([name])[0]  # type: ignore[no-any-return]
    except UnknownClassError:
        return name
