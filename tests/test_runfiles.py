"""TREC run files every tool ranks alike: no tied scores within a query, and the rank column follows the scores."""

from __future__ import annotations

import math

import ir_measures
import numpy as np
import pytrec_eval

from vdbbench.execution.quality import evaluate, read_run, untie, write_run


def tied_run() -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """RRF-like fused scores with many exact ties (two legs that rank the same documents in swapped order)."""
    rng = np.random.default_rng(4)
    run, qrels = {}, {}
    for q in range(40):
        docs = [f"d{rng.integers(0, 500)}" for _ in range(12)]
        docs = list(dict.fromkeys(docs))
        scores = {}
        for rank, doc in enumerate(docs):
            partner = len(docs) - 1 - rank  # the other leg's rank: pairs of documents share one fused score
            scores[doc] = 1 / (60 + rank + 1) + 1 / (60 + partner + 1)
        run[f"q{q}"] = scores
        qrels[f"q{q}"] = {d: int(rng.integers(1, 3)) for d in rng.choice(docs, size=2, replace=False)}
    assert sum(len(s) - len(set(s.values())) for s in run.values()) > 100  # the run is full of ties
    return run, qrels


def by_rank_column(path, qrels) -> tuple[float, float]:
    """MRR@10 and nDCG@10 computed from the file's rank column alone (scores ignored)."""
    ranked: dict[str, list[tuple[int, str]]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc, rank, _, _ = line.split()
        ranked.setdefault(qid, []).append((int(rank), doc))
    mrr = ndcg = 0.0
    for qid, rel in qrels.items():
        docs = [d for _, d in sorted(ranked[qid])][:10]
        mrr += next((1 / (i + 1) for i, d in enumerate(docs) if rel.get(d, 0) > 0), 0.0)
        dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(docs))  # trec_eval: linear gain
        ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:10]))
        ndcg += dcg / ideal
    return mrr / len(qrels), ndcg / len(qrels)


def test_untie_leaves_no_tie_and_keeps_the_order_of_distinct_scores():
    run, _ = tied_run()
    flat = untie(run)
    for qid, docs in flat.items():
        assert len(set(docs.values())) == len(docs)
        before = sorted(run[qid], key=lambda d: (-run[qid][d], d))
        assert sorted(docs, key=lambda d: -docs[d]) == before  # score order, ties by passage id


def test_trec_eval_ir_measures_and_the_rank_column_agree_on_a_run_with_tied_fused_scores(tmp_path):
    run, qrels = tied_run()
    path = tmp_path / "fused.trec"
    untied = untie(run)
    write_run(path, untied, "hybrid rrf")
    from_file = read_run(path)

    def single(r):
        return {q: {d: np.float32(s) for d, s in docs.items()} for q, docs in r.items()}

    assert single(from_file) == single(untied)  # the file keeps the single-precision scores exactly

    mrr_rank, ndcg_rank = by_rank_column(path, qrels)
    trec = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank", "ndcg_cut.10"}).evaluate(
        {q: dict(sorted(d.items(), key=lambda x: -x[1])[:10]) for q, d in from_file.items()}
    )
    mrr_trec = sum(s["recip_rank"] for s in trec.values()) / len(qrels)
    ndcg_trec = sum(s["ndcg_cut_10"] for s in trec.values()) / len(qrels)
    measured = {str(m): v for m, v in ir_measures.calc_aggregate(
        [ir_measures.RR @ 10, ir_measures.nDCG @ 10], ir_measures.read_trec_qrels(_qrels_file(tmp_path, qrels)),
        ir_measures.read_trec_run(str(path))).items()}  # fmt: skip
    ours = evaluate(qrels, untied, 10)
    for value in (mrr_trec, measured["RR@10"], ours["mrr@10"]):
        assert abs(value - mrr_rank) < 1e-9
    for value in (ndcg_trec, measured["nDCG@10"], ours["ndcg@10"]):
        assert abs(value - ndcg_rank) < 1e-9


def _qrels_file(tmp_path, qrels) -> str:
    path = tmp_path / "qrels.txt"
    path.write_text("".join(f"{q} 0 {d} {g}\n" for q, docs in qrels.items() for d, g in docs.items()))
    return str(path)
