"""Retrieval quality against relevance labels: nDCG@10, Recall@10/100, MRR@10, TREC run files, hybrid fusion.

Called by the runner once per measured point of a labelled dataset (``Texts.qrels``), after recall
against exact neighbours is scored. Metrics come from pytrec_eval (trec_eval's own code), averaged
over every judged query with 0 for a query that got no answer (trec_eval ``-c``). Each point's
ranked answers are written as a TREC run file ``runs/<key>.trec`` beside results.jsonl, and the
qrels once per dataset as ``qrels/<dataset>.txt``, so anyone can re-score them with trec_eval.

Scores in run files: for dense stores the harness's own similarity of each returned passage to the
query (-distance, computed from the dataset's vectors: stores here return ids only), for bm25 the BM25
score bm25s returns, for hybrid the fused score ranx returns.

Hybrid (``hybrid: rrf`` on a dense store entry): the dense point's answers from its median timed pass
are fused with bm25's answers (bm25s in the harness's process, default k1/b, timed per query) by
ranx's fusion. A hybrid query's latency is the SUM of its measured dense latency and its measured bm25
latency (the legs are timed separately, as a client that calls both in sequence would pay them); QPS
is queries / the sum of those latencies. Fusion itself is not added: ranx fuses all queries in one
batch call whose cost is dominated by converting Python dicts to its numba structures, not by the
fusion a client would do on 2 × k ids; its time per query is recorded beside (``fusion``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core.distances import exact_distances
from vdbbench.core.metrics import latency_summary, valid_ids
from vdbbench.data.datasets import Dataset
from vdbbench.data.labels import qrels_tsv
from vdbbench.stores.base import BuildSpec
from vdbbench.stores.bm25.adapter import BM25Store

# pytrec_eval measure → record field; recall@100 only where k allows it.
MEASURES = {"ndcg_cut_10": "ndcg@10", "recall_10": "recall@10", "recall_100": "recall@100"}


def is_labelled(ds: Dataset) -> bool:
    return ds.text is not None and ds.text.labelled


def judged(ds: Dataset) -> dict[str, dict[str, int]]:
    """The qrels of the queries this (possibly cut) dataset asks (worked out once per dataset: ``Texts.judged``)."""
    return ds.text.judged


_EVALUATORS: dict[tuple[int, str], Any] = {}  # (id(qrels), measures) → pytrec_eval evaluator, per dataset
_FUSION_WARM: set[str] = set()  # ranx fusion methods compiled already in this process


def _evaluator(qrels: dict[str, dict[str, int]], measures: tuple[str, ...]) -> Any:
    """A pytrec_eval evaluator for these qrels, built once (it indexes the qrels on construction)."""
    import pytrec_eval

    key = (id(qrels), ",".join(measures))
    if key not in _EVALUATORS:
        _EVALUATORS[key] = (qrels, pytrec_eval.RelevanceEvaluator(qrels, set(measures)))
    held, evaluator = _EVALUATORS[key]
    if held is not qrels:  # the id was reused by another object: build afresh
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(measures))
        _EVALUATORS[key] = (qrels, evaluator)
    return evaluator


def dense_scores(ds: Dataset, answers: list[np.ndarray]) -> list[np.ndarray]:
    """Similarity (-distance, computed by the harness from the dataset's vectors) of each returned row."""
    out = []
    for q, ans in zip(ds.test, answers, strict=True):
        ids = valid_ids(ans, ds.train.shape[0])
        out.append(-exact_distances(q, ds.train[ids], ds.metric) if ids.size else np.empty(0))
    return out


def rank_scores(answers: list[np.ndarray]) -> list[np.ndarray]:
    """Scores that keep each answer's rank order, for retrievals that return ids only (bm25, native hybrid)."""
    return [np.arange(len(a), 0, -1, dtype=np.float64) for a in answers]


def to_run(ds: Dataset, answers: list[np.ndarray], scores: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """{query id: {passage id: score}} in answer order; rows outside the dataset are dropped."""
    pids, run = ds.text.passage_ids, {}
    for qid, ans, sc in zip(ds.text.query_ids, answers, scores, strict=True):
        ids = valid_ids(ans, len(pids))
        run[qid] = {pids[i]: float(s) for i, s in zip(ids.tolist(), np.asarray(sc).tolist(), strict=False)}
    return run


def evaluate(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], k: int) -> dict[str, float]:
    """nDCG@10, Recall@10, Recall@100 (k >= 100), MRR@10 by pytrec_eval, mean over judged queries (-c)."""
    names = {m: f for m, f in MEASURES.items() if m != "recall_100" or k >= 100}
    run = {q: docs for q, docs in run.items() if docs and q in qrels}
    per_query = _evaluator(qrels, ("ndcg_cut.10", "recall.10", "recall.100")).evaluate(run)
    top10 = {q: dict(sorted(docs.items(), key=lambda d: (-d[1], d[0]))[:10]) for q, docs in run.items()}
    rr = _evaluator(qrels, ("recip_rank",)).evaluate(top10)
    n = len(qrels)
    out = {field: sum(s[m] for s in per_query.values()) / n for m, field in names.items()}
    out["mrr@10"] = sum(s["recip_rank"] for s in rr.values()) / n
    return out


def untie(run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The run with no two answers of one query sharing a score, so every tool ranks it alike.

    trec_eval, ir_measures and a file's rank column each break equal scores their own way (fused RRF scores
    tie often), which gave three MRR@10 values for one run. The rule here: answers are ordered by score, equal
    scores by passage id ascending; then each score becomes a single-precision value strictly below the one
    before it (the score itself where it already is, else the next float32 below: trec_eval compares scores
    in single precision, so a smaller step would still tie there). The file keeps these values exactly."""
    out = {}
    for qid, docs in run.items():
        ordered, last = {}, np.float32(np.inf)
        for doc, score in sorted(docs.items(), key=lambda d: (-d[1], d[0])):
            last = min(np.float32(score), np.nextafter(last, np.float32(-np.inf)))
            ordered[doc] = float(last)
        out[qid] = ordered
    return out


def write_run(path: Path, run: dict[str, dict[str, float]], tag: str) -> None:
    """TREC run format: ``qid Q0 docid rank score tag``, ranks from 1 in score order (an untied run: see
    ``untie``), scores as ``%.9g``, which keeps a single-precision score exactly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in tag) or "run"
    with open(path, "w", encoding="utf-8") as f:
        for qid, docs in run.items():
            ranked = sorted(docs.items(), key=lambda d: (-d[1], d[0]))
            f.writelines(f"{qid} Q0 {doc} {rank} {score:.9g} {tag}\n" for rank, (doc, score) in enumerate(ranked, 1))


def read_run(path: Path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, {})[doc] = float(score)
    return run


def score_point(
    out_dir: Path, ds: Dataset, key: str, run: dict[str, dict[str, float]], k: int, tag: str, retrieval: str
) -> dict[str, Any]:
    """Quality fields of one point; its run file is written as ``runs/<key>.trec`` under ``out_dir``."""
    qrels = judged(ds)
    run = untie(run)  # the run file and the figures below rank the same list
    write_run(out_dir / "runs" / f"{key}.trec", run, tag)
    qrels_file = out_dir / "qrels" / f"{ds.name}.txt"
    if not qrels_file.exists():
        qrels_file.parent.mkdir(parents=True, exist_ok=True)
        qrels_file.write_text(qrels_tsv(qrels), encoding="utf-8")
    return {
        "retrieval": retrieval,
        **{name: round(value, 6) for name, value in evaluate(qrels, run, k).items()},
        "run_file": f"runs/{key}.trec",
        "qrels_file": f"qrels/{ds.name}.txt",
        "judged_queries": len(qrels),
        "label_source": ds.text.label_source,
    }


# -- hybrid ---------------------------------------------------------------------------------


@dataclass
class Leg:
    """bm25's answers to every query of a dataset, with BM25 scores and measured per-query latencies."""

    run: dict[str, dict[str, float]]
    latencies: np.ndarray
    describe: dict[str, Any]


def bm25_leg(ds: Dataset, k: int, warmup: int) -> Leg:
    """Build bm25 (default parameters) on the passages in this process; time one pass of the queries."""

    store = BM25Store(Path("."), {})
    fam = BM25Store.families["bm25"]
    store.create(BuildSpec("bm25", ds.metric, ds.dim, {p.name: p.default for p in fam.build}, len(ds.text.passages)))
    store.insert(np.arange(len(ds.text.passages), dtype=np.int64), ds.text.passages)
    store.build_index()
    for q in ds.text.queries[:warmup]:
        store.search_scored(q, k)
    answers, scores, latencies = [], [], np.empty(len(ds.text.queries))
    for i, q in enumerate(ds.text.queries):
        t0 = time.perf_counter()
        ids, sc = store.search_scored(q, k)
        latencies[i] = time.perf_counter() - t0
        answers.append(ids)
        scores.append(sc)
    effective = store.effective_config()
    return Leg(
        to_run(ds, answers, scores),
        latencies,
        {
            "store": "bm25",
            "retrieval": "bm25",
            "engine_version": store.engine_version(),
            "params": effective["params"],
            "tokenizer": effective["engine"]["tokenizer"],
            "mean_ms": float(latencies.mean() * 1e3),
        },
    )


def fuse(
    dense: dict[str, dict[str, float]], sparse: dict[str, dict[str, float]], spec: Any, k: int
) -> dict[str, dict[str, float]]:
    """ranx fusion of the two runs, top ``k`` per query. A query one leg did not answer keeps the other
    leg's ranking, which is what either fusion gives for a single list."""
    from ranx import Run
    from ranx import fuse as ranx_fuse

    both = [q for q in dense if dense[q] and sparse.get(q)]
    fused: dict[str, dict[str, float]] = {}
    if both:
        runs = [Run({q: leg[q] for q in both}, name=name) for leg, name in ((dense, "dense"), (sparse, "bm25"))]
        if spec.fusion == "rrf":
            out = ranx_fuse(runs, norm=None, method="rrf", params={"k": spec.rrf_k})
        else:
            out = ranx_fuse(runs, norm="min-max", method="wsum", params={"weights": list(spec.weights)})
        fused = {q: dict(docs) for q, docs in out.to_dict().items()}
    for q in dense:
        if q not in fused:
            fused[q] = dense[q] or sparse.get(q, {})
    return {q: dict(sorted(docs.items(), key=lambda d: -d[1])[:k]) for q, docs in fused.items()}


def _warm_up_fusion(spec: Any) -> None:
    """ranx compiles its fusion code (numba) on first use; do that once, outside the timed fusion."""
    if spec.fusion in _FUSION_WARM:
        return
    tiny = {"q": {"a": 2.0, "b": 1.0}}
    fuse(tiny, {"q": {"b": 2.0, "c": 1.0}}, spec, 2)
    _FUSION_WARM.add(spec.fusion)


def hybrid_fields(
    dense_run: dict[str, dict[str, float]], dense_latencies: np.ndarray, leg: Leg, spec: Any, k: int
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """The fused run, and the timing fields of the hybrid point (per-query latencies of both legs, summed)."""
    _warm_up_fusion(spec)
    t0 = time.perf_counter()
    fused = fuse(dense_run, leg.run, spec, k)
    fusion_s = time.perf_counter() - t0
    n = len(dense_latencies)
    latencies = np.asarray(dense_latencies) + leg.latencies
    fields = {
        "recall": None,
        "qps": n / float(latencies.sum()),
        **latency_summary(latencies),
        "fusion": {
            "method": spec.fusion,
            **({"rrf_k": spec.rrf_k} if spec.fusion == "rrf" else {"weights": list(spec.weights), "norm": "min-max"}),
            "library": f"ranx {version('ranx')}",
            "fusion_ms_per_query": fusion_s / max(n, 1) * 1e3,
        },
        "timing_note": "latency = dense latency + bm25 latency, each measured per query in its own timed loop; "
        "qps = queries / sum of latencies; fusion (ranx, one batch call) is not included: see fusion",
    }
    return fused, fields
