"""LanceDB embedded (``lancedb.connect(<workdir>)``): exact scan, IVF_FLAT, IVF_PQ and IVF_HNSW_{FLAT,SQ,PQ}.

``hnsw`` is HNSW over full vectors (``IvfHnswFlat``, one partition) unless the build asks for
``quantization: sq`` (IVF_HNSW_SQ, what LanceDB's ``settings: engine`` default gives) or ``pq``
(IVF_HNSW_PQ). After the inserts, ``build_index()`` compacts the table's fragments (``optimize``)
before it builds the index, so every store is searched over one compacted dataset; that step
counts in ``index_s``.

LanceDB may train fewer IVF partitions than asked when the table is small (it logs
"training 7 of the 16 requested IVF partitions"), and no index listing reports the count.
The adapter reads it back from the engine's own query profile: with every partition probed,
``analyze_plan`` reports ``partitions_ranked``. The plan also shows whether a query goes
through the ANN index or a flat distance scan.

Lance files are immutable once written (each write makes a new version), so other processes can
open the same table and read it while the building process holds it: ``client_handle`` gives the
path and table name, and each concurrent client opens the files itself (no copy).

Filters are SQL ``where`` clauses over typed attribute columns (``engine_filter``), applied before
the vector search (LanceDB's default, ``options.filter: pre``) or to its top-k (``post``, which may
answer short). ``build_index()`` puts a scalar index on each attribute column (BITMAP on strings, BTREE
on numbers), as LanceDB recommends for filtered search. Rows added after the build sit outside
every index and are searched by a flat scan (``fast_search`` is never set, so they are never
skipped); ``effective_config`` reads the stage the filter runs at from the query plan.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core.filters import OPS, RANGE_SYMBOLS, Filter, typed
from vdbbench.stores.base import (
    BuildSpec,
    Case,
    Conformance,
    FamilySpec,
    IdentityRule,
    Knob,
    Param,
    Store,
    StoreError,
    sub_vector_problem,
)
from vdbbench.stores.bm25.adapter import detect_language

# Lance logs a deprecation warning per hybrid query (its sub-queries' _score/_distance columns, which a
# hybrid query cannot select) and a warning on every new table; both say nothing about the measurement
# and flood the terminal. Other warnings stay. A LANCEDB_LOG the user set is kept as it is.
os.environ.setdefault("LANCEDB_LOG", "warn,lance::dataset::scanner=error,lance::dataset::write::insert=error")

TABLE = "vdbbench"
VECTOR = "vector"
TEXT = "text"
DISTANCES = {"euclidean": "l2", "angular": "cosine", "ip": "dot"}
INDEX_FAMILIES = {"IvfFlat": "ivf", "IvfPq": "pq", "IvfHnswSq": "hnsw", "IvfHnswFlat": "hnsw", "IvfHnswPq": "hnsw"}
HNSW_QUANTIZATION = {"IvfHnswFlat": "none", "IvfHnswSq": "sq", "IvfHnswPq": "pq"}
ALL_PARTITIONS = 1 << 30  # nprobes that probes every partition, to count them
NPROBES = Param("nprobe", int, 20, "IVF partitions probed per query", minimum=1, aliases=("nprobes",))
REFINE = Param(
    "refine", int, 0, "re-rank refine × k candidates on full vectors (0: off)", minimum=0, aliases=("refine_factor",)
)
NLIST = Param("nlist", int, 256, "IVF partitions (k-means cells)", minimum=1, aliases=("num_partitions",))
COLUMN_TYPES = {"int": "int64", "float": "float64", "str": "string"}
# scalar index per attribute kind: BITMAP for labels (few distinct values), BTREE for numbers (ranges)
SCALAR_INDEXES = {"int": "BTree", "float": "BTree", "str": "Bitmap"}
SQL_OPS = {"eq": "=", **RANGE_SYMBOLS}


def _sql_value(value: Any) -> str:
    """A SQL literal: strings single-quoted with quotes doubled, numbers as Python writes them."""
    return "'" + value.replace("'", "''") + "'" if isinstance(value, str) else str(value)


def engine_filter(flt: Filter) -> str:
    """The filter as a LanceDB SQL ``where`` clause; column names in backticks (case kept, any name)."""
    parts = []
    for c in flt.conditions:
        column = "`" + c.field.replace("`", "``") + "`"
        if c.op == "in":
            parts.append(f"{column} IN ({', '.join(_sql_value(v) for v in c.value)})")
        else:
            parts.append(f"{column} {SQL_OPS[c.op]} {_sql_value(c.value)}")
    return " AND ".join(parts)


def _unquote(column: str) -> str:
    """A column as list_indices names it (in backticks when it is not a plain identifier) → its own name."""
    return column[1:-1].replace("``", "`") if len(column) > 1 and column[0] == column[-1] == "`" else column


def filter_stage(plan: str) -> str | None:
    """Where a query plan applies the filter: "pre" (under the vector search: a scalar-index query or a
    filtered scan feeding it) or "post" (a FilterExec over its top-k); None when the plan shows no filter."""

    def depths(match) -> list[int]:
        return [len(line) - len(line.lstrip()) for line in plan.splitlines() if match(line)]

    vector = depths(lambda line: "ANNSubIndex" in line or "KNNVectorDistance" in line)
    filters = depths(lambda line: "ScalarIndexQuery" in line or re.search(r"full_filter=(?!--)", line)
                     or ("FilterExec" in line and "_distance@" not in line))  # fmt: skip
    if not vector or not filters:
        return None
    return "pre" if min(filters) > min(vector) else "post"


# conformance builds (see Store.conformance): every partition probed; HNSW over 8-bit SQ codes, re-ranked (no
# LanceDB API reports ef: it is sent, the rest read back)
FLAT_CASE = Case("flat")
IVF_CASE = Case("ivf", {"nlist": 16}, {"nprobe": 16}, floor=0.99)
HNSW_CASE = Case("hnsw", {"num_partitions": 1, "m": 16, "ef_construction": 200, "quantization": "sq"},
                 {"ef": 200, "nprobe": 1, "refine": 5}, floor=0.98, sent=("ef",))  # fmt: skip


class LanceDBStore(Store):
    name = "lancedb"
    description = "LanceDB embedded (Lance columnar files under the workdir)."
    mode = "embedded"
    identity_rules = (IdentityRule(r"^lancedb (?P<v>\S+)", "LanceDB", "LanceDB", "embedded", "LanceDB {v} (embedded)"),)
    identity_fallback = ("LanceDB", "LanceDB", "embedded")
    packages = ("lancedb", "pylance")
    engine_extras = {"hnsw": {"num_partitions": 1, "quantization": "none"}}  # one HNSW graph over full vectors
    families = {
        "flat": FamilySpec("flat", "no index (exact scan)", exact=True),
        "ivf": FamilySpec(
            "ivf",
            "IVF_FLAT",
            build=(NLIST,),
            search=(NPROBES,),
        ),
        "pq": FamilySpec(
            "pq",
            "IVF_PQ",
            build=(
                NLIST,
                Param(
                    "pq_m",
                    int,
                    16,
                    "PQ sub-vectors; must divide the dimension",
                    minimum=1,
                    aliases=("num_sub_vectors",),
                ),
                Param("nbits", int, 8, "bits per sub-vector code", choices=(4, 8), aliases=("num_bits",)),
            ),
            search=(NPROBES, REFINE),
        ),
        "hnsw": FamilySpec(
            "hnsw",
            "IVF_HNSW_FLAT (quantization none) / _SQ / _PQ",
            build=(
                Param("num_partitions", int, 1, "IVF partitions, one HNSW graph each", minimum=1),
                Param("m", int, 20, "graph degree", minimum=2),
                Param("ef_construction", int, 300, "candidate list size while building", minimum=1),
                Param(
                    "quantization",
                    str,
                    "sq",
                    "vectors in the graph: none (full), sq (int8) or pq",
                    choices=("none", "sq", "pq"),
                ),
            ),
            search=(
                Param("ef", int, 0, "candidate list size while searching (0: engine default 1.5 × k)", minimum=0),
                NPROBES,
                REFINE,
            ),
        ),
    }
    conformance = Conformance(
        cases=(
            FLAT_CASE,
            IVF_CASE,
            # refine_factor 10 re-ranks 100 exact candidates per query: enough for the top 10 on the contract data
            Case("pq", {"nlist": 4, "pq_m": 8, "nbits": 8}, {"nprobe": 4, "refine": 10}, floor=0.98),
            HNSW_CASE,
        ),
        knobs=(
            Knob(
                "hnsw",
                {"num_partitions": 1, "m": 16, "ef_construction": 200, "quantization": "none"},
                {"ef": 10},
                {"ef": 400},
                floor=0.98,
            ),
            Knob("ivf", {"nlist": 64}, {"nprobe": 1}, {"nprobe": 64}, floor=0.98),
            # LanceDB trains IVF_PQ on >= ~256 rows per partition: 16 of them it builds as asked on 5000 rows
            Knob(
                "pq",
                {"nlist": 16, "pq_m": 8, "nbits": 8},
                {"nprobe": 1, "refine": 0},
                {"nprobe": 16, "refine": 10},
                floor=0.977,
            ),
        ),
        filters=(FLAT_CASE, IVF_CASE, HNSW_CASE),
        deletes=(FLAT_CASE, IVF_CASE, HNSW_CASE),
        writes=HNSW_CASE,
        # 30 rows, k 50: ef must be >= k × refine
        k_beyond=Case(
            "hnsw", {"num_partitions": 1, "m": 8, "ef_construction": 50}, {"ef": 300, "nprobe": 1, "refine": 5}
        ),
        attribute_indexes={"str": "Bitmap", "int": "BTree", "float": "BTree"},  # as list_indices reports them
        resources=("data_bytes",),
    )
    supports_batch_search = True
    options_help = {
        "index_timeout_s": "seconds to wait for the engine to finish indexing (default 86400)",
        "filter": "pre (default: filter, then search the rows that pass) or post (search, then filter the top-k)",
    }
    filter_ops = frozenset(OPS)
    filter_note = "pre-filter: passing rows (scalar indexes) restrict the search; options.filter: post filters top-k"
    supports_delete = True
    reserved_attributes = frozenset({"id", VECTOR, TEXT, "_distance", "_rowid", "_score"})
    # Lance writes commit new table versions (MVCC): a search reads the version it started on, while the
    # table handle swaps in the new one; searches and adds/deletes from two threads run side by side.
    concurrent_writes = True
    native_hybrid = "LanceDB full-text (native FTS) + vector search, fused by LanceDB's RRFReranker"

    def __init__(self, workdir: Path, options: dict[str, Any] | None = None) -> None:
        super().__init__(workdir, options)
        self._data_dir = self.workdir / "lancedb"
        self._db = None
        self._table = None
        self._partitions: int | None = None
        self._texts: list[str] | None = None  # passage texts by row id, for native hybrid search
        self._hybrid = False
        self._attached = False  # opened another instance's table to search it: close() must not delete it
        self._where: str | None = None  # the SQL filter sent with every search, translated once in set_filter
        if problems := self.check_options("", self.options):
            raise StoreError("; ".join(problems))
        self._prefilter = self.options.get("filter", "pre") == "pre"

    @classmethod
    def check_options(cls, family: str, options: Mapping[str, Any]) -> list[str]:
        mode = options.get("filter", "pre")
        return [] if mode in ("pre", "post") else [f"options.filter: {mode!r} is not a filter mode; use pre or post"]

    # -- lifecycle -----------------------------------------------------------------
    def open(self) -> None:
        import lancedb

        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._db = lancedb.connect(str(self._data_dir))

    def close(self) -> None:
        if self._db is None:
            return
        self._table = self._db = None
        if not self._attached:
            shutil.rmtree(self._data_dir, ignore_errors=True)

    # -- build ---------------------------------------------------------------------
    @classmethod
    def check_point(cls, family, build, search, dim, k) -> list[str]:
        if family != "pq":
            return []
        return sub_vector_problem("build.pq_m (num_sub_vectors)", build["pq_m"], dim)

    def create(self, spec: BuildSpec) -> None:
        import pyarrow as pa

        if spec.family == "pq" and spec.dim % spec.params["pq_m"]:
            raise StoreError(
                f"lancedb IVF_PQ: pq_m (num_sub_vectors)={spec.params['pq_m']} must divide the dimension {spec.dim}"
            )
        self.spec = spec
        self._partitions = None
        fields = [pa.field("id", pa.int64()), pa.field(VECTOR, pa.list_(pa.float32(), spec.dim))]
        self.refuse_attributes(spec)
        fields += [pa.field(name, pa.type_for_alias(COLUMN_TYPES[kind])) for name, kind in spec.attributes.items()]
        schema = pa.schema(fields + ([pa.field(TEXT, pa.string())] if self._texts is not None else []))
        self._table = self._db.create_table(TABLE, schema=schema, mode="overwrite")
        self._count = 0

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        import pyarrow as pa

        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
        columns = {
            "id": np.asarray(ids, dtype=np.int64),
            VECTOR: pa.FixedSizeListArray.from_arrays(flat, self.spec.dim),
        }
        if self._texts is not None:
            columns[TEXT] = [self._texts[i] for i in np.asarray(ids).tolist()]
        for name, values in (attributes or {}).items():
            columns[name] = pa.array(values, type=self._table.schema.field(name).type)
        self._table.add(pa.table(columns))
        self._count += len(ids)

    def delete(self, ids: np.ndarray) -> None:
        """Delete by id; the deletion is committed (a new table version) when ``delete`` returns."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size:
            self._table.delete(f"id IN ({', '.join(map(str, ids.tolist()))})")

    def _index_config(self):
        from lancedb.index import IvfFlat, IvfHnswFlat, IvfHnswPq, IvfHnswSq, IvfPq

        p, distance = self.spec.params, DISTANCES[self.spec.metric]
        if self.spec.family == "ivf":
            return IvfFlat(distance_type=distance, num_partitions=p["nlist"])
        if self.spec.family == "pq":
            return IvfPq(
                distance_type=distance, num_partitions=p["nlist"], num_sub_vectors=p["pq_m"], num_bits=p["nbits"]
            )
        graph = {"distance_type": distance, "num_partitions": p["num_partitions"], "m": p["m"],
                 "ef_construction": p["ef_construction"]}  # fmt: skip
        return {"none": IvfHnswFlat, "sq": IvfHnswSq, "pq": IvfHnswPq}[p["quantization"]](**graph)

    def build_index(self) -> None:
        """Build the index and return once the engine's index statistics show no unindexed row."""
        if self._table.count_rows() != self._count:
            raise StoreError(f"lancedb table holds {self._table.count_rows()} rows, {self._count} were inserted")
        # compact the fragments each insert batch wrote (one per batch), as a loaded table would be
        self._table.optimize()
        if self._texts is not None:
            self._create_fts_index()
        self._create_scalar_indexes()
        if self.spec.family == "flat":
            return
        self._table.create_index(VECTOR, config=self._index_config(), replace=True)
        deadline = time.monotonic() + float(self.options.get("index_timeout_s", 24 * 3600))
        while True:
            stats = self._index_stats()
            if stats is not None and stats.num_unindexed_rows == 0 and stats.num_indexed_rows == self._count:
                break
            if time.monotonic() > deadline:
                raise StoreError(f"lancedb index incomplete after the time limit: {stats}")
            time.sleep(0.2)
        self._partitions = self._count_partitions()

    def _create_scalar_indexes(self) -> None:
        """A scalar index per attribute column, so a pre-filter reads the passing rows from it, not a scan."""
        from lancedb import index

        for name, kind in self.spec.attributes.items():
            self._table.create_index(name, config=getattr(index, SCALAR_INDEXES[kind])(), replace=True)

    # -- native hybrid (full-text + vector, LanceDB's own RRF) ---------------------------------
    def set_texts(self, texts: list[str]) -> None:
        """Passage texts by row id; the next ``create`` adds a text column and ``build_index`` a full-text index."""
        self._texts = list(texts)

    def _create_fts_index(self) -> None:
        """LanceDB's native FTS index: English stemmed with stopwords removed; Japanese (no spaces) as
        character bigrams, its closest offer without a morphological analyser."""
        from lancedb.index import FTS

        if detect_language(self._texts) == "ja":
            self._fts = {"base_tokenizer": "ngram", "ngram_min_length": 2, "ngram_max_length": 2,
                         "stem": False, "remove_stop_words": False}  # fmt: skip
        else:
            self._fts = {"base_tokenizer": "simple", "language": "English", "stem": True, "remove_stop_words": True}
        self._table.create_index(TEXT, config=FTS(**self._fts), replace=True)

    def set_hybrid(self, on: bool) -> None:
        """From now on each query is a (vector, text) pair searched by LanceDB's hybrid query (RRF reranker)."""
        if on and self._texts is None:
            raise StoreError("lancedb native hybrid needs the passage texts (set_texts) before the build")
        self._hybrid = on

    def _index(self):
        return next((i for i in self._table.list_indices() if VECTOR in i.columns), None)

    def _index_stats(self):
        index = self._index()
        return self._table.index_stats(index.name) if index else None

    def _count_partitions(self) -> int | None:
        """IVF partitions the engine trained: it ranks all of them when asked to probe more than exist."""
        probe = self._query(np.zeros(self.spec.dim, dtype=np.float32), 1, {"nprobe": ALL_PARTITIONS})
        found = re.search(r"partitions_ranked=(\d+)", probe.analyze_plan())
        return int(found.group(1)) if found else None

    # -- search --------------------------------------------------------------------
    def _query(self, query, k: int, params: dict[str, Any], text: str | None = None):
        if text is not None:
            from lancedb.rerankers import RRFReranker

            q = (
                self._table.search(query_type="hybrid", vector_column_name=VECTOR, fts_columns=TEXT)
                .vector(query)
                .text(text)
                .rerank(RRFReranker())
                .distance_type(DISTANCES[self.spec.metric])
                .limit(k)
                .select(["id"])
            )
        else:
            q = (
                self._table.search(query, vector_column_name=VECTOR)
                .distance_type(DISTANCES[self.spec.metric])
                .limit(k)
                .select(["id", "_distance"])  # naming _distance keeps lance from logging a warning per query
            )
        if self._where is not None:
            q = q.where(self._where, prefilter=self._prefilter)
        if self.spec.family == "flat":
            return q.bypass_vector_index()
        if params.get("nprobe"):
            q = q.nprobes(params["nprobe"])
        if params.get("ef"):
            if params["ef"] < k * max(params.get("refine") or 1, 1):
                raise StoreError(
                    f"lancedb: ef={params['ef']} must be >= k × refine (refine_factor) (here {k} × "
                    f"{params.get('refine') or 1}); the HNSW search returns that many candidates"
                )
            q = q.ef(params["ef"])
        if params.get("refine"):
            q = q.refine_factor(params["refine"])
        return q

    def set_filter(self, flt: Filter | None) -> None:
        super().set_filter(flt)
        # typed: Lance refuses a float literal on an int64 column (`year` >= 2010.0)
        self._where = None if flt is None else engine_filter(typed(flt, self.spec.attributes))

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        if self._hybrid:
            vector, text = query
            result = self._query(np.asarray(vector, dtype=np.float32), k, self.search_params, text).to_arrow()
            return result["id"].to_numpy().astype(np.int64, copy=False)
        result = self._query(np.asarray(query, dtype=np.float32), k, self.search_params).to_arrow()
        return result["id"].to_numpy().astype(np.int64, copy=False)

    def search_scored(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, the ``_distance`` LanceDB returns with each), best first; for saved answers, never timed."""
        result = self._query(np.asarray(query, dtype=np.float32), k, self.search_params).to_arrow()
        return result["id"].to_numpy().astype(np.int64, copy=False), result["_distance"].to_numpy()

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32)
        result = self._query(list(queries), k, self.search_params).to_arrow()
        which = result["query_index"].to_numpy()
        ids = result["id"].to_numpy().astype(np.int64, copy=False)
        distances = result["_distance"].to_numpy()
        out = []
        for i in range(len(queries)):
            rows = np.flatnonzero(which == i)
            out.append(ids[rows[np.argsort(distances[rows], kind="stable")]])
        return out

    def client_handle(self) -> dict[str, Any]:
        return {"path": str(self._data_dir), "table": TABLE, "spec": self.spec,
                "note": "each client process opens the same Lance files itself, read-only"}  # fmt: skip

    def attach(self, handle: dict[str, Any]) -> None:
        import lancedb

        self._attached = True
        self.spec = handle["spec"]
        self._data_dir = Path(handle["path"])
        self._db = lancedb.connect(str(self._data_dir))
        self._table = self._db.open_table(handle["table"])

    # -- introspection ---------------------------------------------------------------
    def effective_config(self) -> dict[str, Any]:
        index = self._index()
        plan = self._query(np.zeros(self.spec.dim, dtype=np.float32), 10, self.search_params).explain_plan(True)
        uses_index = "ANNSubIndex" in plan or "ANNIvfPartition" in plan
        # fast_search is never set: rows outside the vector index (added after the build) are scanned, not skipped
        engine: dict[str, Any] = {"plan": plan, "fragments": self._table.stats()["fragment_stats"]["num_fragments"],
                                  "fast_search": False}  # fmt: skip
        params: dict[str, Any] = {}
        metric = self.spec.metric
        if index is None or not uses_index:
            family = "flat"
        else:
            stats = self._index_stats()
            details = index.index_details or {}
            engine |= {
                "index": {"name": index.name, "type": index.index_type, "details": details},
                "stats": {
                    "index_type": stats.index_type,
                    "distance_type": stats.distance_type,
                    "num_indexed_rows": stats.num_indexed_rows,
                    "num_unindexed_rows": stats.num_unindexed_rows,
                },
            }
            family = INDEX_FAMILIES.get(index.index_type, index.index_type)
            if stats.num_unindexed_rows:
                family += "+flat"  # unindexed rows are scanned exactly
            metric = {v: k for k, v in DISTANCES.items()}.get(stats.distance_type, stats.distance_type)
            params["num_partitions" if family == "hnsw" else "nlist"] = self._partitions
            compression, hnsw = details.get("compression") or {}, details.get("hnsw") or {}
            if compression.get("type") == "pq" and self.spec.family == "pq":
                params |= {"pq_m": compression.get("num_sub_vectors"), "nbits": compression.get("num_bits")}
            if hnsw:
                params |= {"m": hnsw.get("max_connections"), "ef_construction": hnsw.get("construction_ef")}
            if index.index_type in HNSW_QUANTIZATION:
                params["quantization"] = HNSW_QUANTIZATION[index.index_type]
            # From the query plan, as the engine applies them: probes, and refine as the candidates the index
            # returns per k when a full-vector re-rank (KNNVectorDistance) sits above it. ef is not shown: sent.
            probes = re.search(r"minimum_nprobes=(\d+)", plan)
            params["nprobe"] = int(probes.group(1)) if probes else None
            candidates = re.search(r"ANNSubIndex: name=\S+ k=(\d+)", plan)
            if candidates and self.families[self.spec.family].search_param("refine"):
                params["refine"] = int(candidates.group(1)) // 10 if "KNNVectorDistance" in plan else 0
        if self._texts is not None:
            engine["fts"] = {"column": TEXT, **self._fts}  # the full-text index native hybrid search uses
        out = {"family": family, "metric": metric, "params": params, "engine": engine}
        if self.spec.attributes:
            scalar = {
                _unquote(i.columns[0]): i.index_type for i in self._table.list_indices() if VECTOR not in i.columns
            }
            out["attribute_indexes"] = {name: scalar.get(name, "none") for name in self.spec.attributes}
        if self._where is not None:
            # the mode asked (options.filter) and the stage the engine's plan applies the filter at
            out |= {"filter": self._where, "filter_mode": "pre" if self._prefilter else "post",
                    "filter_stage": filter_stage(plan)}  # fmt: skip
        return out

    def resources(self) -> dict[str, Any]:
        files = [p for p in self._data_dir.rglob("*") if p.is_file()]
        index = self._index() if self._table is not None else None
        return {
            "data_bytes": sum(p.stat().st_size for p in files),
            "index_bytes": int(index.size_bytes or 0) if index else 0,
        }

    def engine_version(self) -> str:
        return f"lancedb {version('lancedb')}"

    def build_threads(self) -> int | None:
        import os

        return os.cpu_count() or 1  # Lance builds on its CPU pool, one thread per core (not configurable here)

    def drop(self) -> None:
        if self._db is not None and TABLE in self._db.list_tables().tables:
            self._db.drop_table(TABLE)
        self._table = None
