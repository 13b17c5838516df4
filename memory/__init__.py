"""The editable visual memory: embeddings with metadata, kNN voting and edits.

>>> import numpy as np
>>> from memory import VisualMemory
>>> mem = VisualMemory(k=1)
>>> ids = mem.add(np.eye(3, dtype="float32"), ["cat", "dog", "car"], source="demo")
>>> mem.predict(np.array([[0.9, 0.1, 0.0]], dtype="float32")).tolist()
['cat']
"""

from ._backend import DEFAULT_COLLECTION, MemoryBackend, drop_memory, load_any, load_memory, open_memory, parse_backend
from ._backbones import BACKBONES, Backbone, BackboneSpec, Preprocess, get_backbone, register_backbone
from ._cache import CacheModel, fit_cache
from ._datasets import IMAGE_SUFFIXES, TINY_IMAGENET_URL, ImageDataset, image_folder, tiny_imagenet
from ._embed import Embedder, cache_root
from ._embedding_store import EmbeddingSet, embed_dataset, load_embeddings, save_embeddings
from ._errors import (
    BackboneMismatchError,
    ConcurrentWriteError,
    DataError,
    ImageError,
    InputError,
    MemoryFormatError,
    MilvusServerError,
    MissingBackendError,
    UnknownEntryError,
)
from ._explain import Explanation, Neighbour, PruneReport, Steer
from ._images import DECODE_VERSION, MAX_IMAGE_PIXELS, open_image
from ._milvus import MilvusMemory, MilvusShard
from ._milvus_server import LocalMilvusServer
from ._persist import edit_memory, save_memory
from ._snapshot import writer_lock
from ._prune import compress, harm_counts, prune_harmful, prune_redundant
from ._visual_memory import VisualMemory
from ._voting import VOTING_RULES, class_scores, get_voting, register_voting

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneMismatchError",
    "BackboneSpec",
    "CacheModel",
    "DECODE_VERSION",
    "DEFAULT_COLLECTION",
    "ConcurrentWriteError",
    "DataError",
    "Embedder",
    "EmbeddingSet",
    "Explanation",
    "ImageDataset",
    "IMAGE_SUFFIXES",
    "ImageError",
    "InputError",
    "LocalMilvusServer",
    "MAX_IMAGE_PIXELS",
    "MemoryBackend",
    "MemoryFormatError",
    "MilvusMemory",
    "MilvusServerError",
    "MilvusShard",
    "MissingBackendError",
    "Neighbour",
    "Preprocess",
    "PruneReport",
    "Steer",
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
    "prune_redundant",
    "register_backbone",
    "register_voting",
    "save_embeddings",
    "save_memory",
    "tiny_imagenet",
    "writer_lock",
]
