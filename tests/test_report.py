"""The HTML report, built from the results of real small sweeps on hnswlib and exact search."""

from __future__ import annotations

import copy
import csv
import re
import warnings
from importlib.metadata import version
from pathlib import Path

import pytest
from browserkit import browser
from markupsafe import escape

from vdbbench.charts.plots import plot_text
from vdbbench.cli import main
from vdbbench.config import parse_config
from vdbbench.core.results import ResultsFile, load_results
from vdbbench.report.page import build_context, pareto_frontier, render_report, write_report
from vdbbench.stores import ADAPTERS
from vdbbench.sweep.runner import Sweep

EVIL = "<script>alert(1)</script>"
JAPANESE = "金融FAQ-ruri"
JAPANESE_LABEL = "ベクトル検索"

CONFIG = {
    "k": 10,
    "runs": 2,
    "warmup": 5,
    "datasets": [
        {"name": "syn", "synthetic": {"n": 2000, "dim": 16, "queries": 50, "seed": 1}},
        {"name": JAPANESE, "synthetic": {"n": 1500, "dim": 12, "queries": 40, "seed": 2, "metric": "angular"}},
    ],
    "stores": [
        {"store": "hnswlib", "index": "hnsw", "build": {"M": [8, 16], "ef_construction": 64},
         "search": {"ef": [10, 40, 160]}},
        {"store": "exact", "index": "flat"},
        {"store": "hnswlib", "label": EVIL, "index": "hnsw", "build": {"M": 4, "ef_construction": 8},
         "search": {"ef": [4, 8]}},
        {"store": "hnswlib", "label": JAPANESE_LABEL, "index": "hnsw", "build": {"M": 8}, "search": {"ef": 20}},
        {"store": "failing", "label": "broken-engine", "index": "flat", "options": {"fail_at": "create"}},
        {"store": "qdrant", "index": "hnsw", "build": {"m": 4, "ef_construct": 8},
         "search": {"hnsw_ef": [2, 16, 64]}},
        {"store": "milvus", "index": "ivf", "build": {"nlist": 16}, "search": {"nprobe": [1, 4, 16]}},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A real sweep, plus a skipped point, a config mismatch and an unknown measurement appended as records."""
    out = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VDBBENCH_DATA_DIR", str(out / "data"))
        mp.setitem(ADAPTERS, "failing", "storekit:FailingStore")
        counts = Sweep(parse_config(CONFIG), out / "results", raw_config=CONFIG).run()
    assert counts["failed"] == 2 and counts["ok"] == 2 * (6 + 1 + 2 + 1 + 3 + 3)
    records = load_results(out / "results")
    sink = ResultsFile(out / "results")
    base = next(r for r in records if r["label"] == "hnswlib" and r["dataset"] == "syn" and r["search"]["ef"] == 40)
    skipped = copy.deepcopy(base)
    skipped.update(key="skipped-point", search={"ef": 999}, status="skipped", error="ef above the engine's limit")
    for field in ("recall", "qps", "qps_runs", "mean_ms", "p50_ms", "p95_ms", "p99_ms"):
        skipped.pop(field)
    mismatch = copy.deepcopy(base)
    mismatch.update(key="mismatch-point", search={"ef": 41}, config_mismatch=["ef: asked 41, engine reports 64"])
    mismatch["effective"]["params"]["ef"] = 64
    extra = copy.deepcopy(base)
    extra.update(key="extra-point", search={"ef": 42}, batch_qps=123456.7, gpu={"util_share": 0.25, "name": "H100"})
    for r in (skipped, mismatch, extra):
        sink.append(r)
    return out / "results"


@pytest.fixture(scope="module")
def html(results) -> str:
    return write_report(results).read_text(encoding="utf-8")


def section(html: str, anchor: str) -> str:
    start = html.index(f'<section id="{anchor}">')
    return html[start : html.index("</section>", start)]


def test_report_shows_every_dataset_store_and_series(results, html):
    records = load_results(results)
    ctx = build_context(records)
    assert {(s.label, s.family) for s in ctx["series"]} == {(r["label"], r["index"]) for r in records}
    for s in ctx["series"]:
        assert str(escape(s.name)) in html
    assert [d["name"] for d in ctx["datasets"]] == ["syn", JAPANESE]
    assert [s.tag for s in ctx["series"]] == ["S1", "S2", "S3", "S4", "S5", "S6", "S7"]
    for d in ctx["datasets"]:
        assert f'<section id="{d["anchor"]}">' in html and f'href="#{d["anchor"]}"' in html
        # every series that measured something is on the plot's legend and in the headline table
        assert {s.tag for s in d["series"]} == {"S1", "S2", "S3", "S4", "S5", "S6", "S7"}
        assert {row["series"].tag for row in d["headline"]} == {"S1", "S2", "S3", "S4", "S6", "S7"}
        # databases first, baselines after them
        assert [row["series"].baseline for row in d["headline"]] == [False, False, True, True, True, True]
    assert html.count('src="data:image/png;base64,') == 4  # recall/QPS and build time, per dataset


def test_headline_is_the_fastest_point_meeting_each_bar(results, html):
    records = [r for r in load_results(results) if r["status"] == "ok" and r["dataset"] == "syn"]
    ctx = build_context(load_results(results))
    syn = ctx["datasets"][0]
    for row in syn["headline"]:
        mine = [r for r in records if (r["label"], r["index"]) == (row["series"].label, row["series"].family)]
        for bar, cell in zip(ctx["bars"], row["cells"], strict=True):
            meeting = [r for r in mine if r["recall_ci95"][1] >= bar]  # its recall's 95% interval reaches the bar
            if meeting:
                assert cell["qps"] == max(r["qps"] for r in meeting) and cell["recall_ci95"][1] >= bar
            else:
                assert cell is None
    exact = next(row for row in syn["headline"] if row["series"].label == "exact")
    assert all(c["recall"] == 1.0 for c in exact["cells"])
    weak = next(row for row in syn["headline"] if row["series"].label == EVIL)
    assert weak["cells"][-1] is None  # M=4, ef ≤ 8 on 2000 points does not reach 0.99
    assert "not reached" in section(html, "headline")


def test_pareto_frontier_keeps_only_undominated_points():
    pts = [{"recall": r, "qps": q} for r, q in [(0.8, 100), (0.9, 80), (0.85, 70), (0.99, 10), (0.9, 50), (0.7, 90)]]
    assert [(p["recall"], p["qps"]) for p in pareto_frontier(pts)] == [(0.8, 100), (0.9, 80), (0.99, 10)]


def test_failed_and_skipped_points_are_listed_with_their_errors(html):
    problems = section(html, "problems")
    assert problems.count("engine refused create") == 2  # one failed build per dataset, from the real runner
    assert "build failed: RuntimeError" in problems and "broken-engine" in problems
    assert "ef above the engine&#39;s limit" in problems and "status-skipped" in problems
    assert "3 point(s) did not produce a measurement" in html


def test_config_mismatch_is_highlighted_with_what_the_engine_reported(html):
    row = re.search(r'<tr class="mismatch[^"]*">(.*?)</tr>', section(html, "dataset-1"), re.S)
    assert row and "ef: asked 41, engine reports 64" in row.group(1) and "ef=64" in row.group(1)
    assert "1 point(s) ran with a configuration different from the one asked" in html


def test_unknown_numeric_fields_get_a_column_and_others_are_kept(html):
    syn = section(html, "dataset-1")
    assert "<th>batch qps" in syn and "123,457" in syn
    assert "<th>gpu: util share" in syn and "0.250" in syn  # nested numbers are flattened into columns
    assert "H100" in syn  # and what is not a number is kept under "other fields"


def test_names_from_the_config_are_escaped(html):
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert len(re.findall(r"<script\b", html)) == 1  # the report's own sorting script only


def test_japanese_text_is_intact_and_declared_utf8(html):
    assert '<meta charset="utf-8">' in html
    assert JAPANESE in html and JAPANESE_LABEL in html
    assert "Noto Sans CJK JP" in html and "Hiragino Sans" in html and "Meiryo" in html


def test_plots_with_japanese_names_never_draw_missing_glyphs(results):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)" for tofu
        render_report(load_results(results))
    text = plot_text(JAPANESE_LABEL)
    assert text is None or text == JAPANESE_LABEL  # the name, or left off (tag only) when no CJK font exists
    assert plot_text("a$b") == r"a\$b" and plot_text("_x") != "_x"


def test_report_references_nothing_outside_itself(html):
    assert not re.search(r"https?:", html)
    assert not re.search(r"<link\b", html, re.I) and "@import" not in html
    for attr, value in re.findall(r'\b(src|href)\s*=\s*"([^"]*)"', html, re.I):
        assert value.startswith("#") or (attr == "src" and value.startswith("data:image/png;base64,")), value
    assert not re.search(r"url\((?!data:)", html)


def test_provenance_names_host_packages_dataset_hashes_commit_and_config(results, html):
    r = load_results(results)[0]
    prov = section(html, "provenance")
    assert r["provenance"]["host"]["cpu"] in prov and r["provenance"]["packages"]["hnswlib"] in prov
    assert r["dataset_info"]["sha256"] in prov
    if r["provenance"]["git"]["commit"]:
        assert r["provenance"]["git"]["commit"][:12] in prov
    assert "hnswlib 0.8" in prov and "ef_construction: 64" in prov and "fail_at: create" in prov


def test_cli_report_writes_default_and_named_targets(results, tmp_path):
    assert main(["report", str(results)]) == 0 and (results / "report.html").stat().st_size > 10_000
    target = tmp_path / "reports" / "named.html"
    assert main(["report", str(results), "-o", str(target), "--baseline", str(results)]) == 0
    text = target.read_text(encoding="utf-8")
    assert "Compared with baseline" in text and "0 changed beyond noise" in text
    assert main(["report", str(tmp_path / "nowhere")]) == 2


# Every table (all <details> opened) as [id or section, its scroll width, the page's content width].
TABLE_WIDTHS = """
document.querySelectorAll("details").forEach(d => { d.open = true; });
const main = document.querySelector("main"), style = getComputedStyle(main);
const page = main.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
return Array.from(document.querySelectorAll("table")).map(
    t => [t.id || t.closest("section").id, t.scrollWidth, page, document.documentElement.scrollWidth,
          document.documentElement.clientWidth]);
"""


def overflowing_tables(driver, report: Path, width: int = 1280, media: str = "screen") -> tuple[int, list]:
    """How many tables the report has at ``width`` px (screen or print styles), and those wider than the page."""
    driver.set_window_size(width, 1000)
    driver.get(report.resolve().as_uri())
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": media})
    widths = driver.execute_script(TABLE_WIDTHS)
    return len(widths), [w for w in widths if w[1] > w[2] or w[3] > w[4]]


def test_no_table_is_wider_than_the_page_at_1280_px_or_in_print(results, tmp_path):
    report = write_report(results, tmp_path / "report.html")
    driver = browser(tmp_path)
    try:
        count, wide = overflowing_tables(driver, report)
        printed, wide_in_print = overflowing_tables(driver, report, 1000, "print")  # A4 landscape is ~1000 px wide
    finally:
        driver.quit()
    assert count == printed >= 15 and wide == [] and wide_in_print == []


def test_report_renders_in_headless_chromium_without_errors(results, tmp_path):
    from selenium.webdriver.common.by import By

    report = write_report(results, tmp_path / "report.html")
    driver = browser(tmp_path)
    try:
        driver.get(report.resolve().as_uri())
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, min(height + 100, 12000))
        images = driver.execute_script("return Array.from(document.images).map(i => i.complete && i.naturalWidth)")
        assert len(images) == 4 and all(w > 300 for w in images)  # every inline plot decoded
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
        # sorting: clicking the QPS heading orders the throughput table by QPS
        table = driver.find_element(By.ID, "dataset-1-points")
        heading = next(th for th in table.find_elements(By.TAG_NAME, "th") if th.text.startswith("QPS"))

        def qps_column() -> list[float]:
            cells = table.find_elements(By.CSS_SELECTOR, "tbody td:nth-child(5)")
            return [float(td.get_attribute("data-sort")) for td in cells]

        heading.click()
        assert qps_column() == sorted(qps_column()) and len(qps_column()) >= 6
        heading.click()
        assert qps_column() == sorted(qps_column(), reverse=True)
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    finally:
        driver.quit()
    assert errors == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 100_000


def test_concurrent_client_measurements_get_their_own_table_and_plot(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))
    cfg = {
        "k": 10, "runs": 2, "warmup": 5, "concurrency": {"clients": [1, 2], "duration_s": 0.2},
        "datasets": [{"name": "syn", "synthetic": {"n": 1000, "dim": 8, "queries": 30, "seed": 5}}],
        "stores": [{"store": "hnswlib", "index": "hnsw", "build": {"M": 8}, "search": {"ef": [10, 50]}},
                   {"store": "qdrant", "index": "hnsw", "search": {"hnsw_ef": 10}}],
    }  # fmt: skip
    Sweep(parse_config(cfg), tmp_path / "out", raw_config=cfg).run()
    records = load_results(tmp_path / "out")
    loads = [r for r in records if r.get("workload") == "concurrent"]
    assert [r["status"] for r in loads] == ["ok", "skipped"]
    html = write_report(tmp_path / "out").read_text(encoding="utf-8")
    table = html[html.index('id="dataset-1-concurrent-table"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr[ >].*?</tr>", table, re.S)
    assert len(rows) == 1 + 2 + 1  # heading + one row per client count + qdrant's skipped measurement
    for level in loads[0]["concurrency"]["levels"]:
        assert f"{level['qps']:,.0f}" in table
    assert html.count('src="data:image/png;base64,') == 3  # recall/QPS, build time, QPS vs clients
    name = f"hnswlib {version('hnswlib')} (in-process library, baseline) · hnsw"
    assert f"concurrent clients, <strong>{name}</strong> served the most" in html  # no database measured: a baseline
    text = " ".join(html.split())
    assert "<strong>3</strong> measured points (3 ok) and 2 concurrent-client measurements on" in text
    # the summary says which database has no concurrency figures, and why (the skipped record's reason)
    qdrant = f"Qdrant edge {version('qdrant-edge-py')} (embedded)"  # an embedded engine one process at a time
    assert f"No concurrency figures for {qdrant}: qdrant cannot be searched from several processes at once" in text
    assert "No batch figures" not in text  # every store here measured batch search
    # the load record is not a recall/QPS point: not in the per-point tables, the plot or the headline
    assert len(re.findall(r"<tr[^>]*>", html[html.index('id="dataset-1-points"') :].split("</table>")[0])) == 4


def test_throughput_against_clients_is_drawn_on_log_axes(monkeypatch):
    from vdbbench.charts.plots import build_series
    from vdbbench.workloads import concurrent

    figures = []
    monkeypatch.setattr(concurrent, "png_data_uri", lambda fig: figures.append(fig) or "data:")
    levels = [{"clients": c, "qps": q} for c, q in ((1, 90.0), (2, 170.0), (4, 300.0), (8, 310.0))]
    load = {"status": "ok", "label": "redis", "store": "redis", "index": "hnsw", "build": {"M": 16},
            "concurrency": {"levels": levels}}  # fmt: skip
    assert concurrent.clients_plot([load], build_series([load])) == "data:"
    ax = figures[0].axes[0]
    assert ax.get_yscale() == "log" and ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4", "8"]


def test_plots_fall_back_to_tags_when_no_cjk_font_exists(results, monkeypatch):
    import vdbbench.charts.plots as plots

    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    assert plot_text(JAPANESE_LABEL) is None and plot_text("hnswlib · hnsw") == "hnswlib · hnsw"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        html = render_report(load_results(results))
    assert JAPANESE_LABEL in html  # the HTML legend still names the series the plot shows by tag only


def test_results_with_only_failures_or_nothing_still_render(results, tmp_path):
    failed = [r for r in load_results(results) if r["status"] == "failed"]
    sink = ResultsFile(tmp_path / "failed")
    for r in failed:
        sink.append(r)
    html = write_report(tmp_path / "failed").read_text(encoding="utf-8")
    assert html.count("engine refused create") >= 2 and "No successful points to plot." in html
    assert "No point was measured successfully on this dataset." in html
    assert "<h1>" in render_report([])


def test_a_sweep_of_baselines_only_says_so_once_and_never_that_a_database_failed(results):
    baselines = [r for r in load_results(results) if r["store"] in ("hnswlib", "exact") and r["dataset"] == "syn"]
    summary = " ".join(section(render_report(baselines), "summary").split())
    assert summary.count("This sweep asked for no database on this dataset, only baselines") == 1
    assert "no database was measured successfully" not in summary.lower() and "fastest database" not in summary


# -- the first screen: which database ------------------------------------------------------
def _fastest_database(records: list[dict], target: float) -> dict | None:
    """Independently of the report: the fastest point of a non-baseline store whose recall interval reaches the
    target."""
    meeting = [r for r in records if r["status"] == "ok" and r.get("workload") != "concurrent"
               and r["store"] not in ("hnswlib", "exact") and r["recall_ci95"][1] >= target]  # fmt: skip
    return max(meeting, key=lambda r: r["qps"]) if meeting else None


def test_first_screen_names_the_fastest_database_per_target_never_a_baseline(results, html):
    records = load_results(results)
    ctx = build_context(records)
    summary = section(html, "summary")
    assert html.index('<section id="summary">') < html.index('<nav class="toc"')  # the answer comes first
    for d in ctx["datasets"]:
        mine = [r for r in records if r["dataset"] == d["name"]]
        assert [rk["target"] for rk in d["decision"]["rankings"]] == [0.90, 0.95, 0.99]
        for rk in d["decision"]["rankings"]:
            expected = _fastest_database(mine, rk["target"])
            ranked = [row for row in rk["rows"] if row["group"] == "db"]
            baselines = [row for row in rk["rows"] if row["group"] == "baseline"]
            assert {row["e"].store for row in baselines} == {"hnswlib", "exact"}
            assert all(not row["e"].engine["baseline"] for row in ranked)
            if expected is None:
                assert not ranked and "No database reached" in str(rk["sentence"])
                continue
            winner = ranked[0]["e"]
            assert winner.point["qps"] == expected["qps"] and winner.store == expected["store"]
            assert [row["p"]["qps"] for row in ranked] == sorted((row["p"]["qps"] for row in ranked), reverse=True)
            label = winner.engine["label"]
            assert f"the fastest database was <strong>{label}</strong>" in str(rk["sentence"])
            assert f"the fastest database was <strong>{label}</strong>" in summary
            # databases that missed the target (every interval below it) are listed with their best recall
            for row in rk["rows"]:
                if row["group"] == "missed":
                    theirs = [r for r in mine if r["label"] == row["e"].label and r["status"] == "ok"]
                    assert row["e"].best_recall == max(r["recall"] for r in theirs) < rk["target"]
                    assert all(r["recall_ci95"][1] < rk["target"] for r in theirs)
    assert "fastest database was <strong>hnswlib" not in summary and "fastest database was <strong>Exact" not in summary
    assert "Reference baselines: libraries, not databases to choose" in summary


def test_engine_identity_is_recorded_and_labels_every_store(results, html):
    records = [r for r in load_results(results) if r["status"] == "ok"]
    engines = {r["store"]: r["engine"] for r in records}
    edge = version("qdrant-edge-py")
    assert engines["qdrant"] == {"product": "Qdrant", "engine": "Qdrant edge", "mode": "embedded", "version": edge,
                                 "baseline": False, "label": f"Qdrant edge {edge} (embedded)"}  # fmt: skip
    assert engines["milvus"]["label"] == f"Milvus Lite {version('milvus-lite')} (embedded)"
    assert engines["hnswlib"]["baseline"] and engines["exact"]["baseline"]
    assert engines["hnswlib"]["label"] == f"hnswlib {version('hnswlib')} (in-process library, baseline)"
    for engine in engines.values():
        assert engine["label"] in html
    # the embedded stand-ins are called out on the first screen, in one sentence
    lite = version("milvus-lite")
    stand_ins = (f"the Qdrant figures are for Qdrant edge {edge} (embedded), not a Qdrant server",
                 f"the Milvus figures are for Milvus Lite {lite} (embedded), not a Milvus server")  # fmt: skip
    assert any(f"{a[0].upper()}{a[1:]}; {b}." in html for a, b in (stand_ins, stand_ins[::-1]))
    # old records without the field get the same identity, derived from store and engine_version
    old = [{k: v for k, v in r.items() if k != "engine"} for r in records]
    derived = {s.store: s.engine for s in build_context(old)["series"]}
    assert {k: derived[k] for k in engines} == engines


def test_ranking_prefers_points_tuned_for_the_target_and_shows_cost_and_ndcg(results):
    from vdbbench.charts.ranking import rank
    from vdbbench.workloads import is_ranked

    records = [r for r in load_results(results) if r["dataset"] == "syn" and r["status"] == "ok"]
    graph = max((r for r in records if r["store"] == "qdrant"), key=lambda r: r["recall"])
    lists = max((r for r in records if r["store"] == "milvus"), key=lambda r: r["recall"])
    tuned = copy.deepcopy(graph)
    tuned.update(key="tuned", target_recall=0.9, target_reached=True, qps=graph["qps"] / 10, recall=0.91,
                 recall_ci95=[0.88, 0.94], qps_runs=[graph["qps"] / 10], tuning_queries=25,
                 evaluation_queries=25)  # fmt: skip
    missed = copy.deepcopy(lists)
    missed.update(key="missed", target_recall=0.9, target_reached=False, recall=0.42, recall_ci95=[0.38, 0.46])
    host = {"price_per_hour": 116.0, "currency": "JPY"}
    extra = [dict(r, host=host, **{"ndcg@10": 0.5}) for r in [*records, tuned, missed]]
    at90 = rank(extra, (0.9,), ranked=is_ranked)[0]
    by_store = {e.store: e for e in at90.databases + at90.missed}
    assert by_store["qdrant"].point["key"] == "tuned" and by_store["qdrant"].tuned  # not the faster explicit point
    assert not by_store["milvus"].reached and by_store["milvus"].tuned  # its held-out interval lies below 0.9
    assert by_store["milvus"].best_recall == max(r["recall"] for r in records if r["store"] == "milvus")
    assert by_store["qdrant"].cost == pytest.approx(116.0 / (graph["qps"] / 10 * 3600) * 1e6)
    html = render_report(extra)
    summary = section(html, "summary")
    assert "<th>JPY per 1M queries</th>" in summary and "<th>nDCG@10</th>" in summary
    assert "JPY per million queries" in summary and "tuned for this target" in summary


def test_saturated_recall_is_called_out(results):
    records = load_results(results)
    assert "Recall saturates" not in render_report(records)  # recall moves on the test data
    easy = [dict(r, recall=0.995, recall_ci95=[0.99, 0.999]) if is_number_ok(r) else r for r in records]
    html = render_report(easy)
    summary = " ".join(section(html, "summary").split())
    assert "Recall saturates on this dataset" in summary and "harder data" in html
    # it counts the points it speaks of, per database, and says the baselines are not among them
    for store in ("qdrant", "milvus"):
        mine = [r for r in easy if r["store"] == store and r["dataset"] == "syn" and is_number_ok(r)]
        assert f"{mine[0]['engine']['label']}: {len(mine)} of {len(mine)}" in summary
    assert "settings; baselines not counted" in summary
    # the same winner at every target is said once per dataset, not once per target
    assert summary.count("the fastest database was") == 2
    assert summary.count("At recall ≥ 0.90, 0.95 and 0.99, the fastest database was") == 2


def test_targets_every_cheapest_setting_meets_are_called_out(results):
    records = load_results(results)
    assert "cheapest setting already qualifies" not in render_report(records)
    easy = [dict(r, recall=0.96, recall_ci95=[0.955, 0.965]) if is_number_ok(r) else r for r in records]
    summary = section(render_report(easy), "summary")
    assert "At recall ≥ 0.90 and 0.95 every database&#39;s cheapest setting already qualifies" in summary
    assert "Recall saturates" not in summary  # 0.96 is below the top target


def test_missing_batch_figures_are_explained(results):
    records = load_results(results)
    no_batch = [{k: v for k, v in r.items() if k != "batch"} if r["store"] == "qdrant" else r for r in records]
    summary = " ".join(section(render_report(no_batch), "summary").split())
    assert "No batch figures for Qdrant" in summary and "the sweep recorded no batch measurement for it" in summary
    assert "No batch figures for Milvus" not in summary
    off = [copy.deepcopy(r) for r in no_batch]
    for r in off:
        r["provenance"]["config"]["batch_size"] = 0
    assert "No batch figures: batch search was switched off (batch_size: 0)." in render_report(off)


def is_number_ok(r: dict) -> bool:
    return r["status"] == "ok" and isinstance(r.get("recall"), float | int)


# -- export ----------------------------------------------------------------------------------
def test_export_opens_in_pandas_with_one_row_per_point(results, html):
    pd = pytest.importorskip("pandas")
    records = [r for r in load_results(results) if r.get("workload") != "concurrent"]
    frame = pd.read_csv(results / "points.csv")
    assert len(frame) == len(records) and frame["key"].tolist() == [r["key"] for r in records]
    for column in ("dataset", "store", "engine", "family", "build", "search", "build.m", "search.ef", "recall",
                   "qps", "p50_ms", "p95_ms", "p99_ms", "build_s", "memory_bytes", "status", "error"):  # fmt: skip
        assert column in frame.columns, column
    row = frame.set_index("key").loc["mismatch-point"]
    source = next(r for r in records if r["key"] == "mismatch-point")
    assert row["recall"] == pytest.approx(source["recall"]) and row["search.ef"] == 41 and row["search"] == "ef=41"
    assert row["engine"] == source["engine"]["label"] and row["config_mismatch"] == "ef: asked 41, engine reports 64"
    assert [row["recall_ci95_low"], row["recall_ci95_high"]] == pytest.approx(source["recall_ci95"])
    failed = frame[frame["status"] == "failed"]
    assert len(failed) == 2 and failed["error"].str.contains("engine refused create").all()
    parquet = pd.read_parquet(results / "points.parquet")
    assert len(parquet) == len(records) and list(parquet.columns) == list(frame.columns)
    assert parquet["qps"].dtype.kind == "f" and parquet["baseline"].dtype.kind == "b"
    with open(results / "points.csv", encoding="utf-8", newline="") as f:
        assert JAPANESE in {r["dataset"] for r in csv.DictReader(f)}


def test_sweep_without_report_still_writes_the_export(tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas")
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))
    config = tmp_path / "c.yaml"
    config.write_text("k: 5\nruns: 1\nwarmup: 0\ndatasets: [{name: t, synthetic: {n: 300, dim: 4, queries: 10}}]\n"
                      "stores: [{store: exact, index: flat}]\n")  # fmt: skip
    assert main(["sweep", "-c", str(config), "-o", str(tmp_path / "out"), "--no-report"]) == 0
    assert not (tmp_path / "out" / "report.html").exists()
    frame = pd.read_csv(tmp_path / "out" / "points.csv")
    assert frame[["store", "recall", "status"]].values.tolist() == [["exact", 1.0, "ok"]]
