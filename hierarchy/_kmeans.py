"""k-means over rows of vectors (faiss), for the data-induced and confusion-driven cuts."""

from __future__ import annotations

import numpy as np

__all__ = ["kmeans"]


def kmeans(x: np.ndarray, k: int, seed: int, n_init: int = 10, iters: int = 100) -> np.ndarray:
    """Cluster labels of the rows of ``x`` (n, dim) into ``k`` groups: faiss k-means, best of ``n_init`` runs."""
    import faiss  # only the induced and confusion cuts need it

    km = faiss.Kmeans(x.shape[1], int(k), niter=iters, nredo=n_init, seed=seed, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=1 << 30)
    data = np.ascontiguousarray(x, dtype=np.float32)
    km.train(data)
    return km.index.search(data, 1)[1][:, 0].astype(np.int64)
