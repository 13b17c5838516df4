"""Array directories (the embedding and trunk caches): what is written reads back, at full-dataset size."""

import numpy as np
import pytest

from memory import MemoryFormatError
from memory.embedding import read_array_dir, write_array_dir


def test_a_cache_of_every_tiny_imagenet_sample_reads_back(tmp_path):
    """The index lists each sample's reference and label: 110,000 of them must not trip the size limit."""
    refs = [f"train/n{i % 200:08d}/images/n{i % 200:08d}_{i}.JPEG" for i in range(110_000)]
    meta = {"format": "supersub-test", "version": 1, "fingerprint": "fp", "refs": refs,
            "labels": [r.split("/")[1] for r in refs]}
    array = np.arange(110_000 * 4, dtype=np.float16).reshape(110_000, 4)
    write_array_dir(tmp_path / "cache", "x.npy", array, meta)
    assert (tmp_path / "cache" / "meta.json").stat().st_size > 6 << 20  # far above the old 1 MiB limit
    back, got = read_array_dir(tmp_path / "cache", "x.npy", fmt="supersub-test", version=1, noun="test arrays",
                               rebuild="rebuild them", fingerprint="fp")
    assert np.array_equal(back, array) and got["refs"] == refs


def test_a_corrupt_index_is_refused_by_name(tmp_path):
    write_array_dir(tmp_path / "cache", "x.npy", np.zeros((2, 2)), {"format": "supersub-test", "version": 1})
    (tmp_path / "cache" / "meta.json").write_bytes(b"{" * 70)
    with pytest.raises(MemoryFormatError, match="holds no readable test arrays"):
        read_array_dir(tmp_path / "cache", "x.npy", fmt="supersub-test", version=1, noun="test arrays",
                       rebuild="rebuild them")
