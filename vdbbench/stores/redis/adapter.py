"""Redis + RediSearch vector index (FLAT or HNSW) over FLOAT32 vectors stored in hashes.

Embedded mode (default) runs redis-server 7.4 with RediSearch 2.10 as a ``LocalServer`` of our own
(see ``server.py``). Server mode connects to a running Redis Stack: option ``url`` or env
``VDBBENCH_REDIS_URL``, password from env ``REDIS_PASSWORD``.

Each row is a hash ``<prefix>:<row id>`` with one field ``vec``. Queries are KNN in query
DIALECT 2 (needed for the KNN syntax), with ``TIMEOUT 0`` (no limit) so RediSearch's default
500 ms timeout, which answers with partial results, cannot silently shorten an answer, and
``LIMIT 0 k`` because FT.SEARCH returns only 10 results by default.

Attributes are hash fields beside ``vec``, indexed as TAG (strings: case-sensitive, one tag per
value) or NUMERIC (numbers). A filter is the hybrid query's pre-filter, ``(@kind:{a}
@year:[2010 (2015])=>[KNN ...]``; RediSearch chooses per query between brute force over the
passing documents and HNSW search in batches filtered until k pass (``HYBRID_POLICY`` auto).
Deleting a row DELs its hash, which removes it from the index before the command returns.

Native hybrid search (``set_texts``, ``set_hybrid``): the passages go into a TEXT field ``text`` (RediSearch's
own tokenizer, English stopwords and stemmer; Japanese passages and queries MeCab-pretokenized by vdbbench, as
RediSearch has no Japanese tokenizer). RediSearch 2.10 has no fusion of a text and a vector ranking (a text clause
before ``=>[KNN ...]`` only filters the KNN; FT.HYBRID with RRF came in Redis 8.4). So each query sends two
FT.SEARCH in one pipelined round trip, the text leg (the query's words OR'ed, ``SCORER BM25STD``) and the KNN leg at
the search setting, k each, and the adapter fuses the engine's two ranked lists by RRF (k=60): the rankings are
RediSearch's, the fusion is vdbbench's.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core import filters
from vdbbench.core.filters import Filter
from vdbbench.stores.base import (
    BuildSpec,
    Case,
    ComposeAddress,
    Conformance,
    FamilySpec,
    IdentityRule,
    Knob,
    Param,
    StoreError,
)
from vdbbench.stores.fulltext import RRF_K, PreparedTexts
from vdbbench.stores.redis.server import DATA_DIR, SECRET_CONF, redis_home, redis_server
from vdbbench.stores.servers import LocalServer, LocalServerStore, close_quietly

DISTANCE = {"euclidean": "L2", "angular": "COSINE", "ip": "IP"}
METRIC_OF_DISTANCE = {v: k for k, v in DISTANCE.items()}
ALGORITHM = {"flat": "FLAT", "hnsw": "HNSW"}
FAMILY_OF_ALGORITHM = {v: k for k, v in ALGORITHM.items()}
DIALECT = 2
QUERY_TIMEOUT_MS = 0  # 0 = no timeout for this query
VECTOR_FIELD = "vec"
TEXT_FIELD = "text"  # the passage, full-text indexed (native hybrid only)
TEXT_SCORER = "BM25STD"  # RediSearch's standard BM25 (its "BM25" scorer in 2.10 is a variant without IDF)
WORD = re.compile(r"\w+")
DISTANCE_ALIAS = "__vec_score"  # RediSearch's own default name for the KNN distance; attributes may not take it
INSERT_CHUNK = 1000  # HSETs per pipeline round trip
TAG_SEPARATOR = "\x1f"  # ASCII unit separator: a string value stays one tag even when it holds commas
LOWER = {"gt": "(", "gte": ""}
UPPER = {"lt": "(", "lte": ""}


def escape_tag(text: str) -> str:
    """``text`` with every ASCII character but letters, digits and _ backslash-escaped, as RediSearch's
    query syntax asks of TAG values and field names (punctuation and spaces would end them)."""
    return "".join(f"\\{ch}" if ch.isascii() and not (ch.isalnum() or ch == "_") else ch for ch in text)


def _number(value: float) -> str:
    return ("+inf" if value > 0 else "-inf") if value in (float("inf"), float("-inf")) else repr(value)


def engine_filter(flt: Filter) -> str:
    """``flt`` as the pre-filter of a hybrid query (the part before ``=>``): TAG sets for strings, NUMERIC
    ranges (``(`` marks an exclusive bound) for numbers, one clause per field, all intersected."""
    clauses = []
    for field, conditions in filters.by_field(flt).items():
        name = "@" + escape_tag(field)
        c = conditions[0]
        values = c.value if c.op == "in" else (c.value,)
        if c.op in ("eq", "in") and isinstance(values[0], str):
            clauses.append(f"{name}:{{{' | '.join(escape_tag(v) for v in values)}}}")
        elif c.op in ("eq", "in"):
            ranges = [f"{name}:[{_number(v)} {_number(v)}]" for v in values]
            clauses.append(ranges[0] if len(ranges) == 1 else f"({' | '.join(ranges)})")
        else:
            bounds = filters.range_bounds(conditions)
            low = next((LOWER[op] + _number(v) for op, v in bounds.items() if op in LOWER), "-inf")
            high = next((UPPER[op] + _number(v) for op, v in bounds.items() if op in UPPER), "+inf")
            clauses.append(f"{name}:[{low} {high}]")
    return "(" + " ".join(clauses) + ")"


def missing_binaries() -> str | None:
    """Why the private Redis Stack cannot start on this host (None when its binaries are there)."""
    try:
        redis_home()
    except StoreError as e:
        return str(e)
    return None


class RedisStore(PreparedTexts, LocalServerStore):
    name = "redis"
    description = "Redis 7.4 + RediSearch 2.10 vector index (local redis-stack build, or VDBBENCH_REDIS_URL)."
    mode = "server"
    server_log = "redis.log"
    server_name = "redis-server"
    server_product = "Redis"
    identity_rules = (
        IdentityRule(r"^Redis (?P<v>\S+) \+ RediSearch (?P<x>\S+)", "Redis", "Redis + RediSearch", "server",
                     "Redis {v} + RediSearch {x} ({where})"),
    )  # fmt: skip
    identity_fallback = ("Redis", "Redis + RediSearch", "server")
    packages = ("redis",)
    compose_services = ("redis",)
    compose_address = ComposeAddress("VDBBENCH_REDIS_URL", "url", "redis://127.0.0.1:6379/0")
    families = {
        "flat": FamilySpec("flat", "RediSearch FLAT", exact=True),
        "hnsw": FamilySpec(
            "hnsw",
            "RediSearch HNSW",
            build=(
                Param("m", int, 16, "graph degree", minimum=1, aliases=("M",)),
                Param(
                    "ef_construction",
                    int,
                    200,
                    "candidate list size while building",
                    minimum=1,
                    aliases=("EF_CONSTRUCTION",),
                ),
            ),
            search=(
                Param(
                    "ef",
                    int,
                    10,
                    "candidate list size while searching (KNN clause)",
                    minimum=1,
                    aliases=("EF_RUNTIME",),
                ),
            ),
        ),
    }
    # the private redis-server this adapter starts (VDBBENCH_REDIS_URL cleared), where redis-stack is unpacked
    conformance = Conformance(
        cases=(Case("flat"), Case("hnsw", {"m": 16, "ef_construction": 200}, {"ef": 200}, floor=0.98)),
        knobs=(Knob("hnsw", {"m": 16, "ef_construction": 200}, {"ef": 10}, {"ef": 400}, floor=0.98),),
        attribute_indexes={"str": "TAG SEPARATOR \\x1f CASESENSITIVE", "int": "NUMERIC", "float": "NUMERIC"},
        resources=("index_bytes", "memory_bytes"),
        unset_env=("VDBBENCH_REDIS_URL",),
        unavailable=missing_binaries,
    )
    supports_batch_search = True  # pipelined FT.SEARCH: one round trip, each query still its own command
    filter_ops = frozenset(filters.OPS)
    filter_note = (
        "hybrid query pre-filter on TAG/NUMERIC fields: per query, brute force over the passing documents or "
        "HNSW searched in batches filtered until k pass (HYBRID_POLICY auto)"
    )
    supports_delete = True  # DEL of the hashes: RediSearch drops them from the index before DEL returns
    reserved_attributes = frozenset({VECTOR_FIELD, DISTANCE_ALIAS, TEXT_FIELD})
    native_hybrid = (
        "RediSearch full-text TEXT field (its tokenizer, English stopwords + stemmer; Japanese MeCab-pretokenized by "
        "vdbbench), SCORER BM25STD, and its KNN, two FT.SEARCH in one round trip; RRF (k=60) computed by vdbbench's "
        "adapter from the two rankings: RediSearch 2.10 has no fusion (FT.HYBRID is Redis 8.4+)"
    )
    concurrent_writes = True  # redis-py's client takes a pooled connection per command; the server serialises
    options_help = {
        "url": "Redis URL (redis://host:6379/0); else VDBBENCH_REDIS_URL; with neither, a private redis-server runs",
        "prefix": "key and index name prefix (default vdbbench)",
        "index_timeout_s": "seconds to wait for the engine to finish indexing (default 3600)",
    }

    def __init__(self, workdir: Path, options: dict[str, Any] | None = None) -> None:
        super().__init__(workdir, options)
        self.prefix = str(self.options.get("prefix", "vdbbench"))
        self.index_name = f"{self.prefix}-idx"
        self._client = None
        self._count = 0
        self._prefilter = "*"  # the hybrid query's filter part: every document, or engine_filter(self.filter)
        self._probe_vector: np.ndarray | None = None  # a stored vector, for FT.PROFILE of a filtered query

    # -- lifecycle -----------------------------------------------------------------
    def embedded_server(self) -> LocalServer:
        self._password = secrets.token_urlsafe(24)
        return redis_server(self.workdir, self._password, self.workdir / self.server_log)

    def _connect(self) -> None:
        import redis

        if self._client is not None:
            self._client.close()
        if self.server is not None:
            self._client = redis.Redis(host="127.0.0.1", port=self.server.port, password=self._password, protocol=2)
        elif self._attached is not None:
            self._client = redis.Redis(**self._attached, protocol=2)
        else:
            self._client = redis.Redis.from_url(self.address, password=os.environ.get("REDIS_PASSWORD"), protocol=2)
        try:
            modules = {m["name"]: m["ver"] for m in map(_pairs, self._client.execute_command("MODULE", "LIST"))}
        except redis.RedisError as e:
            raise self.unreachable_error(e) from None
        if "search" not in modules:
            raise StoreError("this Redis has no RediSearch module ('search' not in MODULE LIST); use Redis Stack")
        self._search_version = modules["search"]

    def _close_clients(self) -> None:
        client, self._client = self._client, None
        close_quietly(client)

    # -- build ---------------------------------------------------------------------
    def create(self, spec: BuildSpec) -> None:
        from redis.commands.search.field import NumericField, TagField, TextField, VectorField
        from redis.commands.search.index_definition import IndexDefinition, IndexType

        self.refuse_attributes(spec)
        self._ensure_connected()
        self.spec = spec
        self._drop_index_and_keys()
        attributes: dict[str, Any] = {"TYPE": "FLOAT32", "DIM": spec.dim, "DISTANCE_METRIC": DISTANCE[spec.metric]}
        attributes |= {p.engine_name: int(spec.params[p.name]) for p in self.families[spec.family].build}
        fields = [VectorField(VECTOR_FIELD, ALGORITHM[spec.family], attributes)]
        fields += [TagField(name, separator=TAG_SEPARATOR, case_sensitive=True) if kind == "str" else NumericField(name)
                   for name, kind in spec.attributes.items()]  # fmt: skip
        fields += [TextField(TEXT_FIELD)] if self._texts is not None else []
        self._client.ft(self.index_name).create_index(
            fields, definition=IndexDefinition(prefix=[f"{self.prefix}:"], index_type=IndexType.HASH)
        )
        self._count = 0
        self._probe_vector = None
        self.filter, self._prefilter = None, "*"
        self._query = self._knn_query({})

    def _drop_index_and_keys(self) -> None:
        import redis

        try:
            self._client.ft(self.index_name).dropindex(delete_documents=True)
        except redis.ResponseError as e:
            if "unknown index" not in str(e).lower() and "no such index" not in str(e).lower():
                raise
        # keys a crashed earlier run left without an index
        batch = []
        for key in self._client.scan_iter(match=f"{self.prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self._client.unlink(*batch)
                batch = []
        if batch:
            self._client.unlink(*batch)

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: dict[str, np.ndarray] | None = None) -> None:
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        columns = {name: np.asarray(values).tolist() for name, values in (attributes or {}).items()}  # Python types
        if self._probe_vector is None and len(vectors):
            self._probe_vector = vectors[0].copy()
        pipe = self._client.pipeline(transaction=False)
        for start in range(0, len(ids), INSERT_CHUNK):
            for row in range(start, min(start + INSERT_CHUNK, len(ids))):
                fields = {VECTOR_FIELD: vectors[row].tobytes()} | {name: col[row] for name, col in columns.items()}
                if self._texts is not None:
                    fields[TEXT_FIELD] = self._texts[int(ids[row])]
                pipe.hset(f"{self.prefix}:{int(ids[row])}", mapping=fields)
            pipe.execute()
        self._count += len(ids)

    def delete(self, ids: np.ndarray) -> None:
        pipe = self._client.pipeline(transaction=False)
        for start in range(0, len(ids), INSERT_CHUNK):
            pipe.delete(*(f"{self.prefix}:{int(i)}" for i in ids[start : start + INSERT_CHUNK]))
        self._count -= sum(pipe.execute())

    def build_index(self) -> None:
        """Poll FT.INFO until RediSearch says every inserted hash is indexed."""
        deadline = time.monotonic() + float(self.options.get("index_timeout_s", 3600))
        delay = 0.005
        while True:
            info = self._client.ft(self.index_name).info()
            if (
                int(info["indexing"]) == 0
                and float(info["percent_indexed"]) == 1.0
                and int(info["num_docs"]) == self._count
            ):
                return
            if int(info.get("hash_indexing_failures", 0)):
                raise StoreError(f"RediSearch failed to index {info['hash_indexing_failures']} hashes")
            if time.monotonic() > deadline:
                raise StoreError(f"RediSearch still indexing after the timeout: {info['num_docs']}/{self._count} docs")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    # -- search --------------------------------------------------------------------
    def set_search_params(self, params: dict[str, Any]) -> None:
        super().set_search_params(params)
        self._query = self._knn_query(params)

    def set_filter(self, flt: Filter | None) -> None:
        super().set_filter(flt)
        self._prefilter = engine_filter(flt) if flt is not None else "*"
        self._query = self._knn_query(self.search_params)

    def _knn_query(self, params: dict[str, Any]) -> str:
        """The hybrid query: the pre-filter, then the KNN clause; HNSW always names EF_RUNTIME (the default if
        not given) so FT.EXPLAIN reports it."""
        ef = ""
        if self.spec.family == "hnsw":
            default = self.families["hnsw"].search_param("ef").default
            ef = f" EF_RUNTIME {int(params.get('ef', default))}"
        return f"{self._prefilter}=>[KNN $K @{VECTOR_FIELD} $BLOB{ef} AS {DISTANCE_ALIAS}]"

    def _search_args(self, query: np.ndarray, k: int) -> list[Any]:
        blob = np.ascontiguousarray(query, dtype="<f4").tobytes()
        return ["FT.SEARCH", self.index_name, self._query, "PARAMS", 4, "K", k, "BLOB", blob, "SORTBY", DISTANCE_ALIAS,
                "NOCONTENT", "LIMIT", 0, k, "DIALECT", DIALECT, "TIMEOUT", QUERY_TIMEOUT_MS]  # fmt: skip

    def _ids(self, reply: list[Any]) -> np.ndarray:
        """FT.SEARCH NOCONTENT reply [total, key, key, ...] → row ids, best first."""
        cut = len(self.prefix) + 1
        return np.fromiter((int(key[cut:]) for key in reply[1:]), dtype=np.int64, count=len(reply) - 1)

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        if self._hybrid:
            return self._hybrid_search(query, k)
        return self._ids(self._client.execute_command(*self._search_args(query, k)))

    # -- native hybrid (RediSearch's BM25 and KNN rankings, fused here by RRF) -------------------
    def _text_query(self, text: str) -> str | None:
        """The text leg: the query's words OR'ed in the TEXT field (RediSearch drops stopwords and stems them), under
        the filter; None for a query without a word."""
        words = WORD.findall(self._text_prep.prepare(text))
        if not words:
            return None
        where = "" if self._prefilter == "*" else self._prefilter + " "
        return f"{where}@{TEXT_FIELD}:({'|'.join(escape_tag(w) for w in dict.fromkeys(words))})"

    def _hybrid_search(self, query: tuple[np.ndarray, str], k: int) -> np.ndarray:
        vector, text = query
        pipe = self._client.pipeline(transaction=False)
        pipe.execute_command(*self._search_args(vector, k))
        text_query = self._text_query(text)
        if text_query is not None:
            pipe.execute_command("FT.SEARCH", self.index_name, text_query, "SCORER", TEXT_SCORER, "NOCONTENT",
                                 "LIMIT", 0, k, "DIALECT", DIALECT, "TIMEOUT", QUERY_TIMEOUT_MS)  # fmt: skip
        return rrf([self._ids(reply) for reply in pipe.execute()], k)

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        pipe = self._client.pipeline(transaction=False)
        for q in queries:
            pipe.execute_command(*self._search_args(q, k))
        return [self._ids(reply) for reply in pipe.execute()]

    # -- introspection ---------------------------------------------------------------
    def effective_config(self) -> dict[str, Any]:
        """Index from FT.INFO attributes; EF_RUNTIME as RediSearch parses the query (FT.EXPLAIN); under a filter,
        the hybrid policy RediSearch picked for one query (FT.PROFILE)."""
        info = self._client.ft(self.index_name).info()
        fields = {_pairs(entry)["identifier"]: entry for entry in info["attributes"]}
        attrs = _pairs(fields.pop(VECTOR_FIELD))
        text_field = fields.pop(TEXT_FIELD, None)  # native hybrid's passage field, not an attribute
        family = FAMILY_OF_ALGORITHM.get(str(attrs.get("algorithm")), str(attrs.get("algorithm")))
        params: dict[str, Any] = {}
        if family == "hnsw":
            params = {"m": int(attrs["M"]), "ef_construction": int(attrs["ef_construction"])}
            explained = self._client.execute_command(
                "FT.EXPLAIN", self.index_name, self._query, "PARAMS", 4, "K", 10, "BLOB",
                np.zeros(int(attrs["dim"]), dtype="<f4").tobytes(), "DIALECT", DIALECT,
            )  # fmt: skip
            explained = explained.decode() if isinstance(explained, bytes) else str(explained)
            found = re.search(r"EF_RUNTIME = (\d+)", explained)
            params["ef"] = int(found.group(1)) if found else None  # as RediSearch parsed the query
        server_config = {
            name: self._client.execute_command("FT.CONFIG", "GET", name)[0][1].decode()
            for name in ("TIMEOUT", "ON_TIMEOUT", "DEFAULT_DIALECT")
        }
        query = {"knn": self._query, "dialect": DIALECT, "timeout_ms": QUERY_TIMEOUT_MS, "limit": "0 k",
                 "sortby": DISTANCE_ALIAS}  # fmt: skip
        out = {
            "family": family,
            "metric": METRIC_OF_DISTANCE.get(str(attrs.get("distance_metric"))),
            "params": params,
            "engine": {"attributes": attrs, "num_docs": int(info["num_docs"]), "query": query,
                       "search_config": server_config},
        }  # fmt: skip
        if fields:  # the attribute fields as FT.INFO has them: type, then its options (e.g. TAG SEPARATOR \\x1f ...)
            out["attribute_indexes"] = {name: " ".join(_text(x).encode("unicode_escape").decode() for x in entry[5:])
                                        for name, entry in fields.items()}  # fmt: skip
        if self.filter is not None:
            out["filter"] = self._prefilter
            query["hybrid_policy"] = self._hybrid_policy()
        if self._texts is not None:
            out["engine"]["fts"] = {"field": TEXT_FIELD, "text": self._text_prep.how, "scorer": TEXT_SCORER,
                                    "index": " ".join(str(_text(x)) for x in text_field or []),
                                    "fusion": f"RRF k={RRF_K} by vdbbench's adapter"}  # fmt: skip
        return out

    def _hybrid_policy(self) -> str | None:
        """How RediSearch ran the filtered KNN for one stored vector (FT.PROFILE): HNSW in batches filtered until
        k pass, or brute force over the passing documents; it chooses per query, so this is one sample."""
        if self._probe_vector is None:
            return None
        if self.spec.family != "hnsw":
            return "brute force (FLAT index)"
        args = self._search_args(self._probe_vector, 10)
        reply = self._client.execute_command("FT.PROFILE", self.index_name, "SEARCH", "QUERY", *args[2:])
        text = str(reply[1])
        if "VECTOR" not in text:
            return "no vector search (nothing passes the filter)"
        found = re.search(r"b'Batches number', (\d+)", text)
        return f"batches ({found.group(1)} for one query)" if found else "ad-hoc brute force over the passing documents"

    def client_handle(self) -> dict[str, Any]:
        """Connection details for client processes: each opens its own connection to the same server."""
        connection = None  # server mode: clients use the same url (and REDIS_PASSWORD from their environment)
        if self.server is not None:
            connection = {"host": "127.0.0.1", "port": self.server.port, "password": self._password}
        return {
            "url": self.address, "connection": connection, "server": self.server.handle() if self.server else None,
            "prefix": self.prefix, "spec": self.spec, "count": self._count,
            "search_params": self.search_params,
            "note": "each client process has its own connection to the one redis-server",
        }  # fmt: skip

    def attach(self, handle: dict[str, Any]) -> None:
        """Search the index another instance built; close() then only closes this connection."""
        self.address = handle["url"]
        self._attached = handle["connection"]
        self._attached_server = handle.get("server")
        self.prefix, self.spec, self._count = handle["prefix"], handle["spec"], handle["count"]
        self.index_name = f"{self.prefix}-idx"
        self._connect()
        self.set_search_params(handle["search_params"])

    def owned_paths(self) -> list[str]:
        """The embedded server's data directory and the config file holding its password."""
        if self.address or self._attached is not None:
            return []
        return [str(self.workdir / DATA_DIR), str(self.workdir / SECRET_CONF)]

    def resources(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            out["used_memory"] = int(self._client.info("memory")["used_memory"])
            info = self._client.ft(self.index_name).info()
            out["index_bytes"] = int(float(info["vector_index_sz_mb"]) * 1024 * 1024)
        except Exception:  # noqa: BLE001 - sizes are best effort
            pass
        return out | self.server_resources()

    def build_threads(self) -> int | None:
        """RediSearch adds each hash to the HNSW graph on the thread that writes it: one, whatever the host.

        (RediSearch 2.10's WORKERS pool serves queries, not this build; inserts come over one connection.)
        """
        return 1

    def engine_version(self) -> str | None:
        try:
            server = self._client.info("server")["redis_version"]
        except Exception:  # noqa: BLE001
            return None
        v = int(self._search_version)
        return f"Redis {server} + RediSearch {v // 10000}.{v // 100 % 100}.{v % 100}"

    def drop(self) -> None:
        if self._client is not None and (self.server is None or self.server.is_running()):
            self._drop_index_and_keys()
        self._count = 0


def rrf(rankings: list[np.ndarray], k: int) -> np.ndarray:
    """Reciprocal rank fusion of ranked id lists: score = sum of 1 / (RRF_K + rank), rank from 1; the top ``k``
    ids, ties in the order first seen (the KNN leg first)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking.tolist(), start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (RRF_K + rank)
    best = sorted(scores, key=lambda doc: -scores[doc])[:k]
    return np.asarray(best, dtype=np.int64)


def _text(x: Any) -> Any:
    return x.decode() if isinstance(x, bytes) else x


def _pairs(flat: list[Any]) -> dict[str, Any]:
    """RESP2 [name, value, name, value, ...] → {name: value}, bytes decoded (a trailing lone flag is left out)."""
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
