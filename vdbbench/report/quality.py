"""The report's retrieval-quality section: nDCG@10 against QPS, the cost of each ANN setting against exact
search with a paired significance test, bm25 and hybrid rows, the models side by side, where the labels came from.

Significance: ranx's ``compare`` (paired Student's t-test over the judged queries' nDCG@10) between every two
points of a dataset, one call, read from the points' TREC run files and the qrels file beside results.jsonl. The
table shows each point against its reference: the exact dense point (a baseline's flat search) on the same dataset;
without one, the best dense point. Two points with the same nDCG@10 on every query are "identical" (the t-test is
undefined there). In the models table, datasets embedded from the same labelled task (same passages and queries,
by hash) are compared the same way: each model's exact point against the best model's. The first screen's
sentences on the same tests are in ``quality_summary.py``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdbbench.charts.fields import params_text
from vdbbench.charts.plots import COLORS, new_figure, plot_style, plot_text, png_data_uri, qps_tick
from vdbbench.data.labels import read_qrels
from vdbbench.execution.quality import read_run
from vdbbench.stores.identity import record_identity

SIGNIFICANCE = 0.05


def quality_sections(records: list[dict[str, Any]], results_dir: Path | None) -> list[dict[str, Any]]:
    """One section per labelled dataset; [] when no record carries nDCG@10."""
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r.get("status") == "ok" and isinstance(r.get("ndcg@10"), float | int):
            by_dataset[str(r["dataset"])].append(r)
    sections = [_section(name, recs, results_dir) for name, recs in by_dataset.items()]
    compare_models(sections, results_dir)
    return sections


def _reference(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    dense = [r for r in records if r.get("retrieval") == "dense"]
    exact = [r for r in dense if is_exact_baseline(r)]
    return (exact or sorted(dense, key=lambda r: -r["ndcg@10"]) or [None])[0]


def is_exact_baseline(record: dict[str, Any]) -> bool:
    """A reference implementation searching exactly: a baseline store's flat (brute-force) point."""
    return bool(record_identity(record).get("baseline")) and record.get("index") == "flat"


@dataclass
class PairedTests:
    """ranx's paired t-test of nDCG@10 between every two points given, read by record key."""

    table: dict[str, Any]

    def p(self, a: dict[str, Any], b: dict[str, Any]) -> float | None:
        """The p-value of ``a`` against ``b``; None where untested or undefined (no variance in the differences)."""
        p = ((self.table.get(a["key"]) or {}).get("comparisons") or {}).get(b["key"], {}).get("ndcg@10")
        return float(p) if p is not None and math.isfinite(p) else None

    def identical(self, a: dict[str, Any], b: dict[str, Any]) -> bool:
        """Same nDCG@10 on every judged query (no win, no loss): the t-test is undefined there, not noise."""
        wtl = ((self.table.get(a["key"]) or {}).get("win_tie_loss") or {}).get(b["key"], {}).get("ndcg@10")
        return bool(wtl) and wtl["W"] == 0 and wtl["L"] == 0


def paired_tests(records: list[dict[str, Any]], results_dir: Path) -> PairedTests:
    """ranx ``compare`` (paired Student's t-test over the judged queries) between all ``records`` with a run file,
    against the qrels file of the first; records of several datasets pair up when they ask the same queries."""
    from ranx import Qrels, Run, compare

    qrels = Qrels(read_qrels(results_dir / records[0]["qrels_file"]))
    runs = []
    for r in records:
        path = results_dir / r.get("run_file", "")
        if r.get("run_file") and path.exists():
            runs.append(Run({q: d for q, d in read_run(path).items() if d}, name=r["key"]))
    if len(runs) < 2:
        return PairedTests({})
    return PairedTests(compare(qrels, runs, ["ndcg@10"], stat_test="student", max_p=SIGNIFICANCE,
                               make_comparable=True).to_dict())  # fmt: skip


def verdict(tests: PairedTests | None, a: dict[str, Any], b: dict[str, Any]) -> tuple[str | None, float | None]:
    """How ``a`` compares with ``b``: "identical", "significant", "within noise" or "not testable", and the p-value."""
    if tests is None:
        return None, None
    if tests.identical(a, b):
        return "identical", None
    p = tests.p(a, b)
    return ("not testable" if p is None else "significant" if p < SIGNIFICANCE else "within noise"), p


def _section(name: str, records: list[dict[str, Any]], results_dir: Path | None) -> dict[str, Any]:
    ref = _reference(records)
    tests, note = None, None
    if results_dir is not None:
        try:
            tests = paired_tests(records, results_dir)
        except Exception as e:  # noqa: BLE001 - the rest of the section stands without the test
            note = f"significance not computed: {type(e).__name__}: {e}"
    rows = []
    for r in sorted(records, key=lambda r: (-r["ndcg@10"], -r.get("qps", 0))):
        delta = r["ndcg@10"] - ref["ndcg@10"] if ref is not None and r is not ref else None
        mark, p = verdict(tests, r, ref) if ref is not None and r is not ref else (None, None)
        rows.append({
            "label": r.get("label"),
            "retrieval": r.get("retrieval", "dense"),
            "params": params_text({**(r.get("build") or {}), **(r.get("search") or {})}),
            "ndcg": r["ndcg@10"],
            "recall10": r.get("recall@10"),
            "recall100": r.get("recall@100"),
            "mrr": r.get("mrr@10"),
            "recall": r.get("recall"),
            "qps": r.get("qps"),
            "p99": r.get("p99_ms"),
            "delta": delta,
            "p": p,
            "mark": mark,
            "is_reference": r is ref,
            "run_file": r.get("run_file"),
        })  # fmt: skip
    first = records[0]
    attrs = (first.get("dataset_info") or {}).get("attrs", {})
    return {
        "name": name,
        "label_source": first.get("label_source") or (first.get("dataset_info") or {}).get("label_source"),
        "judged_queries": first.get("judged_queries"),
        "model": attrs.get("model"),
        "reference": _point_name(ref) if ref else None,
        "rows": rows,
        "has_recall100": any(r["recall100"] is not None for r in rows),
        "note": note,
        "plot": ndcg_qps_plot(records),
        "model_row": model_row(name, records),
        "records": records,  # for the first screen's sentences (quality_summary.py)
        "tests": tests,
    }


def model_row(name: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """One line of the models table: the embedding model behind a labelled dataset and what it achieves.

    ``ndcg`` is the exact point's nDCG@10 (else the best dense point's), the figure models are compared on;
    ``compare_models`` adds the test against the best model on the same task. bm25 and the best fusion with
    it are shown beside, so the model, BM25 and both together read on one line.
    """
    info = records[0].get("dataset_info") or {}
    attrs = info.get("attrs", {})
    dense = [r for r in records if r.get("retrieval") == "dense"]
    exact = next((r for r in dense if is_exact_baseline(r)), None)
    best = max(dense, key=lambda r: r["ndcg@10"], default=None)
    bm25 = next((r for r in records if r.get("retrieval") == "bm25"), None)
    hybrid = max((r for r in records if r.get("retrieval") == "hybrid"), key=lambda r: r["ndcg@10"], default=None)
    index_bytes = ((exact or best or {}).get("resources") or {}).get("index_bytes")
    return {
        "dataset": name,
        "task": (attrs.get("corpus"), attrs.get("corpus_sha256"), attrs.get("queries_sha256")),
        "compared_on": exact or best,
        "ndcg": (exact or best or {}).get("ndcg@10"),
        "delta": None,
        "p": None,
        "mark": None,
        "is_best": False,
        "note": None,
        "bm25_ndcg": bm25["ndcg@10"] if bm25 else None,
        "hybrid_ndcg": hybrid["ndcg@10"] if hybrid else None,
        "hybrid_label": _point_name(hybrid) if hybrid else None,
        "corpus": attrs.get("corpus"),
        "model": attrs.get("model"),
        "revision": attrs.get("model_revision"),
        "dim": info.get("dim"),
        "max_tokens": attrs.get("max_seq_length"),
        "passages_per_s": attrs.get("passages_per_second"),
        "device": attrs.get("embed_device"),
        "device_memory": attrs.get("embed_device_memory_bytes"),
        "exact_ndcg": exact["ndcg@10"] if exact else None,
        "best_ndcg": best["ndcg@10"] if best else None,
        "best_label": _point_name(best) if best else None,
        "index_bytes": index_bytes,
    }


def compare_models(sections: list[dict[str, Any]], results_dir: Path | None) -> None:
    """Mark the best model on each labelled task and test every other model's nDCG@10 against it (in place).

    Datasets are the same task when their corpus and query texts hash alike; their exact points answer the
    same judged queries, so ranx's paired t-test over those queries applies across models.
    """
    tasks: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for section in sections:
        if section["model_row"]["ndcg"] is not None:
            tasks[section["model_row"]["task"]].append(section["model_row"])
    for rows in tasks.values():
        best = max(rows, key=lambda m: m["ndcg"])
        best["is_best"] = len(rows) > 1
        others = [m for m in rows if m is not best]
        for m in others:
            m["delta"] = m["ndcg"] - best["ndcg"]
        if not others or results_dir is None:
            continue
        ref = best["compared_on"]
        try:
            tests = paired_tests([ref, *(m["compared_on"] for m in others)], results_dir)
        except Exception as e:  # noqa: BLE001 - the table stands without the test
            best["note"] = f"significance not computed: {type(e).__name__}: {e}"
            continue
        for m in others:
            m["mark"], m["p"] = verdict(tests, m["compared_on"], ref)


def _point_name(r: dict[str, Any]) -> str:
    params = {**(r.get("build") or {}), **(r.get("search") or {})}
    return f"{r['label']} {params_text(params)}" if params else str(r["label"])


def ndcg_qps_plot(records: list[dict[str, Any]]) -> str | None:
    """nDCG@10 against QPS (log), one marker style per retrieval kind, one colour per store label."""

    points = [r for r in records if isinstance(r.get("qps"), float | int) and r["qps"] > 0]
    if not points:
        return None
    from matplotlib.ticker import FuncFormatter

    with plot_style():
        fig = new_figure(8, 4.6)
        ax = fig.add_subplot()
        labels = sorted({str(r["label"]) for r in points})
        markers = {"dense": "o", "bm25": "s", "hybrid": "^", "native-hybrid": "D"}
        for kind, marker in markers.items():
            for i, label in enumerate(labels):
                pts = [r for r in points if str(r["label"]) == label and r.get("retrieval", "dense") == kind]
                if pts:
                    ax.scatter([r["ndcg@10"] for r in pts], [r["qps"] for r in pts], color=COLORS[i % len(COLORS)],
                               marker=marker, s=40, label=plot_text(f"{label} ({kind})"))  # fmt: skip
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(qps_tick))
        ax.set_xlabel("nDCG@10 against the relevance labels")
        ax.set_ylabel("queries per second (log scale)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        return png_data_uri(fig)
