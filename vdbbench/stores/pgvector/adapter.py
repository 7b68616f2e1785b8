"""PostgreSQL + pgvector: flat (sequential scan), HNSW and IVFFlat indexes, queried over SQL.

Embedded mode (default) runs the PostgreSQL 16 + pgvector build that the PyPI package
``pgserver`` bundles, as a ``LocalServer`` of our own: TCP on 127.0.0.1 and a free port,
unix sockets off, a random scram password, data under the store's workdir. (pgserver's
own ``get_server()`` is not used: it serves one cached handle per data directory, so a
killed server would be handed back again, and it stops the server only when its last
handle in any process is released; nor is pgserver imported at all: its import alone warns
about XDG_RUNTIME_DIR.) PostgreSQL refuses to run as root: run as root, the adapter starts it
as the user ``pgserver`` (created like pgserver does), with its data in a private directory
made for it under the system temp folder and owned by that user, so no permission of a
folder the user owns is ever changed (the binaries are copied there too when that user
cannot reach them where they are installed). Server mode connects to a
running PostgreSQL with the vector extension: option ``dsn`` or env ``VDBBENCH_PG_DSN``,
password from the usual libpq env ``PGPASSWORD``.

Index families are queried with ``SET enable_seqscan = off`` in the search session, so on
small tables the planner uses the index that was asked for instead of a cheaper-looking
sequential scan; EXPLAIN confirms which plan runs and the effective config reports
``flat`` whenever it is a sequential scan.

Attributes are columns (bigint, double precision, text) with a btree index each, and a filter is a
``WHERE`` clause of quoted literals. pgvector's approximate indexes filter *after* the index scan
(its README): an HNSW scan yields at most ``hnsw.ef_search`` rows (IVFFlat: the probed lists) and
the rows failing the filter are dropped from those, so a selective filter gives short answers,
counted as they are. pgvector 0.8 added iterative index scans (option ``iterative_scan``) that
keep scanning until enough rows pass; older versions refuse the option. The planner may also
serve a filtered query from a btree index and sort the passing rows exactly: EXPLAIN of the
filtered query says which, and the effective config reports ``flat`` then.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core import filters
from vdbbench.core.filters import Filter
from vdbbench.stores.base import BuildSpec, ComposeAddress, FamilySpec, IdentityRule, Param, Store, StoreError
from vdbbench.stores.servers import (
    LocalServer,
    as_user,
    close_quietly,
    remove_server_files,
    shared_memory_of,
    unreachable,
)

OPS = {"euclidean": ("vector_l2_ops", "<->"), "angular": ("vector_cosine_ops", "<=>"), "ip": ("vector_ip_ops", "<#>")}
METRIC_OF_OPERATOR = {op: metric for metric, (_, op) in OPS.items()}
ACCESS_METHOD = {"hnsw": "hnsw", "ivf": "ivfflat"}
FAMILY_OF_ACCESS_METHOD = {v: k for k, v in ACCESS_METHOD.items()}
COLUMN_TYPES = {"int": "bigint", "float": "double precision", "str": "text"}
COPY_FORMATS = {"int": ">i8", "float": ">f8"}  # binary COPY layout of the fixed-width attribute columns
SQL_OPS = {"eq": "=", **filters.RANGE_SYMBOLS}
ITERATIVE_SCANS = ("off", "relaxed_order", "strict_order")
ITERATIVE_SCAN_SINCE = (0, 8, 0)  # pgvector release that added hnsw.iterative_scan / ivfflat.iterative_scan


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


def default_settings(memory_bytes: int | None = None, cpus: int | None = None) -> dict[str, str]:
    """Settings of the embedded server, sized from the host (an option ``settings`` overrides each).

    ``maintenance_work_mem`` 12.5% of host memory, at least 256 MB, at most 4 GB (pgvector's docs: large
    enough for the HNSW graph, else the build spills and slows); ``max_parallel_maintenance_workers``
    one per further core, so the index builds on every core as hnswlib and the other engines do.
    ``shared_buffers`` 25% of host memory (PostgreSQL's documented starting point for a dedicated
    server), at least its own default 128 MB, at most 4 GB.
    """
    import psutil

    memory = memory_bytes or psutil.virtual_memory().total
    cpus = cpus or os.cpu_count() or 1
    mb = 1024 * 1024
    return {
        "shared_buffers": f"{max(128, min(memory // 4 // mb, 4096))}MB",
        "maintenance_work_mem": f"{max(256, min(memory // 8 // mb, 4096))}MB",
        "max_parallel_maintenance_workers": str(max(cpus - 1, 0)),
    }


SHOWN_SETTINGS = (
    "hnsw.ef_search", "ivfflat.probes", "enable_seqscan", "maintenance_work_mem", "max_parallel_maintenance_workers",
    "shared_buffers", "work_mem", "jit", "plan_cache_mode",
)  # fmt: skip
PG_USER_WHEN_ROOT = "pgserver"  # PostgreSQL refuses to run as root; the same user pgserver itself creates


class PgvectorStore(Store):
    name = "pgvector"
    description = "PostgreSQL 16 + pgvector 0.6 (pgserver build, or your server via VDBBENCH_PG_DSN), over SQL."
    mode = "server"
    identity_rules = (
        IdentityRule(r"^PostgreSQL (?P<v>\S+) \+ pgvector (?P<x>\S+)", "pgvector", "PostgreSQL + pgvector", "server",
                     "PostgreSQL {v} + pgvector {x} ({where})"),
    )  # fmt: skip
    identity_fallback = ("pgvector", "PostgreSQL + pgvector", "server")
    packages = ("pgserver", "psycopg", "pgvector")
    compose_services = ("pgvector",)
    # password: PGPASSWORD, read by libpq itself
    compose_address = ComposeAddress("VDBBENCH_PG_DSN", "dsn", "postgresql://postgres@127.0.0.1:5432/postgres")
    families = {
        "flat": FamilySpec(
            "flat", "no index (sequential scan)", exact=True, note="ORDER BY distance LIMIT k over the whole table"
        ),
        "hnsw": FamilySpec(
            "hnsw",
            "pgvector hnsw",
            build=(
                Param("m", int, 16, "graph degree", minimum=2, maximum=100),
                Param("ef_construction", int, 64, "candidate list size while building", minimum=4, maximum=1000),
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
            ),
            max_dim=2000,
        ),
        "ivf": FamilySpec(
            "ivf",
            "pgvector ivfflat",
            build=(Param("nlist", int, 100, "number of k-means lists", minimum=1, maximum=32768, aliases=("lists",)),),
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
            ),
            note="lists are trained on the rows present when the index is built (after all inserts)",
            max_dim=2000,
        ),
    }
    supports_batch_search = True  # pipelined: one round trip for many queries, each still its own SELECT
    filter_ops = frozenset(filters.OPS)
    filter_note = (
        "SQL WHERE on btree-indexed columns; the planner picks a vector index scan post-filtered (only the passing "
        "share of ef_search rows: short answers) or a btree scan sorted exactly (reported flat)"
    )
    supports_delete = True  # DELETE ... WHERE id = ANY(...); MVCC hides the rows from every later statement
    reserved_attributes = frozenset({"id", "embedding"})
    concurrent_writes = True  # writes use their own connection; PostgreSQL's MVCC isolates them from searches
    options_help = {
        "dsn": "PostgreSQL DSN of your server; else VDBBENCH_PG_DSN; with neither, a private pgserver runs",
        "table": "table name (default vdbbench_items)",
        "settings": "PostgreSQL settings for the embedded server (e.g. shared_buffers, maintenance_work_mem)",
        "iterative_scan": "pgvector >= 0.8 iterative index scans under a filter: off (default), relaxed_order or "
        "strict_order (hnsw only)",
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
        self.dsn = self.options.get("dsn") or os.environ.get("VDBBENCH_PG_DSN")
        self.server = None
        self._data_root: Path | None = None  # the directory holding pgdata: made for the embedded server
        self._conn = None
        self._writer = None  # the connection inserts and deletes use, so searches run beside them
        self._password: str | None = None
        self._count = 0
        self._probe_vector: np.ndarray | None = None
        self._attached: dict[str, Any] | None = None  # connection of a second process searching our index
        self._attached_server: dict[str, Any] | None = None  # the embedded server that process searches
        self._where = ""  # the SQL WHERE clause of the filter set, "" when unfiltered
        self.iterative_scan = str(self.options.get("iterative_scan", "off"))
        if problems := self.check_options("", self.options):
            raise StoreError("; ".join(problems))

    @classmethod
    def check_options(cls, family: str, options: Mapping[str, Any]) -> list[str]:
        scan = str(options.get("iterative_scan", "off"))
        if scan not in ITERATIVE_SCANS:
            return [f"options.iterative_scan: {scan!r} is not one of {list(ITERATIVE_SCANS)}"]
        if scan == "strict_order" and family == "ivf":
            return ["options.iterative_scan: ivfflat scans only in relaxed_order; use relaxed_order or off"]
        return []

    # -- lifecycle -----------------------------------------------------------------
    def open(self) -> None:
        if not self.dsn:
            self._start_embedded()
        self._connect()
        if self.iterative_scan != "off" and not self._has_iterative_scan():
            message = (
                f"options.iterative_scan: {self.iterative_scan} needs pgvector >= "
                f"{'.'.join(map(str, ITERATIVE_SCAN_SINCE))}, this server has {self._extension_version()}; "
                "drop the option (filtered index scans then post-filter ef_search rows) or upgrade pgvector"
            )
            self.close()  # nothing keeps running for a store that refused to open
            raise StoreError(message)

    def _extension_version(self) -> str:
        return self._conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]

    def _has_iterative_scan(self) -> bool:
        numbers = tuple(int(x) for x in re.findall(r"\d+", self._extension_version())[:3])
        return numbers >= ITERATIVE_SCAN_SINCE

    def _start_embedded(self) -> None:

        user = self._runas_user()
        self._password = secrets.token_urlsafe(24)
        self._data_root = self._make_data_root(user)
        bin_dir = self._reachable_install(user) / "bin"
        data_dir = self._data_root / "pgdata"
        self._initdb(bin_dir, data_dir, user)
        settings = default_settings() | {str(k): str(v) for k, v in (self.options.get("settings") or {}).items()}

        def command(port: int) -> list[str]:
            argv = [bin_dir / "postgres", "-D", data_dir, "-p", port,
                    "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]  # fmt: skip
            for key, value in settings.items():
                argv += ["-c", f"{key}={value}"]
            return argv

        self.server = LocalServer(
            "postgres", command, data_dir, lambda s: self._probe(s.port), log_path=self.workdir / "postgres.log",
            user=user, stop_signal=signal.SIGINT,  # SIGINT: PostgreSQL's "fast" shutdown
        )  # fmt: skip
        self.server.start()

    @staticmethod
    def _runas_user() -> str | None:
        """The user PostgreSQL runs as when we are root (it refuses root), created once like pgserver does."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(PG_USER_WHEN_ROOT)
        except KeyError:
            subprocess.run(["useradd", "-s", "/bin/bash", PG_USER_WHEN_ROOT], check=True, capture_output=True)
        return PG_USER_WHEN_ROOT

    def _make_data_root(self, user: str | None) -> Path:
        """Where pgdata goes: the workdir, or, for another user, a private directory made for that user.

        Run as root, the server user must reach its data; rather than open up the user's folders,
        the data lives in a fresh 0700 directory in the system temp folder, owned by the server user.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        if user is None:
            root = self.workdir
            shutil.rmtree(root / "pgdata", ignore_errors=True)
            return root
        root = Path(tempfile.mkdtemp(prefix="vdbbench-pg-"))
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        if not others_can_traverse(root.parent):
            shutil.rmtree(root, ignore_errors=True)
            raise StoreError(
                f"PostgreSQL runs as user {user!r} (it refuses root) and cannot reach the temp folder "
                f"{root.parent}; point TMPDIR to a folder every user can traverse (e.g. /tmp)"
            )
        return root

    def _reachable_install(self, user: str | None) -> Path:
        """pgserver's PostgreSQL install, copied into the data root when the server user cannot reach it.

        The copy keeps the wheel's layout (``pgserver/pginstall`` next to ``pgserver.libs``), which
        the binaries' relative library path (RPATH ``$ORIGIN/../../../pgserver.libs``) expects.
        """
        package = Path(find_spec("pgserver").submodule_search_locations[0])
        if user is None or others_can_traverse(package / "pginstall" / "bin"):
            return package / "pginstall"
        for part in ("pgserver/pginstall", "pgserver.libs"):
            if (package.parent / part).exists():
                shutil.copytree(package.parent / part, self._data_root / part, symlinks=True)
        return self._data_root / "pgserver" / "pginstall"

    def _initdb(self, bin_dir: Path, data_dir: Path, user: str | None) -> None:
        data_dir.mkdir(mode=0o700)
        pwfile = self._data_root / ".pg-initdb-password"
        pwfile.touch(mode=0o600)
        pwfile.write_text(self._password + "\n")
        try:
            if user:
                entry = pwd.getpwnam(user)
                for path in (data_dir, pwfile):
                    os.chown(path, entry.pw_uid, entry.pw_gid)
            done = subprocess.run(
                [bin_dir / "initdb", "-D", data_dir, "-U", "postgres", f"--pwfile={pwfile}", "--auth=scram-sha-256",
                 "--encoding=UTF8", "--locale=C", "--no-instructions", "--no-sync"],
                capture_output=True, text=True, **as_user(user),
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise StoreError(f"initdb failed ({done.returncode}): {done.stderr.strip()[-2000:]}")

    def _probe(self, port: int) -> bool:
        import psycopg

        with psycopg.connect(**self._embedded_conninfo(port), connect_timeout=2):
            return True

    def _conninfo(self) -> dict[str, Any]:
        if self.server is not None:
            return self._embedded_conninfo(self.server.port)
        if self._attached is not None:
            return self._attached
        return {"conninfo": self.dsn}  # libpq reads PGPASSWORD itself

    def _embedded_conninfo(self, port: int) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": port, "user": "postgres", "password": self._password, "dbname": "postgres"}

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
            if self.server is not None or self._attached_server is not None:
                where = "the embedded PostgreSQL"
            else:
                where = "PostgreSQL (VDBBENCH_PG_DSN / option dsn)"
            raise StoreError(unreachable(self.server or self._attached_server, e, where)) from None
        self._conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(self._conn)

    def _write_conn(self) -> Any:
        """The connection of inserts and deletes (opened on first use): a search on ``_conn`` may run meanwhile."""
        import psycopg

        if self._writer is None or self._writer.closed or self._writer.broken:
            self._writer = psycopg.connect(**self._conninfo(), autocommit=True)
        return self._writer

    def _ensure_connected(self) -> None:
        """Restart an embedded server that died (e.g. killed) and reconnect a broken connection."""
        if self.server is not None and self.server.ensure_running():
            self._connect()
        elif self._conn is None or self._conn.closed or self._conn.broken:
            self._connect()

    def close(self) -> None:

        for conn in (self._conn, self._writer):
            close_quietly(conn)
        self._conn = self._writer = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        for path in self.owned_paths():  # everything the embedded server wrote
            remove_server_files(Path(path))
        self._data_root = None
        if not self.dsn and self._attached is None:
            (self.workdir / "postgres.log").unlink(missing_ok=True)

    # -- build ---------------------------------------------------------------------
    def create(self, spec: BuildSpec) -> None:
        from psycopg import sql

        self._ensure_connected()
        self.spec = spec
        self._count = 0
        self._probe_vector = None
        if self.iterative_scan == "strict_order" and spec.family == "ivf":
            raise StoreError("options.iterative_scan: ivfflat scans only in relaxed_order; use relaxed_order or off")
        self.refuse_attributes(spec)
        table = sql.Identifier(self.table)
        self._conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        columns = [sql.SQL("id bigint NOT NULL"), sql.SQL("embedding vector({}) NOT NULL").format(int(spec.dim))]
        columns += [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(COLUMN_TYPES[kind]))
                    for name, kind in spec.attributes.items()]  # fmt: skip
        self._conn.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(columns)))
        for name in spec.attributes:  # pgvector's README: index the filtered columns (btree)
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
        if self.iterative_scan != "off" and self.spec.family in ACCESS_METHOD:
            self._conn.execute(f"SET {ACCESS_METHOD[self.spec.family]}.iterative_scan = {self.iterative_scan}")
        # the clause holds only quoted literals; "%" is doubled as the statement also takes parameters
        where = sql.SQL(" WHERE " + self._where.replace("%", "%%")) if self._where else sql.SQL("")
        self._search_sql = sql.SQL("SELECT id FROM {}{} ORDER BY embedding {} %s LIMIT %s").format(
            sql.Identifier(self.table), where, sql.SQL(OPS[self.spec.metric][1])
        )

    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: dict[str, np.ndarray] | None = None) -> None:
        from psycopg import sql

        vectors = np.asarray(vectors, dtype=np.float32)
        if self._probe_vector is None and len(vectors):
            self._probe_vector = vectors[0].copy()
        columns = copy_columns(self.spec.attributes) if attributes else []
        names = sql.SQL(", ").join(map(sql.Identifier, ["id", "embedding", *columns]))
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT BINARY)").format(sql.Identifier(self.table), names)
        kinds = {name: self.spec.attributes[name] for name in columns}
        rows = binary_copy_rows(np.asarray(ids, dtype=np.int64), vectors, {n: (kinds[n], attributes[n]) for n in kinds})
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
            opclass = OPS[spec.metric][0]
            options = ", ".join(f"{p.engine_name} = {int(spec.params[p.name])}" for p in self._build_params())
            # CREATE INDEX is synchronous: the index is complete and searchable once it returns.
            self._conn.execute(
                sql.SQL("CREATE INDEX {} ON {} USING {} (embedding {}) WITH ({})").format(
                    sql.Identifier(self.index_name), sql.Identifier(self.table), sql.SQL(ACCESS_METHOD[spec.family]),
                    sql.SQL(opclass), sql.SQL(options),
                )
            )  # fmt: skip
        self._conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(self.table)))

    def _build_params(self) -> tuple:
        return self.families[self.spec.family].build

    # -- search --------------------------------------------------------------------
    def set_search_params(self, params: dict[str, Any]) -> None:
        super().set_search_params(params)
        if "ef" in params:
            self._conn.execute(f"SET hnsw.ef_search = {int(params['ef'])}")
        if "nprobe" in params:
            self._conn.execute(f"SET ivfflat.probes = {int(params['nprobe'])}")

    def set_filter(self, flt: Filter | None) -> None:
        super().set_filter(flt)
        self._where = engine_filter(flt) if flt is not None else ""
        self._prepare_session()

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        rows = self._conn.execute(self._search_sql, (np.asarray(query, dtype=np.float32), k), prepare=True,
                                  binary=True).fetchall()  # fmt: skip
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
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
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in SHOWN_SETTINGS}
        plan = self._explain()
        engine: dict[str, Any] = {"table": self.table, "settings": settings, "plan": plan}
        params: dict[str, Any] = {}
        family = "flat"
        if index is not None:
            amname, reloptions, indexdef = index
            engine["index"] = {"access_method": amname, "reloptions": reloptions, "definition": indexdef}
            options = dict(opt.split("=", 1) for opt in reloptions or [])
            fam_name = FAMILY_OF_ACCESS_METHOD.get(amname)
            if fam_name:
                for p in self.families[fam_name].build:  # absent from reloptions = the engine default
                    params[p.name] = int(options.get(p.engine_name, p.default))
                if fam_name == "hnsw":
                    params["ef"] = int(settings["hnsw.ef_search"])  # SHOW: the session's value, as the engine has it
                else:
                    params["nprobe"] = int(settings["ivfflat.probes"])
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
        return out

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

    def owned_processes(self) -> list[int]:
        return [self.server.pid] if self.server is not None and self.server.is_running() else []

    def owned_paths(self) -> list[str]:
        """The embedded server's data (pgdata, or the private directory holding it) and the shared memory
        control segment of its postmaster, which lists every other segment it created."""
        if self._data_root is None:
            return []
        data = self._data_root if self._data_root != self.workdir else self._data_root / "pgdata"
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
        if self.server is not None and self.server.is_running():
            out |= {"memory_bytes": self.server.rss_bytes(), "data_bytes": self.server.data_bytes()}
        return out

    def compose_service(self) -> str | None:
        return "pgvector" if self.dsn else None  # server mode: its containers' figures go with results

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


def others_can_traverse(path: Path) -> bool:
    """Whether a user other than the owner (and not in its group) can reach ``path`` through its parents."""
    path = Path(path).resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


def copy_columns(kinds: dict[str, str]) -> list[str]:
    """Attribute columns in the order ``binary_copy_rows`` writes them: fixed-width numbers, then texts."""
    return [n for n, kind in kinds.items() if kind != "str"] + [n for n, kind in kinds.items() if kind == "str"]


def binary_copy_rows(ids: np.ndarray, vectors: np.ndarray,
                     attributes: dict[str, tuple[str, np.ndarray]] | None = None) -> bytes:  # fmt: skip
    """One COPY ... (FORMAT BINARY) stream of (bigint id, vector, attribute...) rows, built with numpy.

    Layout (PostgreSQL COPY binary format): signature, flags, header extension length; per row
    a field count, then each field's byte length and value in network byte order; the
    pgvector value is int16 dim, int16 unused, dim float4; bigint is int8, double precision
    float8, text its UTF-8 bytes. A trailer of -1 ends the stream. ``attributes`` (name →
    (kind, values)) must come in ``copy_columns`` order: numbers, which numpy lays out with
    the fixed part of each row, then texts, appended row by row.
    """
    attributes = attributes or {}
    n, dim = vectors.shape
    numbers = {name: kv for name, kv in attributes.items() if kv[0] != "str"}
    fields = [("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("vec_len", ">i4"),
              ("dim", ">i2"), ("unused", ">i2"), ("values", ">f4", (dim,))]  # fmt: skip
    for i, (kind, _) in enumerate(numbers.values()):
        fields += [(f"a{i}_len", ">i4"), (f"a{i}", COPY_FORMATS[kind])]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["fields"] = 2 + len(attributes)
    rows["id_len"] = 8
    rows["id"] = ids
    rows["vec_len"] = 4 + 4 * dim
    rows["dim"] = dim
    rows["unused"] = 0
    rows["values"] = vectors
    for i, (_, values) in enumerate(numbers.values()):
        rows[f"a{i}_len"] = 8
        rows[f"a{i}"] = values
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    texts = [values for kind, values in attributes.values() if kind == "str"]
    if texts:
        fixed, size = rows.tobytes(), rows.dtype.itemsize
        encoded = [[str(v).encode() for v in values] for values in texts]
        body = b"".join(
            fixed[r * size : (r + 1) * size] + b"".join(len(col[r]).to_bytes(4, "big") + col[r] for col in encoded)
            for r in range(n)
        )
    else:
        body = rows.tobytes()
    return header + body + (-1).to_bytes(2, "big", signed=True)
