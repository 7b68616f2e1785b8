"""Metric names and exact distances, shared by ground truth, recall and the exact store.

Distances follow ann-benchmarks: euclidean is the L2 distance, angular is 1 - cosine
similarity, ip is the negated inner product (so smaller is always nearer).
"""

from __future__ import annotations

import numpy as np

METRIC_ALIASES = {
    "euclidean": "euclidean",
    "l2": "euclidean",
    "angular": "angular",
    "cosine": "angular",
    "ip": "ip",
    "dot": "ip",
    "inner_product": "ip",
}


def canonical_metric(name: str) -> str:
    """Return the harness's metric name for ``name`` or raise ValueError listing the choices."""
    try:
        return METRIC_ALIASES[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}: use one of euclidean (l2), angular (cosine), ip (dot)") from None


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def exact_distances(query: np.ndarray, candidates: np.ndarray, metric: str) -> np.ndarray:
    """Distances from one query to candidate rows, in float64, for scoring answers."""
    q = np.asarray(query, dtype=np.float64)
    if metric == "euclidean":  # float32 rows widen to float64 inside the subtraction: one pass, no copy
        diff = np.subtract(candidates, q, dtype=np.float64)
        return np.sqrt(np.einsum("...j,...j->...", diff, diff))
    c = np.asarray(candidates, dtype=np.float64)
    # einsum, not a BLAS product: each row's value must not depend on how many rows are passed or
    # where they sit, so equal rows always tie exactly (ground truth and recall compute on subsets)
    if metric == "angular":
        return 1.0 - np.einsum("...j,j->...", normalize(c), normalize(q))
    if metric == "ip":
        return -np.einsum("...j,j->...", c, q)
    raise ValueError(f"unknown metric {metric!r}")
