"""Milvus through pymilvus: embedded milvus-lite by default, a Milvus server with option ``url``.

milvus-lite 3.x runs inside this Python process (a gRPC server on a free 127.0.0.1 port,
threads, faiss for the ANN indexes). It accepts every index type in ``create_index`` and
reports every index as ``Finished`` in ``describe_index``, even those it never builds
(IVF_PQ): segments without an index are then searched by brute force. So in lite mode the
adapter refuses the index types lite lacks, and reads what actually serves the queries from
the engine's loaded segments (index class and faiss parameters), not only from
``describe_index``.

Native hybrid search (``set_texts``, ``set_hybrid``): the passages go into a ``text`` VARCHAR field with Milvus's
analyzer (standard tokenizer, lowercase, bm25s's English stopword list as a stop filter; milvus-lite's analyzer
has no stemmer and no Japanese tokenizer, so Japanese passages and queries are MeCab-pretokenized by vdbbench), a
BM25 ``Function`` fills a sparse field, indexed SPARSE_INVERTED_INDEX with metric BM25. Each query is one
``hybrid_search``: the vector request at the search setting and the text request (BM25 over the sparse field),
k each, fused by Milvus's ``RRFRanker(60)``.

Concurrent clients: milvus-lite locks its data dir to one process (a second ``MilvusClient`` on
the same file fails with ``DataDirLockedError``), but it serves that dir through a gRPC server on
127.0.0.1, the same server ``milvus-lite server --data-dir`` runs. So client processes connect to
the building process's lite server by its URL, as they would to a Milvus server; nothing is copied.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping
from enum import Enum
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core.filters import OPS, RANGE_SYMBOLS, Filter, typed
from vdbbench.core.provenance import redact
from vdbbench.stores.base import (
    BuildSpec,
    Case,
    ComposeAddress,
    Conformance,
    FamilySpec,
    IdentityRule,
    Knob,
    Param,
    Store,
    StoreError,
    coverage,
    served_family,
    sub_vector_problem,
)
from vdbbench.stores.fulltext import RRF_K, PreparedTexts
from vdbbench.stores.servers import without_credentials

COLLECTION = "vdbbench"
VECTOR = "vector"
TEXT, SPARSE = "text", "sparse"  # the passage and its BM25 sparse vector (native hybrid only)
METRICS = {"euclidean": "L2", "angular": "COSINE", "ip": "IP"}
INDEX_TYPES = {"flat": "FLAT", "ivf": "IVF_FLAT", "pq": "IVF_PQ", "hnsw": "HNSW"}
INDEX_FAMILIES = {v: k for k, v in INDEX_TYPES.items()}
# What milvus-lite 3.x really builds (checked by building each and inspecting the loaded segments);
# it accepts IVF_PQ, DISKANN, SCANN... in create_index but leaves the segments on brute force.
LITE_INDEX_TYPES = frozenset({"FLAT", "IVF_FLAT", "HNSW"})
# milvus-lite's per-segment index classes → the family they serve.
LITE_INDEX_CLASSES = {"BruteForceIndex": "flat", "FaissIvfFlatIndex": "ivf", "FaissHnswIndex": "hnsw"}
SEARCH_CHUNK = 1000  # queries per multi-vector search request
MAX_DIM = 32768  # Milvus's largest FLOAT_VECTOR dimension
# attribute columns: the scalar field type, and the scalar index built on it. Milvus 2.3 servers build Trie (VARCHAR)
# and STL_SORT (numbers) and refuse INVERTED (2.4+); milvus-lite implements INVERTED only and refuses the others.
FIELD_TYPES = {"str": "VARCHAR", "int": "INT64", "float": "DOUBLE"}
SERVER_SCALAR_INDEXES = {"str": "Trie", "int": "STL_SORT", "float": "STL_SORT"}
LITE_SCALAR_INDEX = "INVERTED"
MAX_VARCHAR = 65535  # Milvus's largest VARCHAR max_length
COMPARISONS = {"eq": "==", **RANGE_SYMBOLS}
# Searches run at the collection's consistency level; a write the next search must see (a delete) is confirmed by a
# Strong read before delete() returns. Strong on every search would wait out the time tick each time (Milvus 2.3.5:
# 218 ms per search against 1.3 ms, measured here), and Session does not cover deletes there: 2.3.5 returns no
# timestamp for a delete, so pymilvus's session timestamp stays at the last insert.
CONSISTENCY = "Bounded"
# Milvus servers pymilvus 3 cannot drive (its RPCs need 2.3+); tested pairs are in docker/README.md.
MIN_SERVER = (2, 3)


def server_url(options: dict[str, Any]) -> str | None:
    """The server address: option ``uri`` (pymilvus's name) or ``url``, else VDBBENCH_MILVUS_URL; None → lite."""
    uri, url = options.get("uri"), options.get("url")
    if uri and url and uri != url:
        raise StoreError(f"milvus: options uri={redact(uri)!r} and url={redact(url)!r} differ; give one of them")
    return uri or url or os.environ.get("VDBBENCH_MILVUS_URL") or None


def version_problem(server: str) -> str | None:
    """Why this client cannot be trusted with a server of this version, or None."""
    found = re.search(r"(\d+)\.(\d+)", server or "")
    if found and (int(found.group(1)), int(found.group(2))) < MIN_SERVER:
        return (
            f"Milvus server {server} is older than {'.'.join(map(str, MIN_SERVER))}, which pymilvus "
            f"{version('pymilvus')} needs; use the compose image (docker/docker-compose.yml) or Milvus 2.3+"
        )
    return None


def _number(value: Any) -> Any:
    """describe_index returns parameters as strings on a server, as numbers on lite."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    return value


def _plain(value: Any) -> Any:
    """A describe_collection value the worker can pickle and a record can hold: an enum by its name, a protobuf
    repeated field as a list."""
    if isinstance(value, Enum):
        return value.name
    return value if isinstance(value, str | int | float | None) else list(value)


def _literal(value: Any) -> str:
    """A value in Milvus's expression syntax: strings double-quoted with backslash escapes (the ones both the server's
    parser and milvus-lite's read), floats positional (lite reads no "1." and no exponent-only form)."""
    if isinstance(value, str):
        for char, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
            value = value.replace(char, escaped)
        return f'"{value}"'
    if isinstance(value, float):
        return np.format_float_positional(value, trim="0")
    return str(int(value))


def engine_filter(flt: Filter) -> str:
    """The filter as a Milvus boolean expression (https://milvus.io/docs/boolean.md): ``kind == "a" and year >= 2010``,
    ``kind in ["b", "c"]``."""
    terms = []
    for c in flt.conditions:
        if c.op == "in":
            terms.append(f"{c.field} in [{', '.join(_literal(v) for v in c.value)}]")
        else:
            terms.append(f"{c.field} {COMPARISONS[c.op]} {_literal(c.value)}")
    return " and ".join(terms)


def _unimplemented_probe(record: logging.LogRecord) -> bool:
    """Drop milvus-lite's logged traceback for RPCs it lacks (AllocTimestamp): pymilvus probes them and
    treats "unimplemented" as an answer, so the traceback on every search session reports no failure."""
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, NotImplementedError)


class MilvusStore(PreparedTexts, Store):
    name = "milvus"
    description = "Milvus: embedded milvus-lite here; a Milvus standalone server with option url."
    mode = "embedded"
    identity_rules = (
        IdentityRule(r"^milvus-lite (?P<v>\S+)", "Milvus", "Milvus Lite", "embedded", "Milvus Lite {v} (embedded)"),
        IdentityRule(r"^milvus v?(?P<v>\S+)", "Milvus", "Milvus", "server", "Milvus {v} {where}"),
    )
    identity_fallback = ("Milvus", "Milvus Lite", "embedded")
    packages = ("pymilvus", "milvus-lite")
    compose_services = ("etcd", "minio", "milvus")
    compose_address = ComposeAddress("VDBBENCH_MILVUS_URL", "uri", "http://127.0.0.1:19530")
    families = {
        "flat": FamilySpec("flat", "FLAT", exact=True),
        "ivf": FamilySpec(
            "ivf",
            "IVF_FLAT",
            build=(Param("nlist", int, 128, "number of IVF lists (k-means cells)", minimum=1, maximum=65536),),
            search=(Param("nprobe", int, 8, "lists probed per query", minimum=1, maximum=65536),),
        ),
        "pq": FamilySpec(
            "pq",
            "IVF_PQ",
            build=(
                Param("nlist", int, 128, "number of IVF lists", minimum=1, maximum=65536),
                Param(
                    "pq_m",
                    int,
                    8,
                    "PQ sub-vectors; must divide the dimension (Milvus has no default)",
                    minimum=1,
                    aliases=("m",),
                ),
                Param("nbits", int, 8, "bits per sub-vector code", minimum=1),
            ),
            search=(Param("nprobe", int, 8, "lists probed per query", minimum=1),),
            note="needs a Milvus server (option url): milvus-lite accepts IVF_PQ but never builds it",
        ),
        "hnsw": FamilySpec(
            "hnsw",
            "HNSW",
            build=(
                Param("m", int, 30, "graph degree", minimum=2, maximum=2048, aliases=("M",)),
                Param(
                    "ef_construction",
                    int,
                    360,
                    "candidate list size while building",
                    minimum=1,
                    aliases=("efConstruction",),
                ),
            ),
            search=(
                Param(
                    "ef",
                    int,
                    64,
                    "candidate list size while searching (a server wants ef >= k)",
                    minimum=1,
                    maximum=32768,
                ),
            ),
        ),
    }
    # milvus-lite in the workdir; the search parameters travel with each request, and no API reports them
    conformance = Conformance(
        cases=(
            Case("flat"),
            Case("ivf", {"nlist": 16}, {"nprobe": 16}, floor=0.99, sent=("nprobe",)),
            Case("hnsw", {"m": 16, "ef_construction": 200}, {"ef": 200}, floor=0.98, sent=("ef",)),
        ),
        knobs=(
            Knob("hnsw", {"m": 16, "ef_construction": 200}, {"ef": 10}, {"ef": 400}, floor=0.98),
            Knob("ivf", {"nlist": 64}, {"nprobe": 1}, {"nprobe": 64}, floor=0.98),
        ),
        # lite walks faiss's HNSW with an IDSelector and stops after ef candidates: under the 1.5% filter ("and")
        # ef 200 measured recall 0.68 with 26 of 50 answers short; ef 500 measured 0.988, ef 1000 1.0
        filters=(
            Case("flat"),
            Case("ivf", {"nlist": 16}, {"nprobe": 16}, floor=0.99),
            Case("hnsw", {"m": 16, "ef_construction": 200}, {"ef": 500}, floor=0.95),
        ),
        deletes=(
            Case("flat"),
            Case("ivf", {"nlist": 16}, {"nprobe": 16}, floor=0.99),
            Case("hnsw", {"m": 16, "ef_construction": 200}, {"ef": 500}, floor=0.95),
        ),
        k_beyond=Case("hnsw"),
        attribute_indexes={"str": "INVERTED", "int": "INVERTED", "float": "INVERTED"},
        resources=("data_bytes",),
        unset_env=("VDBBENCH_MILVUS_URL", "VDBBENCH_MILVUS_TOKEN"),
        secrets={"url": "https://alice:s3cret@milvus.internal:19530"},
        secret_env={"VDBBENCH_MILVUS_TOKEN": "root:t0ken"},
    )
    supports_batch_search = True
    max_dim = MAX_DIM
    filter_ops = frozenset(OPS)
    filter_note = "pre-filter: a bitset of the passing rows (from the scalar indexes) that the vector search keeps to"
    supports_delete = True
    reserved_attributes = frozenset({"id", VECTOR, TEXT, SPARSE})
    native_hybrid = (
        "Milvus BM25 Function on an analyzed VARCHAR (standard tokenizer, lowercase, English stopwords; Japanese "
        "MeCab-pretokenized by vdbbench) + vector search in one hybrid_search, fused by Milvus's RRFRanker(60)"
    )
    concurrent_writes = False  # milvus-lite's engine runs in this process; its thread safety is not documented
    options_help = {
        "uri": "Milvus server URI, pymilvus's name (e.g. http://127.0.0.1:19530); same as url",
        "url": "Milvus server URL; else VDBBENCH_MILVUS_URL; with neither, embedded milvus-lite runs",
        "token": "Milvus token (user:password or API key); else VDBBENCH_MILVUS_TOKEN",
        "timeout_s": "seconds to wait for the server to answer at connect (default 20)",
        "index_timeout_s": "seconds to wait for the engine to finish indexing (default 86400)",
    }

    @classmethod
    def check_options(cls, family: str, options: Mapping[str, Any]) -> list[str]:
        server = options.get("url") or options.get("uri") or os.environ.get("VDBBENCH_MILVUS_URL")
        if options.get("token") and not server:  # Milvus Lite answers a token with an opaque gRPC UNIMPLEMENTED
            return ["options.token: a token is for a Milvus server, and none is named (options url/uri or "
                    "VDBBENCH_MILVUS_URL), so Milvus Lite would run, which takes no token; name the server, or drop "
                    "token"]  # fmt: skip
        return []

    @classmethod
    def fallback_identity(cls, options: Mapping[str, Any]) -> tuple[str, str, str]:
        if {"url", "uri"} & {k for k, v in options.items() if v}:
            return ("Milvus", "Milvus", "server")  # option url / uri: a Milvus server, not the embedded Lite
        return super().fallback_identity(options)

    def __init__(self, workdir: Path, options: dict[str, Any] | None = None) -> None:
        super().__init__(workdir, options)
        self.url: str | None = server_url(self.options)
        self._client = None
        self._db_path = self.workdir / "milvus.db"
        self.lite_port: int | None = None
        self._expr = ""  # the boolean expression sent with every search ("" = unfiltered)

    @classmethod
    def check_point(cls, family, build, search, dim, k) -> list[str]:
        problems = sub_vector_problem("build.pq_m (m)", build["pq_m"], dim) if family == "pq" else []
        if family == "hnsw" and search["ef"] < k:
            problems.append(f"search.ef: {search['ef']} is below k={k}, which Milvus refuses; use ef >= {k}")
        return problems

    # -- lifecycle -----------------------------------------------------------------
    @property
    def lite(self) -> bool:
        return not self.url

    def open(self) -> None:
        from pymilvus import MilvusClient

        if self.lite:
            self.workdir.mkdir(parents=True, exist_ok=True)
            logging.getLogger("grpc._server").addFilter(_unimplemented_probe)
            self._client = MilvusClient(str(self._db_path))
            entry = self._lite_servers().get(str(self._db_path.resolve()))
            self.lite_port = entry[2] if entry else None
        else:
            token = self.options.get("token") or os.environ.get("VDBBENCH_MILVUS_TOKEN") or ""
            try:
                self._client = MilvusClient(uri=self.url, token=token, timeout=float(self.options.get("timeout_s", 20)))
                server = self._client.get_server_version()
            except Exception as e:  # noqa: BLE001 - no answer is an error naming the URL, never a fallback to lite
                raise StoreError(
                    f"milvus: no Milvus server answers at {redact(self.url)} ({str(e).strip()[:200]}); start one "
                    f"(python -m vdbbench services up milvus) or correct options.uri / VDBBENCH_MILVUS_URL"
                ) from None
            problem = version_problem(server)
            if problem:
                raise StoreError(f"milvus at {redact(self.url)}: {problem}")

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing must not hide the original failure
                pass
        if self.lite:
            # pymilvus leaves milvus-lite's in-process gRPC server running until exit; stop it here.
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(str(self._db_path))
            shutil.rmtree(self._db_path, ignore_errors=True)

    @staticmethod
    def _lite_servers() -> dict:
        from milvus_lite.server_manager import server_manager_instance

        return server_manager_instance._servers  # path → (grpc server, engine, port)

    # -- build ---------------------------------------------------------------------
    def create(self, spec: BuildSpec) -> None:
        from pymilvus import DataType

        index_type = INDEX_TYPES[spec.family]
        if self.lite and index_type not in LITE_INDEX_TYPES:
            raise StoreError(
                f"milvus {spec.family} ({index_type}) needs a Milvus server: milvus-lite {version('milvus-lite')} "
                f"accepts {index_type} but does not build it (it builds {', '.join(sorted(LITE_INDEX_TYPES))}); "
                f"set option url to a Milvus standalone server"
            )
        if spec.family == "pq" and spec.dim % spec.params["pq_m"]:
            raise StoreError(f"milvus IVF_PQ: pq_m (m)={spec.params['pq_m']} must divide the dimension {spec.dim}")
        self.refuse_attributes(spec, identifiers=True)  # Milvus field names are identifiers
        self.spec = spec
        self.set_search_params(self.search_params)  # the request for searches made before any setting
        if self._client.has_collection(COLLECTION):
            self._client.drop_collection(COLLECTION)
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=spec.dim)
        for name, kind in spec.attributes.items():
            extra = {"max_length": MAX_VARCHAR} if kind == "str" else {}
            schema.add_field(name, getattr(DataType, FIELD_TYPES[kind]), **extra)
        if self._texts is not None:
            self._add_text_fields(schema)
        self._client.create_collection(COLLECTION, schema=schema)

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        rows = [{"id": int(i), VECTOR: v} for i, v in zip(ids, np.asarray(vectors, dtype=np.float32), strict=True)]
        for name, values in (attributes or {}).items():
            for row, value in zip(rows, np.asarray(values).tolist(), strict=True):  # Python values for the client
                row[name] = value
        if self._texts is not None:
            for row in rows:
                row[TEXT] = self._texts[row["id"]]
        self._client.insert(COLLECTION, rows)

    def delete(self, ids: np.ndarray) -> None:
        """Delete by primary key, and return once a Strong read (which waits until the query nodes have applied every
        write before it) finds none of the rows: only then can no later search answer them."""
        expr = f"id in [{', '.join(str(int(i)) for i in np.asarray(ids).tolist())}]"
        self._client.delete(COLLECTION, filter=expr)
        left = self._client.query(COLLECTION, filter=expr, output_fields=["id"], consistency_level="Strong")
        if left:
            raise StoreError(f"milvus: {len(left)} deleted rows still found by a Strong read, e.g. {left[0]}")

    def build_index(self) -> None:
        """Seal the data, build the index, load it; return once the engine says every row is indexed."""
        spec = self.spec
        self._client.flush(COLLECTION)
        params = self.families[spec.family].engine_params(spec.params)
        if self.lite:
            # milvus-lite 3.2 reads build parameters only from a JSON "params" entry, while pymilvus 3 sends
            # them flattened; without this lite silently builds with its own defaults (seen: nlist 128, M 16).
            params["params"] = dict(params)
        index_params = self._client.prepare_index_params()
        index_params.add_index(
            field_name=VECTOR, index_type=INDEX_TYPES[spec.family], metric_type=METRICS[spec.metric], params=params
        )
        for name, kind in spec.attributes.items():  # one scalar index per attribute, named after its field
            scalar = LITE_SCALAR_INDEX if self.lite else SERVER_SCALAR_INDEXES[kind]
            index_params.add_index(field_name=name, index_type=scalar, index_name=name)
        if self._texts is not None:  # the BM25 function's sparse output, searched by the text leg
            index_params.add_index(field_name=SPARSE, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                                   index_name=SPARSE)  # fmt: skip
        self._client.create_index(COLLECTION, index_params)
        timeout = float(self.options.get("index_timeout_s", 24 * 3600))
        self._wait(self._index_complete, timeout, "index build")
        self._client.load_collection(COLLECTION)
        self._wait(self._loaded, timeout, "collection load")

    def _wait(self, done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise StoreError(f"milvus {what} not complete after {timeout:.0f} s")
            time.sleep(0.2)

    def _index_complete(self) -> bool:
        """Every index (the vector one and each attribute's) reports all rows indexed."""
        for name in (VECTOR, *self.spec.attributes, *([SPARSE] if self._texts is not None else [])):
            desc = self._client.describe_index(COLLECTION, name) or {}
            if desc.get("state") == "Failed":
                raise StoreError(f"milvus index build failed on {name}: {desc.get('index_state_fail_reason', desc)}")
            if not (
                desc.get("state") == "Finished"
                and desc.get("pending_index_rows", 0) == 0
                and desc.get("indexed_rows", 0) >= self.spec.count
            ):
                return False
        return True

    def _loaded(self) -> bool:
        state = str(self._client.get_load_state(COLLECTION).get("state"))
        if not state.endswith("Loaded"):
            return False
        if self.lite:  # lite's describe_index always says Finished: check the loaded segments themselves
            served = self._lite_served()
            return served["memtable_rows"] == 0 and all(s["index"] for s in served["segments"])
        return True

    # -- search --------------------------------------------------------------------
    def set_search_params(self, params: dict[str, Any]) -> None:
        """Build the request's search parameters once, in Milvus's names, rather than on every query."""
        super().set_search_params(params)
        fam = self.families[self.spec.family]
        self._request = {"metric_type": METRICS[self.spec.metric], "params": fam.engine_params(params, "search")}

    def set_filter(self, flt: Filter | None) -> None:
        super().set_filter(flt)
        self._expr = "" if flt is None else engine_filter(typed(flt, self.spec.attributes))

    # -- native hybrid (Milvus's BM25 function + vector search, its own RRF) -----------------------
    def _add_text_fields(self, schema: Any) -> None:
        from bm25s.stopwords import STOPWORDS_EN
        from pymilvus import DataType, Function, FunctionType

        stop = [] if self._text_prep.language == "ja" else [{"type": "stop", "stop_words": sorted(STOPWORDS_EN)}]
        schema.add_field(TEXT, DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
                         analyzer_params={"tokenizer": "standard", "filter": ["lowercase", *stop]})  # fmt: skip
        schema.add_field(SPARSE, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=[TEXT],
                                     output_field_names=[SPARSE]))  # fmt: skip

    def _hybrid_search(self, query: tuple[np.ndarray, str], k: int) -> np.ndarray:
        from pymilvus import AnnSearchRequest, RRFRanker

        vector, text = query
        legs = [AnnSearchRequest([np.asarray(vector, dtype=np.float32)], VECTOR, self._request, k, expr=self._expr),
                AnnSearchRequest([self._text_prep.prepare(text)], SPARSE, {"metric_type": "BM25"}, k,
                                 expr=self._expr)]  # fmt: skip
        hits = self._client.hybrid_search(COLLECTION, legs, RRFRanker(RRF_K), limit=k, output_fields=["id"],
                                          consistency_level=CONSISTENCY)[0]  # fmt: skip
        return np.fromiter((h["id"] for h in hits), dtype=np.int64, count=len(hits))

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        if self._hybrid:
            return self._hybrid_search(query, k)
        hits = self._client.search(
            COLLECTION, data=[query], limit=k, search_params=self._request, anns_field=VECTOR, output_fields=["id"],
            filter=self._expr, consistency_level=CONSISTENCY,
        )[0]  # fmt: skip
        return np.fromiter((h["id"] for h in hits), dtype=np.int64, count=len(hits))

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for start in range(0, len(queries), SEARCH_CHUNK):
            chunk = list(np.asarray(queries[start : start + SEARCH_CHUNK], dtype=np.float32))
            results = self._client.search(
                COLLECTION, data=chunk, limit=k, search_params=self._request, anns_field=VECTOR, output_fields=["id"],
                filter=self._expr, consistency_level=CONSISTENCY,
            )  # fmt: skip
            out.extend(np.fromiter((h["id"] for h in hits), dtype=np.int64, count=len(hits)) for hits in results)
        return out

    def client_handle(self) -> dict[str, Any] | None:
        if self.lite and not self.lite_port:
            return None  # no lite server found to share
        # lite: the gRPC server in this process; server: its URL without user:password@ (token from the environment)
        url = f"http://127.0.0.1:{self.lite_port}" if self.lite else without_credentials(str(self.url))
        note = "clients share milvus-lite's gRPC server in the building process" if self.lite else None
        return {"url": url, "collection": COLLECTION, "vector_field": VECTOR, "spec": self.spec, "note": note}

    def attach(self, handle: dict[str, Any]) -> None:
        """Connect to the server holding the collection (for lite: its gRPC server in the building process)."""
        self.url, self.spec = handle["url"], handle["spec"]  # a URL: close() then deletes nothing
        self.set_search_params(self.search_params)
        self.open()
        if not self._client.has_collection(handle["collection"]):
            raise StoreError(f"milvus: no collection {handle['collection']!r} at {self.url}")

    # -- introspection ---------------------------------------------------------------
    def _lite_served(self) -> dict[str, Any]:
        """What milvus-lite searches: rows still in its memtable (brute force) and each segment's index."""
        engine = self._lite_servers()[str(self._db_path.resolve())][1]
        col = engine.get_collection(COLLECTION)
        segments = []
        for seg in col._segments_snapshot():
            if seg.num_rows == 0:
                continue
            index = seg.indexes.get(VECTOR)
            entry: dict[str, Any] = {"rows": int(seg.num_rows), "index": type(index).__name__ if index else None,
                                     "scalar_indexes": sorted(seg.scalar_indexes)}  # fmt: skip
            faiss_index = getattr(index, "_index", None)
            if hasattr(faiss_index, "nlist"):
                entry["nlist"] = int(faiss_index.nlist)
            if hasattr(faiss_index, "hnsw"):
                entry["M"] = int(faiss_index.hnsw.nb_neighbors(1))
                entry["efConstruction"] = int(faiss_index.hnsw.efConstruction)
            segments.append(entry)
        return {"memtable_rows": int(col._memtable.size()), "segments": segments}

    def effective_config(self) -> dict[str, Any]:
        desc = self._client.describe_index(COLLECTION, VECTOR) or {}
        reported = desc.get("params") if isinstance(desc.get("params"), dict) else desc  # lite nests, server flattens
        family = INDEX_FAMILIES.get(desc.get("index_type"), str(desc.get("index_type")))
        build = self.families[self.spec.family].build
        params = {p.name: _number(reported[p.engine_name]) for p in build if p.engine_name in reported}
        engine: dict[str, Any] = {"describe_index": desc, "search_params_sent": self._request}
        if self.lite:
            served = self._lite_served()
            engine["served"] = served
            kinds = {LITE_INDEX_CLASSES.get(s["index"] or "BruteForceIndex", s["index"]) for s in served["segments"]}
            if served["memtable_rows"]:
                kinds.add("flat")
            family = "+".join(sorted(kinds)) or family
            for seg in served["segments"]:  # the faiss index's own values win over the stored request
                params.update({p.name: seg[p.engine_name] for p in build if p.engine_name in seg})
            indexed = [s for s in served["segments"] if s["index"] not in (None, "BruteForceIndex")]
            rows = served["memtable_rows"] + sum(s["rows"] for s in served["segments"])
            cover = coverage(len(served["segments"]), len(indexed), rows, sum(s["rows"] for s in indexed), "lite")
        else:
            # describe_index counts rows "indexed" even in segments too small for Milvus to index (under
            # minSegmentNumRowsToEnableIndex, 1024 by default): those are searched by brute force. The loaded
            # segments say which ones really carry the index.
            segments = self._client.list_loaded_segments(COLLECTION)
            engine["segments"] = [
                {"rows": int(g.num_rows), "state": g.state_name, "index_id": int(g.index_id), "index": g.index_name}
                for g in segments
            ]
            indexed = [g for g in segments if g.index_id]
            rows = sum(g.num_rows for g in segments)
            indexed_rows = sum(g.num_rows for g in indexed)
            cover = coverage(len(segments), len(indexed), rows, indexed_rows, "list_loaded_segments")
            family = served_family(family, rows, cover["indexed_rows"])
        engine["consistency_level"] = CONSISTENCY
        if self._texts is not None:
            engine["fts"] = self._fts()
        # Milvus keeps no search-time parameters: they travel with each request and no API reports them,
        # so they are left out here (the runner records them as sent).
        return {
            "family": family,
            "metric": {v: k for k, v in METRICS.items()}.get(desc.get("metric_type"), desc.get("metric_type")),
            "params": params,
            "engine": engine,
            "coverage": cover,
            **({"attribute_indexes": self._attribute_indexes(engine)} if self.spec.attributes else {}),
            **({"filter": self._expr} if self.filter else {}),
        }

    def _fts(self) -> dict[str, Any]:
        """The text field's analyzer, the BM25 function and the sparse index, as the engine describes them."""
        described = self._client.describe_collection(COLLECTION)
        field = next((f for f in described["fields"] if f["name"] == TEXT), {})
        params = dict(field.get("params") or {})
        analyzer = params.get("analyzer_params")
        if isinstance(analyzer, str):  # the stopword list as its length: the record stays readable
            analyzer = json.loads(analyzer)
            for f in analyzer.get("filter", []):
                if isinstance(f, dict) and "stop_words" in f:
                    f["stop_words"] = f"{len(f['stop_words'])} words"
            params["analyzer_params"] = analyzer
        keys = ("name", "type", "input_field_names", "output_field_names")
        functions = [{k: _plain(f.get(k)) for k in keys} for f in described.get("functions", [])]
        return {"field": TEXT, "text": self._text_prep.how, "field_params": params, "functions": functions,
                "sparse_index": self._client.describe_index(COLLECTION, SPARSE),
                "ranker": f"RRFRanker({RRF_K})"}  # fmt: skip

    def _attribute_indexes(self, engine: dict[str, Any]) -> dict[str, str]:
        """Scalar index type per attribute from describe_index; on lite only where every loaded segment carries it
        (its memtable rows are scanned), "none" where no index serves the column."""
        out = {}
        for name in self.spec.attributes:
            kind = str((self._client.describe_index(COLLECTION, name) or {}).get("index_type") or "none")
            if self.lite and kind != "none":
                segments = engine["served"]["segments"]
                carrying = sum(name in s["scalar_indexes"] for s in segments)
                kind = kind if segments and carrying == len(segments) else ("none" if not carrying else f"{kind}+none")
            out[name] = kind
        return out

    def resources(self) -> dict[str, Any]:
        if not self.lite:
            stats = self._client.get_collection_stats(COLLECTION)
            return {"row_count": int(stats.get("row_count", 0))}
        files = [p for p in self._db_path.rglob("*") if p.is_file()]
        return {
            "data_bytes": sum(p.stat().st_size for p in files),
            "index_bytes": sum(p.stat().st_size for p in files if "indexes" in p.parts),
        }

    def compose_service(self) -> str | None:
        return self.name if self.url else None  # server mode: its containers' figures go with results

    def engine_version(self) -> str:
        client = f"pymilvus {version('pymilvus')}"
        if self.lite:
            return f"milvus-lite {version('milvus-lite')} ({client})"
        return f"milvus {self._client.get_server_version()} ({client})"

    def drop(self) -> None:
        if self._client is not None and self._client.has_collection(COLLECTION):
            self._client.drop_collection(COLLECTION)
