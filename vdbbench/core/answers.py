"""The saved answers of a measured point, so any tool can re-derive its recall (ann-benchmarks keeps every answer).

One file per point, ``answers/<key>.npz`` beside ``results.jsonl`` (the record names it in ``answers_file``),
an uncompressed numpy ``.npz`` holding three arrays:

- ``ids``: int64, queries × k: the train row numbers the engine returned, best first; -1 where an answer was
  shorter than k (ids past k are not kept: recall reads only the first k);
- ``scores``: float64, the same shape: the score or distance the engine returned with each id, in the engine's
  own units; NaN where the answer was short or the engine gave no score for it;
- ``queries``: int64, the test rows asked, in order (row i of ``ids`` answers test row ``queries[i]``).

Size: 16 bytes × queries × k per point, plus 8 bytes per query and a few hundred bytes of header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ANSWERS_DIR = "answers"
BYTES_PER_ANSWER = 16  # one int64 id and one float64 score


@dataclass(frozen=True)
class Answers:
    """One point's saved answers: the three arrays of its file."""

    ids: np.ndarray
    scores: np.ndarray
    queries: np.ndarray

    def lists(self) -> list[np.ndarray]:
        """One id array per query, as the engine returned it (the -1 padding of short answers removed)."""
        return [row[row != -1] for row in self.ids]


def answers_path(key: str) -> str:
    """The file of point ``key``, relative to the results directory; the key made filename-safe."""
    return f"{ANSWERS_DIR}/{re.sub(r'[^A-Za-z0-9._-]', '_', key)}.npz"


def answer_arrays(answers: list[Any], k: int, scores: list[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` and ``scores`` of the format from one id array (and one score array, or None) per query."""
    ids = np.full((len(answers), k), -1, dtype=np.int64)
    out = np.full((len(answers), k), np.nan, dtype=np.float64)
    for i, answer in enumerate(answers):
        row = np.asarray(answer, dtype=np.int64).ravel()[:k]
        ids[i, : row.size] = row
        if scores is not None and scores[i] is not None:
            sc = np.asarray(scores[i], dtype=np.float64).ravel()[: row.size]
            out[i, : sc.size] = sc
    return ids, out


def save_answers(out_dir: Path, key: str, answers: list[Any], queries: np.ndarray, k: int,
                 scores: list[Any] | None = None) -> str:  # fmt: skip
    """Write point ``key``'s answers (``queries``: the test rows asked, in order); returns the record's
    ``answers_file``."""
    if len(answers) != len(queries):
        raise ValueError(f"point {key}: {len(answers)} answers for {len(queries)} queries")
    relative = answers_path(key)
    path = Path(out_dir) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    ids, sc = answer_arrays(answers, k, scores)
    with open(path, "wb") as f:  # a file object: np.savez would otherwise append .npz to a name without it
        np.savez(f, ids=ids, scores=sc, queries=np.asarray(queries, dtype=np.int64))
    return relative


def load_answers(path: Path) -> Answers:
    """Read one answers file; ValueError naming the file when it does not hold the documented arrays."""
    with np.load(path) as f:
        missing = {"ids", "scores", "queries"} - set(f.files)
        if missing:
            raise ValueError(f"{path}: no {', '.join(sorted(missing))} array: not a vdbbench answers file")
        answers = Answers(f["ids"], f["scores"], f["queries"])
    if answers.ids.shape != answers.scores.shape or answers.ids.shape[0] != answers.queries.shape[0]:
        raise ValueError(f"{path}: ids {answers.ids.shape}, scores {answers.scores.shape} and queries "
                         f"{answers.queries.shape} do not match")  # fmt: skip
    return answers
