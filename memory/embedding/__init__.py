"""The embedding side of the memory: backbones, image datasets, decoding, the embedder and
its on-disk cache.

Everything here is also exported by :mod:`memory`; code that builds its own
caches (the network trunk's) uses :func:`fill_batches` and the array-directory
helpers from here.
"""

from ._array_dir import read_array_dir, write_array_dir
from ._backbones import (BACKBONES, MAX_INPUT_SIZE, MIN_INPUT_SIZE, Backbone, BackboneSpec, Preprocess, get_backbone,
                         load_tensors, register_backbone)
from ._archives import resolve_tiny_imagenet
from ._datasets import IMAGE_SUFFIXES, TINY_IMAGENET_URL, ImageDataset, image_folder, tiny_imagenet
from ._embed import EMBED_PRECISION_ENV, Embedder, cache_root, fill_batches
from ._embedding_store import EmbeddingSet, cache_dir_for, embed_dataset, load_embeddings, save_embeddings
from ._image_cache import ImageCache, image_digests
from ._images import DECODE_VERSION, MAX_IMAGE_PIXELS, open_image
from ._onnx import export_onnx, onnx_session, usable_cores
from ._openvino import OpenVinoFeatures, openvino_available, openvino_has_bf16

__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneSpec",
    "DECODE_VERSION",
    "EMBED_PRECISION_ENV",
    "Embedder",
    "EmbeddingSet",
    "IMAGE_SUFFIXES",
    "ImageDataset",
    "ImageCache",
    "ImageEmbedder",
    "MAX_IMAGE_PIXELS",
    "MAX_INPUT_SIZE",
    "MIN_INPUT_SIZE",
    "Preprocess",
    "TINY_IMAGENET_URL",
    "cache_dir_for",
    "cache_root",
    "embed_dataset",
    "export_onnx",
    "fill_batches",
    "get_backbone",
    "load_tensors",
    "OpenVinoFeatures",
    "openvino_available",
    "openvino_has_bf16",
    "resolve_tiny_imagenet",
    "image_digests",
    "image_folder",
    "load_embeddings",
    "onnx_session",
    "open_image",
    "read_array_dir",
    "register_backbone",
    "save_embeddings",
    "tiny_imagenet",
    "usable_cores",
    "write_array_dir",
]


def __getattr__(name: str) -> object:
    # ImageEmbedder needs scikit-learn; it is imported when first used, not with the package.
    if name == "ImageEmbedder":
        from ._transformer import ImageEmbedder

        return ImageEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
