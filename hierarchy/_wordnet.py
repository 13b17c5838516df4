"""Locating and opening WordNet 3.0 through nltk.

Three sources are tried, in this order:

1. the directory named by the ``SUPERSUB_WORDNET`` environment variable (or the
   ``path`` argument of :func:`load_wordnet`);
2. nltk's standard ``wordnet`` corpus, as installed by
   ``python -m nltk.downloader wordnet``;
3. the WordNet 3.0 ``dict`` files of a system package, such as Debian's
   ``wordnet-base`` (``/usr/share/wordnet``).

A raw WordNet ``dict`` directory lacks the ``lexnames`` table that nltk expects
and is not registered with nltk's data path.  Both are handled here without
writing anything to disk: the standard 45-entry table is served from memory
and the directory is added to ``nltk.data.path``.  The multilingual version
mapping that nltk computes on start-up is skipped, since only English WordNet
3.0 is used.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from pathlib import Path
from typing import IO, Any

from ._errors import WordNetNotFoundError

__all__ = ["load_wordnet", "synset_from_wnid", "wnid_of"]

#: Environment variable naming a WordNet 3.0 directory.
ENV_VAR = "SUPERSUB_WORDNET"

#: System locations of WordNet 3.0 ``dict`` files, tried in order.
SYSTEM_DIRS = (
    "/usr/share/wordnet",
    "/usr/share/wordnet/dict",
    "/usr/local/share/wordnet",
    "/usr/local/WordNet-3.0/dict",
    "/opt/homebrew/share/wordnet",
)

# The lexicographer file names of WordNet 3.0 (lexnames(5WN)), in file order.
_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact "
    "noun.attribute noun.body noun.cognition noun.communication noun.event "
    "noun.feeling noun.food noun.group noun.location noun.motive noun.object "
    "noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time "
    "verb.body verb.change verb.cognition verb.communication verb.competition "
    "verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather "
    "adj.ppl"
).split()
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_LEXNAMES_TABLE = "".join(
    f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n" for i, name in enumerate(_LEXNAMES)
)
_REQUIRED = ("data.noun", "index.noun", "data.adj")

_lock = threading.Lock()
_cache: dict[str, Any] = {}

_INSTALL_HINT = (
    "Install WordNet 3.0 with one of:\n"
    "  python -m nltk.downloader wordnet        (needs internet)\n"
    "  apt-get install wordnet-base             (Debian/Ubuntu)\n"
    f"or point {ENV_VAR} at a directory holding WordNet 3.0's dict files "
    "(data.noun, index.noun, ...)."
)


def _reader_class() -> type:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _WordNet30Reader(WordNetCorpusReader):  # type: ignore[misc]
        """WordNet reader that also accepts a raw ``dict`` directory."""

        def open(self, file: str) -> IO[str]:  # noqa: A003 - nltk's name
            if file == "lexnames" and not os.path.isfile(os.path.join(self._root.path, file)):
                return io.StringIO(_LEXNAMES_TABLE)
            return super().open(file)  # type: ignore[no-any-return]

        def map_wn(self, version: str = "wordnet") -> None:
            # Only used for the multilingual OMW data, which needs a second
            # WordNet copy and index.sense; English WordNet 3.0 needs neither.
            return None

    return _WordNet30Reader


def _is_dict_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in _REQUIRED)


def _open_dir(path: Path) -> Any:
    import nltk

    path = path.resolve()
    if not _is_dict_dir(path):
        raise WordNetNotFoundError(
            f"{path} is not a WordNet dict directory: it lacks "
            f"{', '.join(n for n in _REQUIRED if not (path / n).is_file())}. " + _INSTALL_HINT
        )
    # nltk refuses corpus roots outside its registered data directories.
    for entry in (str(path), str(path.parent)):
        if entry not in nltk.data.path:
            nltk.data.path.append(entry)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions")
        return _reader_class()(str(path), None)


def _check_version(reader: Any, origin: str) -> Any:
    version = reader.get_version()
    if version != "3.0":
        raise WordNetNotFoundError(
            f"WordNet at {origin} is version {version}, but ImageNet wnids are "
            "WordNet 3.0 offsets; other versions map them to the wrong synsets. " + _INSTALL_HINT
        )
    return reader


def _nltk_standard() -> Any | None:
    import nltk

    try:
        found = nltk.data.find("corpora/wordnet")
    except LookupError:
        try:
            found = nltk.data.find("corpora/wordnet.zip")
        except LookupError:
            return None
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions")
        return WordNetCorpusReader(found, None)


def load_wordnet(path: str | os.PathLike[str] | None = None) -> Any:
    """Return an nltk WordNet 3.0 reader.

    Parameters
    ----------
    path : str or path-like, optional
        A directory with WordNet 3.0 dict files (``data.noun``, ``index.noun``,
        ...), in nltk's layout or the original one.  Defaults to
        ``$SUPERSUB_WORDNET``, then nltk's ``wordnet`` corpus, then the system
        locations in :data:`SYSTEM_DIRS`.

    Returns
    -------
    nltk.corpus.reader.wordnet.WordNetCorpusReader
        The reader; one instance is shared per source.

    Raises
    ------
    WordNetNotFoundError
        If no WordNet is found, or the one found is not version 3.0.
    """
    explicit = path if path is not None else os.environ.get(ENV_VAR) or None
    key = f"path:{Path(explicit).resolve()}" if explicit else "auto"
    with _lock:
        if key in _cache:
            return _cache[key]
        if explicit:
            p = Path(explicit).expanduser()
            if not p.exists():
                src = "path" if path is not None else ENV_VAR
                raise WordNetNotFoundError(f"{src}={explicit!s} does not exist. " + _INSTALL_HINT)
            if not _is_dict_dir(p) and _is_dict_dir(p / "dict"):
                p = p / "dict"
            reader = _check_version(_open_dir(p), str(p))
        else:
            reader = _nltk_standard()
            origin = "nltk's wordnet corpus"
            if reader is None:
                for candidate in SYSTEM_DIRS:
                    if _is_dict_dir(Path(candidate)):
                        reader = _open_dir(Path(candidate))
                        origin = candidate
                        break
            if reader is None:
                raise WordNetNotFoundError("No WordNet 3.0 found. " + _INSTALL_HINT)
            reader = _check_version(reader, origin)
        _cache[key] = reader
        return reader


def wnid_of(synset: Any) -> str:
    """Return the ImageNet-style id (``n01440764``) of a WordNet synset."""
    return f"{synset.pos()}{synset.offset():08d}"


_POS = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective satellite", "r": "adverb"}


def synset_from_wnid(wnid: str, wordnet: Any | None = None, *, noun: bool = False) -> Any:
    """Return the WordNet 3.0 synset of an ImageNet-style id.

    Parameters
    ----------
    wnid : str
        A part-of-speech letter followed by an 8-digit offset, e.g. ``n01440764``.
    wordnet : WordNetCorpusReader, optional
        Defaults to :func:`load_wordnet`.
    noun : bool, default False
        Refuse synsets that are not nouns (class trees hang from ``entity``,
        the root of the noun hierarchy).

    Raises
    ------
    UnknownClassError
        If the id is malformed, names no synset, or (with ``noun``) names a
        synset of another part of speech.
    """
    from ._errors import UnknownClassError

    from ._text import WNID

    if not isinstance(wnid, str) or not WNID.match(wnid):
        raise UnknownClassError(
            f"{wnid!r} is not a wnid: expected a part-of-speech letter and 8 ASCII digits, "
            "like 'n01440764'"
        )
    wn = wordnet if wordnet is not None else load_wordnet()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synset = wn.synset_from_pos_and_offset(wnid[0], int(wnid[1:]))
    except Exception:  # nltk raises a bare error for offsets inside a record
        synset = None
    if synset is None:
        raise UnknownClassError(
            f"unknown wnid {wnid!r}: no WordNet 3.0 synset has that offset; "
            "check the id against the dataset's wnids.txt"
        )
    if noun and wnid[0] != "n":
        raise UnknownClassError(
            f"{wnid!r} is {'an' if wnid[0] == 'a' else 'a'} {_POS[wnid[0]]} synset ({synset.name()}); "
            "classes must be noun synsets, "
            "whose wnids start with 'n' (like 'n01440764')"
        )
    return synset
