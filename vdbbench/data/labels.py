"""Labelled retrieval sets: passages and queries with ids, and graded relevance (qrels).

The on-disk form is the BEIR layout, which MTEB, JMTEB and most IR toolkits read and write:

* ``corpus.jsonl``: one ``{"_id", "title", "text"}`` per line (title optional);
* ``queries.jsonl``: one ``{"_id", "text"}`` per line;
* ``qrels/test.tsv``: ``query-id <tab> corpus-id <tab> score`` per line, a header line allowed.

Only queries that have at least one judged passage in ``qrels/test.tsv`` are used (BEIR keeps the
queries of every split in one file). Two built-in tasks are made offline from the shipped corpora
(``wordnet-en-labels``, ``manpages-ja-labels``, see datasets/README.md for how and their limits),
and ``mteb:<task>`` loads a retrieval task by name on a host with internet.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.data.corpora import (
    _JAPANESE,
    MANPAGES_JA_DIR,
    WORDNET_DIR,
    CorpusError,
    _decode_utf8,
    attribute_columns,
    json_lines,
    record_field,
    roff_paragraphs,
    wordnet_synsets,
)
from vdbbench.data.datasets import data_dir

QRELS_SPLIT = "test"


@dataclass
class Labelled:
    """A labelled retrieval set: passages and queries with their ids, and relevance per (query, passage)."""

    name: str
    path: Path
    passage_ids: list[str]
    passages: list[str]
    query_ids: list[str]
    queries: list[str]
    qrels: dict[str, dict[str, int]]  # query id → passage id → graded relevance
    source: str  # where the labels came from, for the report
    attributes: dict[str, np.ndarray] = field(default_factory=dict)  # name → one value per passage
    dates: list[str] = field(default_factory=list)  # the attributes made from ISO dates (int YYYYMMDD)

    def cut(self, max_passages: int | None) -> Labelled:
        """The first ``max_passages`` passages; judgements of dropped passages and queries left with no
        relevant passage are dropped too, so every query can still be answered."""
        if not max_passages or max_passages >= len(self.passages):
            return self
        kept = set(self.passage_ids[:max_passages])
        qrels = {q: {d: s for d, s in rel.items() if d in kept} for q, rel in self.qrels.items()}
        qrels = {q: rel for q, rel in qrels.items() if any(s > 0 for s in rel.values())}
        pairs = [(i, t) for i, t in zip(self.query_ids, self.queries, strict=True) if i in qrels]
        return Labelled(
            self.name,
            self.path,
            self.passage_ids[:max_passages],
            self.passages[:max_passages],
            [i for i, _ in pairs],
            [t for _, t in pairs],
            qrels,
            f"{self.source}; cut to the first {max_passages} passages",
            {n: c[:max_passages] for n, c in self.attributes.items()},
            self.dates,
        )


def is_beir_dir(source: str | Path) -> bool:
    """True for a directory holding a BEIR-layout set (its corpus.jsonl)."""
    path = Path(source).expanduser()
    return path.is_dir() and ((path / "corpus.jsonl").exists() or (path / "corpus.jsonl.gz").exists())


def _jsonl_rows(
    path: Path, fields: tuple[str, ...], required: tuple[str, ...], extra: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The ``fields`` of each record, whitespace collapsed, its line as ``_line``, and the raw values of the
    ``extra`` fields (attributes, see ``corpora.record_field``) as ``_extra``."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    rows = []
    for number, obj in json_lines(_decode_utf8(raw, path), path):
        if not isinstance(obj, dict):
            raise CorpusError(f"{path} line {number}: expected an object with fields {list(fields)}")
        for name in required:
            value = obj.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise CorpusError(
                    f"{path} line {number}: field {name!r} is missing or empty (BEIR layout: {', '.join(fields)})"
                )
        row = {name: " ".join(str(obj.get(name) or "").split()) for name in fields}
        rows.append(row | {"_line": number, "_extra": [record_field(obj, name) for name in extra]})
    return rows


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.exists():
            return candidate
    raise CorpusError(
        f"BEIR directory {folder} has no {name}: it needs corpus.jsonl, queries.jsonl and qrels/{QRELS_SPLIT}.tsv"
    )


def _unique_ids(rows: list[dict[str, Any]], path: Path) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        if row["_id"] in seen:
            raise CorpusError(f"{path} line {row['_line']}: field '_id' {row['_id']!r} repeats line {seen[row['_id']]}")
        seen[row["_id"]] = row["_line"]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id corpus-id score`` rows (tab or space separated; TREC's 4-column form too), header allowed."""
    text = _decode_utf8(path.read_bytes(), path)
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        if len(cols) == 4:  # TREC qrels: qid iteration docid rel
            cols = [cols[0], cols[2], cols[3]]
        if len(cols) != 3:
            raise CorpusError(f"{path} line {number}: expected 3 columns 'query-id corpus-id score', got {len(cols)}")
        try:
            value = float(cols[2])
        except ValueError:
            if number == 1:
                continue  # the header line
            raise CorpusError(f"{path} line {number}: field 'score' must be an integer, got {cols[2]!r}") from None
        if not value.is_integer():  # 1.5 is no graded relevance level: truncating it would change the labels
            raise CorpusError(f"{path} line {number}: field 'score' must be an integer (a relevance grade such as 0, 1 "
                              f"or 2), got {cols[2]!r}")  # fmt: skip
        score = int(value)
        qrels.setdefault(cols[0].strip(), {})[cols[1].strip()] = score
    if not qrels:
        raise CorpusError(f"{path} holds no judgements; each line is 'query-id<TAB>corpus-id<TAB>score'")
    return qrels


def load_beir(
    folder: str | Path, name: str | None = None, source: str | None = None, attributes: tuple[str, ...] = ()
) -> Labelled:
    """Read and check a BEIR-layout directory; CorpusError names the file, line and field at fault.

    ``attributes`` names fields of corpus.jsonl's records (``title``, or any other scalar field, also inside
    a record's ``metadata`` object) to carry as attribute columns, typed by ``corpora.attribute_columns``."""
    folder = Path(folder).expanduser()
    corpus_path, queries_path = _find(folder, "corpus.jsonl"), _find(folder, "queries.jsonl")
    qrels_path = _find(folder / "qrels", f"{QRELS_SPLIT}.tsv")
    docs = _jsonl_rows(corpus_path, ("_id", "title", "text"), ("_id", "text"), tuple(attributes))
    queries = _jsonl_rows(queries_path, ("_id", "text"), ("_id", "text"))
    _unique_ids(docs, corpus_path)
    _unique_ids(queries, queries_path)
    qrels = read_qrels(qrels_path)
    doc_ids = {d["_id"] for d in docs}
    query_lines = {q["_id"]: q["_line"] for q in queries}
    for qid, rel in qrels.items():
        if qid not in query_lines:
            raise CorpusError(f"{qrels_path}: query-id {qid!r} is not in {queries_path.name}")
        unknown = sorted(d for d in rel if d not in doc_ids)
        if unknown:
            raise CorpusError(
                f"{qrels_path}: corpus-id {unknown[0]!r} (query {qid!r}) is not in {corpus_path.name}"
                + (f" ({len(unknown)} unknown ids)" if len(unknown) > 1 else "")
            )
    judged = [q for q in queries if q["_id"] in qrels]
    if not judged:
        raise CorpusError(f"{qrels_path} judges none of the queries in {queries_path.name}")
    values = {a: [d["_extra"][i] for d in docs] for i, a in enumerate(attributes)}
    columns, dates = attribute_columns(values, [f"line {d['_line']}" for d in docs], corpus_path)
    return Labelled(
        name or folder.name,
        folder,
        [d["_id"] for d in docs],
        [f"{d['title']} {d['text']}".strip() if d["title"] else d["text"] for d in docs],
        [q["_id"] for q in judged],
        [q["text"] for q in judged],
        {q["_id"]: qrels[q["_id"]] for q in judged},
        source or f"BEIR directory {folder} (qrels/{QRELS_SPLIT}.tsv)",
        columns,
        dates,
    )


def write_beir(
    folder: Path, docs: list[tuple[str, str]], queries: list[tuple[str, str]], qrels: list[tuple[str, str, int]]
) -> Path:
    """Write (id, text) passages and queries and (query, passage, score) judgements in the BEIR layout."""
    tmp = folder.with_name(folder.name + ".part")
    (tmp / "qrels").mkdir(parents=True, exist_ok=True)
    with open(tmp / "corpus.jsonl", "w", encoding="utf-8") as f:
        for pid, text in docs:
            f.write(json.dumps({"_id": pid, "title": "", "text": text}, ensure_ascii=False) + "\n")
    with open(tmp / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid, text in queries:
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with open(tmp / "qrels" / f"{QRELS_SPLIT}.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


# -- built-in labelled tasks ---------------------------------------------------------------


def _pick(key: str) -> str:
    """A deterministic, well-spread order: sha1 of an item's stable source id."""
    return hashlib.sha1(key.encode()).hexdigest()


def wordnet_task(wordnet_dir: Path = WORDNET_DIR, passages: int = 5000, queries: int = 500) -> tuple:
    """Reverse dictionary: query = a synset's lemmas ("car, auto, automobile, machine, motorcar"),
    relevant passage = that synset's definition (its gloss without example sentences), score 1.

    ``passages`` definitions of synsets with at least two lemmas are taken in sha1 order of their
    ``pos/offset``; the first ``queries`` of them are asked.
    """
    rows = []
    for pos, offset, words, gloss in wordnet_synsets(wordnet_dir):
        definition = gloss.split('; "')[0].split(' "')[0].strip().rstrip(";").strip()
        if len(set(words)) >= 2 and len(definition) >= 10:
            rows.append((f"{pos}-{offset}", ", ".join(dict.fromkeys(words)), definition))
    rows.sort(key=lambda r: _pick(r[0]))
    rows = rows[:passages]
    seen: set[str] = set()
    docs = []
    for sid, _, definition in rows:
        if definition not in seen:  # identical definitions would make two passages equally right
            seen.add(definition)
            docs.append((sid, definition))
    kept = {d for d, _ in docs}
    asked = [(f"q-{sid}", lemmas, sid) for sid, lemmas, _ in rows if sid in kept][:queries]
    return docs, [(q, t) for q, t, _ in asked], [(q, sid, 1) for q, _, sid in asked]


def manpages_ja_task(man_dir: Path = MANPAGES_JA_DIR, pages: int = 400, min_chars: int = 20) -> tuple:
    """Which page answers this: query = a page's NAME line summary ("ls - ディレクトリの内容をリスト表示する"
    without "ls -"), relevant = every other Japanese paragraph of that page, score 1.

    Pages in sha1 order of their file name; the first ``pages`` whose NAME line has a Japanese summary
    and that have at least one other paragraph. Paragraphs seen on an earlier page are dropped.
    """
    candidates = sorted((p for p in man_dir.glob("man*/*.gz") if not p.is_symlink()), key=lambda p: _pick(p.name))
    docs, asked, qrels, seen = [], [], [], set()
    for path in candidates:
        if len(asked) >= pages:
            break
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        except (OSError, EOFError):
            continue
        paragraphs = roff_paragraphs(text)
        if text.lstrip().startswith(".so ") or not paragraphs or " - " not in paragraphs[0]:
            continue
        summary = paragraphs[0].split(" - ", 1)[1].strip()
        body = [p for p in paragraphs[1:] if len(p) >= min_chars and _JAPANESE.search(p) and p not in seen]
        if not _JAPANESE.search(summary) or not body:
            continue
        page = path.name.removesuffix(".gz")
        qid = f"q-{page}"
        asked.append((qid, summary))
        for number, paragraph in enumerate(body):
            seen.add(paragraph)
            docs.append((f"{page}-{number}", paragraph))
            qrels.append((qid, f"{page}-{number}", 1))
    return docs, asked, qrels


@dataclass(frozen=True)
class BuiltinTask:
    name: str
    description: str
    package: str
    check: Path
    make: Callable[[], tuple]


BUILTIN_TASKS: dict[str, BuiltinTask] = {
    "wordnet-en-labels": BuiltinTask(
        "wordnet-en-labels",
        "English reverse dictionary from WordNet: lemmas → definition, 5000 passages, 500 queries, one relevant each",
        "wordnet-base",
        WORDNET_DIR / "data.noun",
        wordnet_task,
    ),
    "manpages-ja-labels": BuiltinTask(
        "manpages-ja-labels",
        "Japanese: a man page's NAME summary → that page's paragraphs, 400 pages",
        "manpages-ja",
        MANPAGES_JA_DIR / "man1",
        manpages_ja_task,
    ),
}


def prepare_task(name: str, force: bool = False) -> Path:
    """Make a built-in labelled task as a BEIR directory under ``data_dir()/corpora/<name>`` (once)."""
    task = BUILTIN_TASKS[name]
    folder = data_dir() / "corpora" / name
    if (folder / "corpus.jsonl").exists() and not force:
        return folder
    if not task.check.exists():
        raise CorpusError(
            f"built-in task {name!r} needs Debian's package {task.package} ({task.check} is missing): "
            f"sudo apt-get install {task.package} (scripts/setup.sh installs it)"
        )
    docs, queries, qrels = task.make()
    return write_beir(folder, docs, queries, qrels)


# -- tasks by name (internet) ----------------------------------------------------------------


def load_mteb(task_name: str, target: Path | None = None) -> Path:
    """Download an MTEB / JMTEB retrieval task by name (through the optional ``mteb`` package) and write its
    test split as a BEIR directory. Needs internet and ``pip install 'vdbbench[mteb]'``."""
    try:
        import mteb
    except ImportError:
        raise CorpusError(
            f"'mteb:{task_name}' needs the mteb package and internet: "
            f"pip install 'vdbbench[mteb]' on a host with internet, or give a BEIR directory"
        ) from None
    target = target or data_dir() / "corpora" / f"mteb-{task_name}"
    if (target / "corpus.jsonl").exists():
        return target
    try:
        task = mteb.get_task(task_name)
        task.load_data()
    except Exception as e:  # noqa: BLE001 - unknown task, no network, hub errors
        raise CorpusError(
            f"cannot load MTEB task {task_name!r}: {type(e).__name__}: {str(e)[:300]} "
            "(is there internet? is the task name as listed by mteb.get_tasks()?)"
        ) from None
    corpus, queries, relevant = (getattr(task, a)[QRELS_SPLIT] for a in ("corpus", "queries", "relevant_docs"))
    docs = [
        (pid, f"{d.get('title', '')} {d['text']}".strip() if isinstance(d, dict) else str(d))
        for pid, d in corpus.items()
    ]
    return write_beir(
        target, docs, list(queries.items()), [(q, d, int(s)) for q, rel in relevant.items() for d, s in rel.items()]
    )


def resolve_labelled(source: str, max_passages: int | None = None, attributes: tuple[str, ...] = ()) -> Labelled | None:
    """The labelled set a corpus name stands for (BEIR dir, built-in task, ``mteb:<task>``), else None."""
    if source in BUILTIN_TASKS:
        labelled = load_beir(
            prepare_task(source),
            source,
            f"built-in task {source}: {BUILTIN_TASKS[source].description} (see datasets/README.md)",
            attributes,
        )
    elif source.startswith("mteb:"):
        labelled = load_beir(load_mteb(source[5:]), source[5:], f"MTEB task {source[5:]} (test split)", attributes)
    elif is_beir_dir(source):
        labelled = load_beir(source, attributes=attributes)
    else:
        return None
    return labelled.cut(max_passages)


def qrels_tsv(qrels: dict[str, dict[str, int]]) -> str:
    """TREC qrels text (``qid 0 docid rel``), what trec_eval reads."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=" ", lineterminator="\n")
    for q, rel in qrels.items():
        for d, s in rel.items():
            writer.writerow([q, 0, d, s])
    return out.getvalue()
