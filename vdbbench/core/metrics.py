"""Strict, tie-aware quality metrics and latency summaries.

recall@k follows ann-benchmarks and big-ann-benchmarks: a returned item counts when its
true distance to the query is within a small relative epsilon of the k-th true
distance, so an engine returning a different item at an equal distance is credited.
Duplicate ids count once; short answers are counted, not padded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vdbbench.core.distances import exact_distances

DEFAULT_EPSILON = 1e-6
CI_RESAMPLES = 2000  # bootstrap resamples behind recall_ci95
CI_SEED = 0  # fixed, so the same answers always give the same interval


@dataclass
class RecallReport:
    recall: float  # mean over queries of (credited items / k)
    per_query: np.ndarray
    duplicate_answers: int  # answers holding an id more than once
    short_answers: int  # answers with fewer than k distinct ids
    invalid_ids: int  # ids outside the dataset (counted as misses)
    filter_violations: int = 0  # ids of rows the filter (or the live set) does not admit (counted as misses)


def threshold(true_kth: float, epsilon: float = DEFAULT_EPSILON) -> float:
    """Largest distance that still counts as a hit for a query whose k-th true distance is ``true_kth``."""
    return true_kth + epsilon * max(abs(true_kth), 1.0)


def valid_ids(answer: np.ndarray, n: int) -> np.ndarray:
    """The ids of an answer that are row numbers of a dataset of ``n`` rows (recall counts the others invalid)."""
    ids = np.asarray(answer, dtype=np.int64).ravel()
    return ids[(ids >= 0) & (ids < n)]


def recall_at_k(
    answers: list[np.ndarray],
    test: np.ndarray,
    train: np.ndarray,
    true_ids: np.ndarray,
    k: int,
    metric: str,
    epsilon: float = DEFAULT_EPSILON,
    allowed: np.ndarray | None = None,
) -> RecallReport:
    """Tie-aware recall@k of ``answers`` (one id array per query) against exact neighbours.

    The k-th true distance is recomputed with the same float64 function as the answers'
    distances, so rounding differences between files and engines cannot miscount a hit.
    ``allowed`` (a boolean mask over train rows) scores a filtered or changing collection: ``true_ids``
    are then the neighbours among the allowed rows, an id outside them is a miss (and counted in
    ``filter_violations``), and k shrinks to the number of allowed rows when fewer pass.
    """
    n = train.shape[0]
    asked = min(k, n)  # answers are read this far, so ids past a filter's last passing row are still counted
    k = min(k, n if allowed is None else int(allowed.sum()))  # a smaller collection can only return that many
    if true_ids.shape[1] < k:
        raise ValueError(f"ground truth holds {true_ids.shape[1]} neighbours per query, fewer than k={k}")
    if k == 0:  # nothing passes the filter: the only right answer is an empty one
        violations = sum(int(np.asarray(a).size > 0) for a in answers)
        per_query = np.array([float(np.asarray(a).size == 0) for a in answers])
        return RecallReport(float(per_query.mean()) if len(answers) else 0.0, per_query, 0, 0, 0, violations)
    per_query = np.zeros(len(answers))
    duplicates = short = invalid = violations = 0
    for i, ans in enumerate(answers):
        ans = np.asarray(ans, dtype=np.int64).ravel()[:asked]
        valid = valid_ids(ans, n)
        invalid += int(ans.size - valid.size)
        distinct = np.unique(valid)
        if distinct.size < k:  # short: fewer ids than asked, whether or not they pass (violations apart)
            short += 1
        if allowed is not None:
            admitted = valid[allowed[valid]]
            violations += int(valid.size - admitted.size)
            valid = admitted
            distinct = np.unique(valid)
        if distinct.size < valid.size:
            duplicates += 1
        if distinct.size == 0:
            continue
        kth = exact_distances(test[i], train[true_ids[i, :k]], metric).max()
        found = exact_distances(test[i], train[distinct], metric)
        per_query[i] = min(int((found <= threshold(kth, epsilon)).sum()), k) / k
    return RecallReport(float(per_query.mean()) if len(answers) else 0.0, per_query, duplicates, short, invalid,
                        violations)  # fmt: skip


def recall_ci95(per_query: np.ndarray, seed: int = CI_SEED, resamples: int = CI_RESAMPLES) -> list[float]:
    """95% interval [low, high] of mean recall over queries: a seeded percentile bootstrap over the queries.

    The queries are the sample, so the interval says how much the recall could move on another set of
    queries of the same size drawn the same way. Deterministic for given per-query recalls (fixed seed).
    An empty sample gives [0, 0]; identical per-query values give a zero-width interval.
    """
    values = np.asarray(per_query, dtype=np.float64).ravel()
    if values.size == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 250):  # chunks keep memory flat for 10k+ queries
        stop = min(start + 250, resamples)
        picks = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [float(min(low, values.mean())), float(max(high, values.mean()))]


def latency_summary(seconds: np.ndarray) -> dict[str, float]:
    """Mean and p50/p95/p99 latency in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
    }
