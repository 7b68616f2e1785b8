"""Corpus readers, their error messages, the built-in corpora extractors, and ann-benchmarks downloads."""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import threading
from functools import partial

import numpy as np
import pytest

from vdbbench.data import corpora
from vdbbench.data.corpora import CorpusError, load_corpus, read_passages, read_texts, roff_paragraphs
from vdbbench.data.datasets import KNOWN, DatasetError, save_hdf5

PASSAGES = ["東京は日本の首都です。", "The bank raised interest rates.", "株式市場は急落した。"]


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path / "data"))


# -- user files ----------------------------------------------------------------------------


def test_txt_one_passage_per_line_blank_lines_skipped(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("\ufeff" + PASSAGES[0] + "\n\n  " + PASSAGES[1] + "  \r\n" + PASSAGES[2] + "\n", encoding="utf-8")
    assert read_texts(f) == PASSAGES  # BOM and CRLF handled, whitespace trimmed


def test_jsonl_with_configurable_field(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text("\n".join(json.dumps({"body": t, "id": i}, ensure_ascii=False) for i, t in enumerate(PASSAGES)))
    assert read_texts(f, "body") == PASSAGES
    with pytest.raises(CorpusError, match=r"line 1 has no field 'text' \(it has \['body', 'id'\]\).*--text-field"):
        read_texts(f)


def test_jsonl_bad_line_is_named(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"text": "ok"}\n{"text": \n')
    with pytest.raises(CorpusError, match="c.jsonl line 2 is not valid JSON"):
        read_texts(f)


def test_csv_text_column_with_quoted_newlines(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text(
        'id,text\n1,"東京は日本の首都です。"\n2,"The bank raised\ninterest rates."\n3,株式市場は急落した。\n',
        encoding="utf-8",
    )
    assert read_texts(f) == PASSAGES
    with pytest.raises(CorpusError, match=r"no column 'body' \(columns: \['id', 'text'\]\)"):
        read_texts(f, "body")


def test_parquet_text_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": PASSAGES + [None], "n": [1, 2, 3, 4]}), f)
    assert read_texts(f) == PASSAGES  # a null row is skipped
    with pytest.raises(CorpusError, match="no column 'body'"):
        read_texts(f, "body")


def test_max_passages_and_stable_hash(tmp_path):
    txt, jsonl = tmp_path / "a.txt", tmp_path / "b.jsonl"
    txt.write_text("\n".join(PASSAGES), encoding="utf-8")
    jsonl.write_text("\n".join(json.dumps({"text": t}) for t in PASSAGES))
    a, b = load_corpus(txt), load_corpus(jsonl)
    assert a.sha256 == b.sha256  # the hash is of the texts, not the file format
    assert load_corpus(txt, max_passages=2).passages == PASSAGES[:2]


# -- errors name the file and the fix --------------------------------------------------------


def test_empty_corpus(tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("\n  \n")
    with pytest.raises(CorpusError, match=r"empty.txt holds no text; give a file with at least one"):
        read_texts(f)


def test_shift_jis_corpus_names_byte_line_and_encoding(tmp_path):
    f = tmp_path / "sjis.txt"
    f.write_bytes(b"ok line\n" + "東京は日本の首都です。\n".encode("cp932"))
    with pytest.raises(CorpusError) as e:
        read_texts(f)
    msg = str(e.value)
    assert "sjis.txt is not UTF-8 at byte 8 (line 2); re-save it as UTF-8" in msg
    assert "Shift_JIS/CP932" in msg and "iconv -f CP932 -t UTF-8" in msg


@pytest.mark.parametrize("codec", ["cp932", "euc_jp", "utf-16"])
def test_printed_iconv_command_converts_the_file_into_a_readable_corpus(tmp_path, codec):
    """The hint is run as printed (a path with a space and Japanese in its name) and must yield the same text."""
    import shlex
    import subprocess

    text = "東京は日本の首都です。\n金融機関の文書を検索します。\n"
    f = tmp_path / "my corpus" / f"日本語 {codec}.txt"
    f.parent.mkdir()
    f.write_bytes(text.encode(codec))
    with pytest.raises(CorpusError) as e:
        read_texts(f)
    message = str(e.value)
    command = message[message.index("iconv ") :].removesuffix(")")
    assert shlex.split(command)[5] == str(f)
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    converted = f.with_name(f"{f.stem}.utf8.txt")
    assert converted.read_text(encoding="utf-8").lstrip("\ufeff") == text
    assert read_texts(converted) == text.splitlines()


def test_utf16_corpus(tmp_path):
    f = tmp_path / "u16.txt"
    f.write_bytes("テキスト\n".encode("utf-16"))
    with pytest.raises(CorpusError, match="UTF-16 text, not UTF-8; re-save it as UTF-8"):
        read_texts(f)


def test_missing_unreadable_and_unknown_format(tmp_path):
    with pytest.raises(CorpusError, match=r"nope.txt does not exist.*wordnet-en, manpages-ja"):
        load_corpus(tmp_path / "nope.txt")
    f = tmp_path / "locked.txt"
    f.write_text("x")
    f.chmod(0)
    try:
        if os.access(f, os.R_OK):  # root reads anything: nothing to test then
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(CorpusError, match="cannot read corpus file .*locked.txt.*permissions"):
            read_texts(f)
    finally:
        f.chmod(0o644)
    with pytest.raises(CorpusError, match=r"unknown format '.docx'; use one of .txt, .jsonl, .csv, .parquet"):
        read_texts(tmp_path / "x.docx")


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "dir.txt").mkdir()
    with pytest.raises(CorpusError, match="dir.txt is a directory: give one .txt/.jsonl/.csv/.parquet file"):
        read_texts(tmp_path / "dir.txt")


# -- attributes from corpus metadata ----------------------------------------------------------

RECORDS = [  # a string, an int, a float and a date field; the second record has no text and is skipped
    {"text": PASSAGES[0], "dept": "loans", "year": 2019, "score": 0.5, "published": "2024-01-31"},
    {"text": "  ", "dept": "cards", "year": 2020, "score": 1.5, "published": "2024-02-01"},
    {"text": PASSAGES[1], "dept": "fx", "year": 2021, "score": 2, "published": "2024-02-29T23:30:00+09:00"},
    {"text": PASSAGES[2], "dept": "loans", "year": 2022, "score": -1.25, "published": "2023-12-01 08:00"},
]


def jsonl(path, records):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), encoding="utf-8")
    return path


def test_jsonl_attributes_are_typed_and_follow_the_kept_passages(tmp_path):
    c = read_passages(jsonl(tmp_path / "c.jsonl", RECORDS), attributes=("dept", "year", "score", "published"))
    assert c.passages == PASSAGES  # the empty passage and its values are gone together
    assert c.attributes["dept"].dtype.kind == "U" and c.attributes["dept"].tolist() == ["loans", "fx", "loans"]
    assert c.attributes["year"].dtype == np.int64 and c.attributes["year"].tolist() == [2019, 2021, 2022]
    assert c.attributes["score"].dtype == np.float64 and c.attributes["score"].tolist() == [0.5, 2.0, -1.25]
    # ISO dates, with or without a time, become YYYYMMDD as written (the time zone does not move the day)
    assert c.attributes["published"].dtype == np.int64
    assert c.attributes["published"].tolist() == [20240131, 20240229, 20231201] and c.dates == ["published"]
    assert c.describe_attributes() == "dept str, year int, score float, published int YYYYMMDD"
    assert read_passages(tmp_path / "c.jsonl").attributes == {}  # none asked, none read
    cut = load_corpus(tmp_path / "c.jsonl", max_passages=2, attributes=("year",))
    assert cut.passages == PASSAGES[:2] and cut.attributes["year"].tolist() == [2019, 2021]


def test_jsonl_attribute_from_the_metadata_object_and_strings_that_are_partly_dates(tmp_path):
    records = [
        {"text": "a", "metadata": {"region": "jp"}, "code": "2024-01-01"},
        {"text": "b", "metadata": {"region": "us"}, "code": "A-17"},
    ]
    c = read_passages(jsonl(tmp_path / "c.jsonl", records), attributes=("region", "code"))
    assert c.attributes["region"].tolist() == ["jp", "us"]
    assert c.attributes["code"].tolist() == ["2024-01-01", "A-17"] and c.dates == []  # not all dates: strings


def test_csv_attributes_are_typed_from_their_cells(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text(
        "text,dept,year,score,published,code\n"
        f"{PASSAGES[0]},loans,2019,0.5,2024-01-31,007\n"
        f'"{PASSAGES[1]}",,2021,2,2024-02-29,x1\n'
        f"{PASSAGES[2]},fx,2022,1e-3,2023-12-01,12\n",
        encoding="utf-8",
    )
    c = read_passages(f, attributes=("dept", "year", "score", "published", "code"))
    assert c.attributes["dept"].tolist() == ["loans", "", "fx"]  # an empty cell of a string column is ''
    assert c.attributes["year"].dtype == np.int64 and c.attributes["year"].tolist() == [2019, 2021, 2022]
    assert c.attributes["score"].dtype == np.float64 and c.attributes["score"].tolist() == [0.5, 2.0, 0.001]
    assert c.attributes["published"].tolist() == [20240131, 20240229, 20231201]
    assert c.attributes["code"].tolist() == ["007", "x1", "12"]  # not all integers: the cells as written


def test_parquet_attributes_with_date_and_timestamp_columns(tmp_path):
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "c.parquet"
    table = {
        "text": [PASSAGES[0], None, PASSAGES[1], PASSAGES[2]],
        "dept": ["loans", "cards", "fx", "loans"],
        "year": pa.array([2019, 2020, 2021, 2022], pa.int32()),
        "score": [0.5, 1.5, 2.0, -1.25],
        "day": pa.array([datetime.date(2024, 1, d) for d in (1, 2, 3, 4)], pa.date32()),
        "at": pa.array([datetime.datetime(2024, 3, d, 23, 59) for d in (1, 2, 3, 4)], pa.timestamp("s")),
    }
    pq.write_table(pa.table(table), f)
    c = read_passages(f, attributes=("dept", "year", "score", "day", "at"))
    assert c.passages == PASSAGES
    assert c.attributes["dept"].tolist() == ["loans", "fx", "loans"] and c.attributes["year"].dtype == np.int64
    assert c.attributes["year"].tolist() == [2019, 2021, 2022] and c.attributes["score"].tolist() == [0.5, 2, -1.25]
    assert c.attributes["day"].tolist() == [20240101, 20240103, 20240104]
    assert c.attributes["at"].tolist() == [20240301, 20240303, 20240304] and c.dates == ["day", "at"]


@pytest.mark.parametrize(
    ("records", "name", "message"),
    [
        ([{"text": "a", "dept": "x"}, {"text": "b"}], "dept", r"'dept' of .*c.jsonl is missing or null in line 2"),
        ([{"text": "a", "dept": None}], "dept", r"'dept' .* is missing or null in every record"),
        ([{"text": "a", "year": 2020}, {"text": "b", "year": "2021"}], "year", r"mixes numbers and strings "
         r"\(line 1: 2020, line 2: '2021'\); give it one type in every record, or remove it from text.attributes"),
        ([{"text": "a", "dept": "x"}], "dpet", r"no record of .*c.jsonl has a field 'dpet' \(the first has "
         r"\['dept', 'text'\]\)"),
        ([{"text": "a", "ok": True}], "ok", r"line 1 holds True; .*store booleans as 0/1"),
        ([{"text": "a", "tags": ["x"]}], "tags", r"line 1 holds \['x'\]; .*flatten lists and objects"),
        ([{"text": "a", "day": "2023-02-30"}], "day", r"line 1 holds '2023-02-30', .* no such day exists"),
        ([{"text": "a", "v": float("nan")}], "v", r"line 1 holds nan; an attribute value is .* a finite number"),
    ],
)  # fmt: skip
def test_attribute_errors_name_the_setting_field_row_and_fix(tmp_path, records, name, message):
    with pytest.raises(CorpusError, match=r"^text\.attributes \(--attribute\): .*" + message):
        read_passages(jsonl(tmp_path / "c.jsonl", records), attributes=(name,))


def test_attribute_not_in_a_csv_parquet_or_txt_corpus(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "c.csv").write_text("text,dept\na,x\n")
    with pytest.raises(
        CorpusError, match=r"text.attributes .*c.csv has no column 'year' \(columns: \['text', 'dept'\]\)"
    ):
        read_passages(tmp_path / "c.csv", attributes=("year",))
    (tmp_path / "c2.csv").write_text("text,year\na,2020\nb,\n")
    with pytest.raises(CorpusError, match=r"field 'year' of .*c2.csv is missing or null in row 2"):
        read_passages(tmp_path / "c2.csv", attributes=("year",))
    pq.write_table(pa.table({"text": ["a"]}), tmp_path / "c.parquet")
    with pytest.raises(CorpusError, match=r"c.parquet has no column 'year' \(columns: \['text'\]\)"):
        read_passages(tmp_path / "c.parquet", attributes=("year",))
    (tmp_path / "c.txt").write_text("a\n")
    with pytest.raises(CorpusError, match=r"c.txt is plain text.*give a .jsonl, .csv or .parquet corpus"):
        read_passages(tmp_path / "c.txt", attributes=("year",))


def test_beir_titles_and_metadata_fields_as_attributes(tmp_path):
    from vdbbench.data.labels import load_beir

    folder = tmp_path / "set"
    (folder / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "d1", "title": "Yen", "text": "The yen fell.", "metadata": {"year": 2020}},
        {"_id": "d2", "title": "", "text": "Rates rose.", "metadata": {"year": 2021}},
        {"_id": "d3", "title": "Bonds", "text": "Yields rose.", "metadata": {"year": 2022}},
    ]
    jsonl(folder / "corpus.jsonl", docs)
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "yen"}\n')
    (folder / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    got = load_beir(folder, attributes=("title", "year"))
    assert got.attributes["title"].tolist() == ["Yen", "", "Bonds"] and got.attributes["year"].tolist() == [
        2020,
        2021,
        2022,
    ]
    cut = got.cut(2)
    assert cut.passages == ["Yen The yen fell.", "Rates rose."] and cut.attributes["year"].tolist() == [2020, 2021]
    with pytest.raises(CorpusError, match=r"field 'url' of .*corpus.jsonl is missing or null in every record"):
        load_beir(folder, attributes=("url",))


# -- built-in corpora -------------------------------------------------------------------------


def test_roff_markup_stripped_to_paragraphs():
    page = r""".\" a comment
.TH LS 1 "2021" "GNU"
.SH 名前
ls \- ディレクトリの内容を
リスト表示する
.PP
\fB\-a\fR, \fB\-\-all\fR で始まる要素を無視しない\(em 例
.TP
.BR \-l " (long)"
詳細な形式で
表示する。
.de XX
hidden macro body
..
.It Fl v Ar file
.Xr ls 1
を参照
"""
    assert roff_paragraphs(page) == [
        "ls - ディレクトリの内容をリスト表示する",  # Japanese lines joined without a space
        "-a, --all で始まる要素を無視しない— 例",
        "-l (long) 詳細な形式で表示する。",
        "-v file ls(1) を参照",
    ]


@pytest.mark.skipif(not corpora.WORDNET_DIR.joinpath("data.noun").exists(), reason="wordnet-base not installed")
def test_wordnet_extractor_counts_and_text():
    passages = list(corpora.wordnet_passages())
    assert 117_000 <= len(passages) <= 118_500  # WordNet 3.0 has 117,659 synsets
    texts = dict((src, t) for t, src in passages)
    assert texts["wordnet/noun/00001740"].startswith("entity: that which is perceived or known")
    assert not any("_" in t.split(":")[0] or " | " in t for t, _ in passages[:5000])


@pytest.mark.skipif(not corpora.MANPAGES_JA_DIR.joinpath("man1").exists(), reason="manpages-ja not installed")
def test_manpages_ja_extractor_counts_and_clean_text():
    extracted = list(corpora.manpages_ja_passages())
    passages = [t for t, _ in extracted]
    assert 25_000 <= len(passages) <= 36_000  # ~30k paragraphs in Debian's manpages-ja
    assert len(set(passages)) == len(passages)
    japanese = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    assert all(japanese.search(t) and len(t) >= 20 for t in passages)
    # roff escapes gone (a handful of groff's own pages quote escapes as literal text: allowed)
    leftovers = [t for t in passages if re.search(r"\\f[BIRP]|\\-|\\&|\\\(", t)]
    assert len(leftovers) <= 5, leftovers[:5]
    # no macro lines left as text, except in section 7's pages that document the roff macros themselves
    assert not any(t.startswith((".TH", ".SH", ".PP", ".TP", ".B ")) for t, src in extracted if src[:4] != "man7")


def test_prepare_corpus_writes_jsonl_once(tmp_path, monkeypatch):
    calls = []

    def fake_extract():
        calls.append(1)
        yield "alpha passage", "s1"
        yield "beta passage", "s2"

    spec = corpora.BUILTIN["wordnet-en"]
    monkeypatch.setitem(
        corpora.BUILTIN,
        "wordnet-en",
        corpora.BuiltinCorpus(spec.name, spec.description, spec.package, tmp_path, fake_extract),
    )
    path = corpora.prepare_corpus("wordnet-en")
    assert path == tmp_path / "data" / "corpora" / "wordnet-en.jsonl"
    assert load_corpus("wordnet-en").passages == ["alpha passage", "beta passage"]
    assert len(calls) == 1  # the second use read the prepared file


def test_missing_debian_package_is_named(tmp_path, monkeypatch):
    spec = corpora.BUILTIN["manpages-ja"]
    monkeypatch.setitem(
        corpora.BUILTIN,
        "manpages-ja",
        corpora.BuiltinCorpus(spec.name, spec.description, spec.package, tmp_path / "absent", spec.extract),
    )
    with pytest.raises(CorpusError, match="needs Debian's package manpages-ja.*apt-get install manpages-ja"):
        corpora.prepare_corpus("manpages-ja")


# -- ann-benchmarks downloads (served from a local HTTP server; the real site is unreachable here) --


def test_downloads_are_registered():
    from vdbbench.data import downloads  # noqa: F401

    for name in (
        "glove-100-angular",
        "sift-128-euclidean",
        "nytimes-256-angular",
        "gist-960-euclidean",
        "deep-image-96-angular",
        "mnist-784-euclidean",
        "lastfm-64-dot",
        "glove-25-angular",
    ):
        assert name in KNOWN and KNOWN[name].prepare is not None
    # fashion-mnist keeps its offline Debian source
    assert "Debian" in KNOWN["fashion-mnist-784-euclidean"].description


@pytest.fixture
def ann_server(tmp_path, monkeypatch):
    """A local stand-in for ann-benchmarks.com serving files from a folder."""
    from vdbbench.data import downloads

    root = tmp_path / "site"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(downloads, "BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    small = downloads.AnnDataset("tiny-8-euclidean", 8, "euclidean", 50, 5)
    monkeypatch.setitem(downloads.ANN_DATASETS, small.name, small)
    yield root, small
    server.shutdown()
    server.server_close()


def test_download_verifies_and_records_sha256(ann_server, tmp_path):
    from vdbbench.data import downloads
    from vdbbench.data.datasets import file_sha256

    root, spec = ann_server
    rng = np.random.default_rng(0)
    save_hdf5(root / f"{spec.name}.hdf5", rng.normal(size=(50, 8)), rng.normal(size=(5, 8)), "euclidean")
    target = tmp_path / "data" / f"{spec.name}.hdf5"
    assert downloads.download(spec.name, target, progress=False) == target
    entry = json.loads(downloads.manifest_path().read_text())[spec.name]
    assert entry["sha256"] == file_sha256(target) and entry["bytes"] == target.stat().st_size
    # the published file changes: refused, naming both hashes
    save_hdf5(root / f"{spec.name}.hdf5", rng.normal(size=(50, 8)), rng.normal(size=(5, 8)), "euclidean")
    with pytest.raises(DatasetError, match="now has sha256 .* recorded .* the published file changed"):
        downloads.download(spec.name, tmp_path / "again.hdf5", progress=False)
    assert not (tmp_path / "again.hdf5").exists()


def test_download_rejects_wrong_shape_and_non_hdf5(ann_server, tmp_path):
    from vdbbench.data import downloads

    root, spec = ann_server
    save_hdf5(root / f"{spec.name}.hdf5", np.ones((40, 8)), np.ones((5, 8)), "euclidean")
    with pytest.raises(DatasetError, match=r"does not match tiny-8-euclidean: train shape \(40, 8\), expected"):
        downloads.download(spec.name, tmp_path / "t.hdf5", progress=False)
    (root / f"{spec.name}.hdf5").write_text("<html>not found</html>")
    with pytest.raises(DatasetError, match="not a valid HDF5 file"):
        downloads.download(spec.name, tmp_path / "t.hdf5", progress=False)
    assert not list(tmp_path.glob("t.hdf5*"))  # nothing half-written left behind


def test_download_offline_error_says_where_to_put_the_file(monkeypatch, tmp_path):
    from vdbbench.data import downloads

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(downloads, "BASE_URL", f"http://127.0.0.1:{port}")
    target = tmp_path / "data" / "glove-100-angular.hdf5"
    with pytest.raises(DatasetError) as e:
        downloads.download("glove-100-angular", target, progress=False)
    assert f"cannot reach http://127.0.0.1:{port}/glove-100-angular.hdf5" in str(e.value)
    assert f"manually into {target.parent} (as glove-100-angular.hdf5)" in str(e.value)
