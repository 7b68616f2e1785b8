"""The first screen of a labelled dataset: which retrieval is best by nDCG@10, what ties with it, the fastest of
those, whether hybrid helped over each leg, and which embedding model is best.

Every comparison is ranx's paired t-test over the judged queries (``quality.paired_tests``, the same test as the
quality table's): "tied" means not significantly worse (p ≥ 0.05) or identical on every query.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from markupsafe import Markup

from vdbbench.charts.fields import fmt_num, params_text
from vdbbench.report.quality import SIGNIFICANCE, PairedTests, verdict

Record = dict[str, Any]


def retrieval_name(r: Record) -> str:
    """``hnswlib · hybrid (rrf) ef=80``: store label, retrieval kind, search parameters (the build is in the tables)."""
    kind = r.get("retrieval", "dense")
    if kind == "hybrid" and isinstance(r.get("fusion"), dict):
        kind = f"hybrid ({r['fusion'].get('method')})"
    search = {k: v for k, v in (r.get("search") or {}).items() if k != "hybrid"}
    name = str(r.get("label")) if r.get("label") == kind else f"{r.get('label')} · {kind}"  # bm25, not bm25 · bm25
    return name + (f" {params_text(search)}" if search else "")


def _p(mark: str | None, p: float | None) -> str:
    if mark == "identical":
        return "identical answers"
    if p is None:
        return mark or "significance not computed"
    return f"{mark}, p={p:.2g}" if p >= 0.001 else f"{mark}, p<0.001"


def best_and_ties(records: list[Record], tests: PairedTests | None, model: str | None,
                  note: str | None) -> list[Markup]:  # fmt: skip
    """The best retrieval by nDCG@10 with its QPS; the points not significantly worse; the fastest of those."""
    best = max(records, key=lambda r: (r["ndcg@10"], r.get("qps") or 0))
    by = "" if best.get("retrieval") == "bm25" or not model else f" with {model}"
    out = [Markup("Best retrieval by nDCG@10: <strong>{}</strong>{}, nDCG@10 {} at {} QPS.").format(
        retrieval_name(best), by, f"{best['ndcg@10']:.3f}", fmt_num(best.get("qps")))]  # fmt: skip
    if tests is None:
        out.append(Markup("Which points tie with it is not known: {}.").format(note or "no run files were found"))
        return out
    ties, unknown = [], []
    for r in sorted(records, key=lambda r: -r["ndcg@10"]):
        if r is best:
            continue
        mark, p = verdict(tests, r, best)
        if mark in ("identical", "within noise"):
            ties.append((r, mark, p))
        elif mark == "not testable":
            unknown.append(r)
    if not ties and len(unknown) < len(records) - 1:  # some were tested, none ties
        out.append(Markup("Every other retrieval tested is significantly worse (paired t-test, p < {})."
                          ).format(SIGNIFICANCE))  # fmt: skip
    elif ties:
        items = Markup("; ").join(Markup("{} {} ({})").format(retrieval_name(r), f"{r['ndcg@10']:.3f}", _p(mark, p))
                                  for r, mark, p in ties)  # fmt: skip
        fastest = max([best, *(r for r, _, _ in ties)], key=lambda r: r.get("qps") or 0)
        tail = (Markup("it is also the fastest of them") if fastest is best else
                Markup("the fastest of them is <strong>{}</strong> at {} QPS").format(
                    retrieval_name(fastest), fmt_num(fastest.get("qps"))))  # fmt: skip
        out.append(Markup("Tied with it (not significantly worse, paired t-test over the judged queries): {}; {}."
                          ).format(items, tail))  # fmt: skip
    if unknown:
        out.append(Markup("Not tested against it (no run file, or no per-query variance): {}.").format(
            ", ".join(retrieval_name(r) for r in unknown)))  # fmt: skip
    return out


def _dense_leg(h: Record, records: list[Record]) -> Record | None:
    """A hybrid point's dense leg (by key), or for a native hybrid the same store's dense point of the same build."""
    legs = h.get("legs") or []
    if legs and legs[0].get("key"):
        return next((r for r in records if r["key"] == legs[0]["key"]), None)
    search = {k: v for k, v in (h.get("search") or {}).items() if k != "hybrid"}
    return next((r for r in records if r.get("retrieval", "dense") == "dense" and r.get("label") == h.get("label")
                 and r.get("build") == h.get("build") and (r.get("search") or {}) == search), None)  # fmt: skip


def hybrid_sentences(records: list[Record], tests: PairedTests | None) -> list[Markup]:
    """One sentence per leg: did fusing help over the dense leg alone, and over bm25 alone, with Δ and p-values."""
    hybrids = [r for r in records if r.get("retrieval") in ("hybrid", "native-hybrid")]
    if not hybrids:
        return []
    bm25 = max((r for r in records if r.get("retrieval") == "bm25"), key=lambda r: r["ndcg@10"], default=None)
    legs = [("its dense leg alone", lambda h: _dense_leg(h, records)), ("bm25 alone", lambda h: bm25)]
    out = []
    for what, leg_of in legs:
        pairs = [(h, leg) for h in hybrids if (leg := leg_of(h)) is not None]
        if not pairs:
            out.append(Markup("Hybrid against {}: not measured (add {} to the sweep).").format(
                what, "{store: bm25}" if what == "bm25 alone" else "the dense point"))  # fmt: skip
            continue
        items, up, down = [], 0, 0
        for h, leg in pairs:
            mark, p = verdict(tests, h, leg)
            delta = h["ndcg@10"] - leg["ndcg@10"]
            up += mark == "significant" and delta > 0
            down += mark == "significant" and delta < 0
            items.append(
                Markup("{} {} vs {} ({}, {})").format(
                    retrieval_name(h), f"{h['ndcg@10']:.3f}", f"{leg['ndcg@10']:.3f}", f"{delta:+.3f}", _p(mark, p)
                )
            )
        said = ("helped" if up and not down else "made it worse" if down and not up else
                "mixed: helped in some, hurt in others" if up else
                "no significant difference" if tests is not None else "significance not computed")  # fmt: skip
        out.append(Markup("Hybrid against {}: <strong>{}</strong> ({} of {} significantly better, {} worse) — {}."
                          ).format(what, said, up, len(pairs), down, Markup("; ").join(items)))  # fmt: skip
    return out


def model_sentences(sections: list[dict[str, Any]]) -> dict[str, Markup]:
    """Per dataset name: which embedding model is best on its task, by what margin and p-value against the
    runner-up, read from the models table's rows (``quality.compare_models``: each model's exact point, else its
    best dense point, tested against the best model's), under the first of the task's datasets only; a single
    model gets a sentence saying so."""
    by_task: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for q in sections:
        row = q["model_row"]
        if row["ndcg"] is not None and row["model"]:
            by_task[row["task"]].append(row)
    out: dict[str, Markup] = {}
    for rows in by_task.values():
        corpus = rows[0]["corpus"]
        if len({m["model"] for m in rows}) < 2:
            for m in rows:
                out[m["dataset"]] = Markup(
                    "One embedding model was measured on {} ({}); list more under "
                    "<code>model:</code> to compare models."
                ).format(corpus, m["model"])
            continue
        top, second = sorted(rows, key=lambda m: -m["ndcg"])[:2]
        sentence = Markup("Best embedding model on {}: <strong>{}</strong> (nDCG@10 {:.3f}, {}) over {} ({:.3f}): "
                          "margin {:+.3f}, {}.").format(corpus, top["model"], top["ndcg"],
                                                        retrieval_name(top["compared_on"]), second["model"],
                                                        second["ndcg"], top["ndcg"] - second["ndcg"],
                                                        _p(second["mark"], second["p"]))  # fmt: skip
        out[rows[0]["dataset"]] = sentence  # said once, under the task's first dataset
    return out


def quality_findings(sections: list[dict[str, Any]]) -> dict[str, list[Markup]]:
    """Per labelled dataset name: the first screen's sentences, quality first."""
    models = model_sentences(sections)
    out = {}
    for q in sections:
        lines = best_and_ties(q["records"], q["tests"], q["model"], q["note"])
        lines += hybrid_sentences(q["records"], q["tests"])
        if q["name"] in models:
            lines.append(models[q["name"]])
        out[q["name"]] = lines
    return out
