"""The editable visual memory: embeddings with metadata, kNN voting and edits.

Three sides, one sub-package each: :mod:`memory.embedding` (backbones, datasets,
the embedder and its cache), :mod:`memory.store` (the memory, its persistence,
voting, pruning and the cache model) and :mod:`memory.milvus` (the Milvus client
and a local server).  Everything users need is exported here.

>>> import numpy as np
>>> from memory import VisualMemory
>>> mem = VisualMemory(k=1)
>>> ids = mem.add(np.eye(3, dtype="float32"), ["cat", "dog", "car"], source="demo")
>>> mem.predict(np.array([[0.9, 0.1, 0.0]], dtype="float32")).tolist()
['cat']
"""

from ._backend import DEFAULT_COLLECTION, MemoryBackend, drop_memory, load_any, load_memory, open_memory, parse_backend
from ._errors import (
    BackboneMismatchError,
    ConcurrentWriteError,
    DataError,
    ImageError,
    InputError,
    InputTypeError,
    MemoryFormatError,
    MilvusServerError,
    MissingBackendError,
    UnknownEntryError,
)
from ._progress import Progress, progress_line
from ._validation import as_embeddings, as_ids, as_strings, check_k, env_precision
from .embedding import (
    BACKBONES,
    DECODE_VERSION,
    EMBED_PRECISION_ENV,
    IMAGE_SUFFIXES,
    MAX_IMAGE_PIXELS,
    MAX_INPUT_SIZE,
    MIN_INPUT_SIZE,
    TINY_IMAGENET_URL,
    Backbone,
    BackboneSpec,
    Embedder,
    EmbeddingSet,
    ImageDataset,
    Preprocess,
    cache_root,
    embed_dataset,
    get_backbone,
    image_folder,
    load_embeddings,
    open_image,
    register_backbone,
    save_embeddings,
    tiny_imagenet,
)
from .milvus import LocalMilvusServer, MilvusMemory, MilvusShard
from .store import (
    VOTING_RULES,
    CacheModel,
    Explanation,
    Neighbour,
    PruneReport,
    Steer,
    VisualMemory,
    class_scores,
    compress,
    edit_memory,
    fit_cache,
    get_voting,
    harm_counts,
    prune_harmful,
    prune_redundant,
    register_voting,
    save_memory,
    writer_lock,
)

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneMismatchError",
    "BackboneSpec",
    "CacheModel",
    "DECODE_VERSION",
    "EMBED_PRECISION_ENV",
    "DEFAULT_COLLECTION",
    "ConcurrentWriteError",
    "DataError",
    "Embedder",
    "EmbeddingSet",
    "Explanation",
    "ImageDataset",
    "ImageEmbedder",
    "IMAGE_SUFFIXES",
    "ImageError",
    "InputError",
    "InputTypeError",
    "LocalMilvusServer",
    "MAX_IMAGE_PIXELS",
    "MAX_INPUT_SIZE",
    "MIN_INPUT_SIZE",
    "MemoryBackend",
    "MemoryFormatError",
    "MilvusMemory",
    "MilvusServerError",
    "MilvusShard",
    "MissingBackendError",
    "Neighbour",
    "Preprocess",
    "Progress",
    "PruneReport",
    "Steer",
    "as_embeddings",
    "as_ids",
    "as_strings",
    "check_k",
    "env_precision",
    "TINY_IMAGENET_URL",
    "UnknownEntryError",
    "VOTING_RULES",
    "VisualMemory",
    "drop_memory",
    "edit_memory",
    "cache_root",
    "class_scores",
    "compress",
    "embed_dataset",
    "fit_cache",
    "get_backbone",
    "get_voting",
    "harm_counts",
    "image_folder",
    "load_any",
    "load_embeddings",
    "load_memory",
    "open_image",
    "open_memory",
    "parse_backend",
    "prune_harmful",
    "progress_line",
    "prune_redundant",
    "register_backbone",
    "register_voting",
    "save_embeddings",
    "save_memory",
    "tiny_imagenet",
    "writer_lock",
]


def __getattr__(name: str) -> object:
    # ImageEmbedder needs scikit-learn; it is imported when first used, not with the package.
    if name == "ImageEmbedder":
        from . import embedding

        return embedding.ImageEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
