"""The defects found by probing (issue 23): each bad input gets a clear refusal naming the field before anything
starts (no output directory), or a correct record; no result file ever holds NaN or Infinity."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from vdbbench.config import ConfigError, parse_config
from vdbbench.core.results import ResultsFile, load_results
from vdbbench.data.corpora import CorpusError
from vdbbench.data.datasets import DatasetError, load_hdf5, save_hdf5, synthetic
from vdbbench.data.labels import read_qrels
from vdbbench.sweep.runner import Sweep

N = 2000


@pytest.fixture
def attributed(tmp_path) -> Path:
    train, test = synthetic(N, 16, 60, "euclidean", clusters=8, seed=3)
    rng = np.random.default_rng(1)
    attrs = {"dept": rng.choice(np.array(["loans", "fx"]), size=N, p=[0.9, 0.1]), "year": rng.integers(2000, 2025, N)}
    return save_hdf5(tmp_path / "attributed.hdf5", train, test, "euclidean", attributes=attrs)


def config(path: Path, store: dict | None = None, **over):
    raw = {"k": 10, "runs": 1, "warmup": 5, "stores": [store or {"store": "exact"}],
           "datasets": [{"name": "attributed", "path": str(path), **over.pop("dataset", {})}]}  # fmt: skip
    return parse_config({**raw, **over})


@pytest.mark.parametrize("flt", [{"dept": "nosuchdept"}, {"year": {"gt": 3000}}, {"year": {"gte": 2024, "lt": 2020}}])
def test_a_filter_that_passes_no_row_is_refused_with_the_count(tmp_path, attributed, flt):
    with pytest.raises(ConfigError) as e:
        Sweep(config(attributed, dataset={"filters": [flt]}), tmp_path / "out").run()
    assert "datasets[0].filters[0]: " in str(e.value)
    assert f"passes 0 of {N:,} rows" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_a_string_attribute_that_is_not_utf8_names_its_column_and_row(tmp_path, attributed):
    with h5py.File(attributed, "a") as f:
        del f["attributes/dept"]
        values = [b"loans"] * N
        values[7] = b"\xff\xfebad"
        f["attributes"].create_dataset("dept", data=values, dtype=h5py.string_dtype("utf-8"))
    with pytest.raises(DatasetError, match=r"attributes/dept: row 7 is not UTF-8 text"):
        load_hdf5(attributed)


def test_churn_with_more_batches_than_inserted_rows_is_refused_before_start(tmp_path, attributed):
    store = {"store": "hnswlib", "churn": {"insert": 0.001, "delete": 0.0, "batches": 50}}
    with pytest.raises(ConfigError) as e:
        Sweep(config(attributed, store), tmp_path / "out").run()
    assert "stores[0].churn: insert 0.001 of 2,000 rows holds back 2 row(s), fewer than batches 50" in str(e.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("store", "over", "field"),
    [
        ({"store": "hnswlib", "churn": {"insert": math.nan}}, {}, "stores[0].churn.insert"),
        ({"store": "hnswlib", "churn": {"settle_s": math.inf}}, {}, "stores[0].churn.settle_s"),
        ({"store": "exact"}, {"host": {"price_per_hour": math.inf, "currency": "USD"}}, "host.price_per_hour"),
        ({"store": "exact", "hybrid": {"fusion": "weighted", "weights": [0.5, math.nan]}}, {},
         "stores[0].hybrid.weights[1]"),
    ],
)  # fmt: skip
def test_non_finite_numbers_are_refused_naming_the_field(attributed, store, over, field):
    with pytest.raises(ConfigError) as e:
        config(attributed, store, **over)
    assert field in str(e.value) and "finite number" in str(e.value)


def test_negative_fusion_weights_are_refused(attributed):
    with pytest.raises(ConfigError, match=r"weights must be >= 0 and not all 0"):
        config(attributed, {"store": "exact", "hybrid": {"fusion": "weighted", "weights": [-1, 1]}})


def test_an_rrf_k_native_hybrid_would_not_honour_is_refused(attributed):
    with pytest.raises(ConfigError, match=r"stores\[0\]\.hybrid: rrf_k 30 with native: true: .* RRF k 60"):
        config(attributed, {"store": "lancedb", "index": "flat", "hybrid": {"rrf_k": 30, "native": True}})
    config(attributed, {"store": "lancedb", "index": "flat", "hybrid": {"rrf_k": 30}})  # ranx fusion alone takes it


def test_a_price_of_true_is_no_number(attributed):
    with pytest.raises(ConfigError) as e:
        config(attributed, host={"price_per_hour": True, "currency": "USD"})
    assert "host.price_per_hour" in str(e.value) and "valid number" in str(e.value)


def test_the_results_writer_refuses_nan_and_names_the_field(tmp_path):
    results = ResultsFile(tmp_path)
    with pytest.raises(ValueError, match=r"record k1: latency.p99 is not a finite number"):
        results.append({"key": "k1", "latency": {"p50": 1.0, "p99": float("nan")}})
    results.append({"key": "k2", "qps": 3.0})
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["k2"]


def test_a_fractional_relevance_score_is_refused(tmp_path):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t1.5\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"line 3: field 'score' must be an integer .* got '1.5'"):
        read_qrels(qrels)
    qrels.write_text("q1\td1\t2.0\n", encoding="utf-8")
    assert read_qrels(qrels) == {"q1": {"d1": 2}}


def test_an_unknown_secret_named_option_names_the_store_unmasked(tmp_path):
    from vdbbench.core.provenance import redact_text

    with pytest.raises(ConfigError) as e:
        parse_config({"datasets": [{"name": "s", "synthetic": {"n": 100}}],
                      "stores": [{"store": "hnswlib", "options": {"password": "hunter2"}}]})  # fmt: skip
    shown = redact_text(str(e.value))  # what the CLI prints
    assert "stores[0].options.password - hnswlib has no option 'password'" in shown
    assert "hunter2" not in shown


def test_report_readers_warn_about_unknown_fields_and_newer_schemas(tmp_path, caplog):
    (tmp_path / "results.jsonl").write_text(
        json.dumps({"schema": 2, "key": "a", "status": "ok", "workload": "knn", "mystery": 1}) + "\n"
        + json.dumps({"schema": 3, "key": "b", "status": "ok", "workload": "future"}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        records = load_results(tmp_path)
    assert {r["key"]: r["schema"] for r in records} == {"a": 2, "b": 3}  # schema 3 is not relabelled
    text = caplog.text
    assert "1 record(s) were written in schema 3, newer than this vdbbench's 2" in text
    assert "fields this vdbbench does not know: mystery" in text


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"store": "pgvector", "index": "hnsw", "options": {"dsn": 12345}},
         "stores[0].options.dsn: expects a string such as 'postgresql://user@host:5432/db', got 12345"),
        ({"store": "milvus", "index": "hnsw", "options": {"token": "root:Milvus"}},
         "stores[0].options.token: a token is for a Milvus server, and none is named"),
    ],
)  # fmt: skip
def test_option_values_a_store_cannot_use_are_refused_before_start(tmp_path, attributed, store, message, monkeypatch):
    monkeypatch.delenv("VDBBENCH_MILVUS_URL", raising=False)
    with pytest.raises(ConfigError) as e:
        Sweep(config(attributed, store), tmp_path / "out").run()
    assert message in str(e.value)
    assert "root:Milvus" not in str(e.value)
    assert not (tmp_path / "out").exists()
