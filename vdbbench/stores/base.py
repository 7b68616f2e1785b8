"""The one interface every store adapter implements.

An adapter declares what it can build (index families, their parameters, metrics) as
class-level data, so a config can be validated, and the README's capability matrix
generated, without importing the engine's client library. The engine library is
imported only inside methods that run it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from vdbbench.core.filters import Filter

FAMILIES = ("flat", "hnsw", "ivf", "pq")
ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # an attribute name every engine takes as a column name
METRICS = ("euclidean", "angular", "ip")


class StoreError(RuntimeError):
    """An engine refused or failed an operation; the message says which and why."""


@dataclass(frozen=True)
class Param:
    """One build- or search-time parameter.

    ``name`` is the harness's portable name where the family has one (see vdbbench.stores.portable), else
    the engine's. ``aliases`` are the engine's own spellings, accepted in configs and normalised to
    ``name``; the first one is what the adapter sends to the engine. ``default`` is the engine's
    own out-of-the-box value (``settings: engine``).
    """

    name: str
    type: type
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    aliases: tuple[str, ...] = ()
    maximum: float | None = None

    @property
    def engine_name(self) -> str:
        """The name the engine itself uses for this parameter."""
        return self.aliases[0] if self.aliases else self.name

    @property
    def spellings(self) -> str:
        """``name`` and its engine aliases, for messages and tables: ``m (M)``."""
        return self.name + (f" ({', '.join(self.aliases)})" if self.aliases else "")

    def coerce(self, value: Any) -> Any:
        """Return `value` as this parameter's type, or raise ValueError saying what is allowed."""
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"expects true or false, got {value!r}")
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise ValueError(f"expects an integer, got {value!r}")
            value = int(value)
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"expects a number, got {value!r}")
            value = float(value)
        elif self.type is str:
            if not isinstance(value, str):
                raise ValueError(f"expects a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of {list(self.choices)}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be <= {self.maximum}, got {value!r}")
        return value


@dataclass(frozen=True)
class FamilySpec:
    """What a store offers for one index family: its parameters, metrics, and engine name."""

    family: str
    engine_index: str
    build: tuple[Param, ...] = ()
    search: tuple[Param, ...] = ()
    metrics: tuple[str, ...] = METRICS
    exact: bool = False
    note: str = ""
    max_dim: int | None = None  # largest dimension this family can index, where the engine limits it

    def build_param(self, name: str) -> Param | None:
        return next((p for p in self.build if name == p.name or name in p.aliases), None)

    def search_param(self, name: str) -> Param | None:
        return next((p for p in self.search if name == p.name or name in p.aliases), None)

    def portable_params(self, params: Mapping[str, Any], section: str = "build") -> dict[str, Any]:
        """``params`` with engine aliases renamed to the portable names (unknown names kept as given)."""
        find = self.build_param if section == "build" else self.search_param
        return {(p.name if (p := find(k)) else k): v for k, v in params.items()}

    def engine_params(self, params: Mapping[str, Any], section: str = "build") -> dict[str, Any]:
        """``params`` (portable names) renamed to the engine's own names, for the request sent to it."""
        declared = {p.name: p for p in (self.build if section == "build" else self.search)}
        return {(declared[k].engine_name if k in declared else k): v for k, v in params.items()}


class IdentityRule(NamedTuple):
    """How a store's ``engine_version`` string says which engine ran: a regex (named groups ``v``, and ``x`` for a
    second version), the product a reader thinks of, the engine measured, how it ran ("embedded", "server",
    "in-process") and a label template taking the groups plus ``{where}`` ("local server" / "server")."""

    pattern: str
    product: str
    engine: str
    mode: str
    label: str


class ComposeAddress(NamedTuple):
    """Where a store's docker compose service answers: the option that names a server (``url``, ``uri``, ``dsn``),
    the environment variable read when the option is absent (None: none), and the compose service's address."""

    env: str | None
    option: str
    url: str


@dataclass
class BuildSpec:
    """One index to build: family, metric, dimension and the full set of build parameters."""

    family: str
    metric: str
    dim: int
    params: dict[str, Any] = field(default_factory=dict)
    count: int = 0  # how many vectors will be inserted, for engines that size ahead
    # attribute columns every inserted row carries (name → "int" / "float" / "str"): the schema (and the
    # payload or scalar indexes filters need) is created with the collection
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One build the conformance suite (tests/conformance) makes on a store, and the recall@10 it must reach.

    ``build`` and ``search`` are the settings (portable names or the engine's own; each unset one at its
    default). ``floor`` holds for every metric the family takes, unless ``floors`` names another for a metric.
    ``sent`` lists the parameters no engine API reports (``param_source`` "sent"); every other one asked must be
    read back from the engine ("engine"). ``label`` tells two cases of one family apart ("hnsw-binary").
    """

    family: str
    build: Mapping[str, Any] = field(default_factory=dict)
    search: Mapping[str, Any] = field(default_factory=dict)
    floor: float = 1.0
    floors: Mapping[str, float] = field(default_factory=dict)
    sent: tuple[str, ...] = ()
    label: str = ""

    @property
    def key(self) -> str:
        return self.label or self.family

    def floor_for(self, metric: str) -> float:
        return self.floors.get(metric, self.floor)


@dataclass(frozen=True)
class Knob:
    """A search knob the conformance suite turns on data hard enough for recall to move: recall at ``low``
    must stay below 0.95 and below recall at ``high``, which must reach ``floor``; ``build`` must read back."""

    family: str
    build: Mapping[str, Any]
    low: Mapping[str, Any]
    high: Mapping[str, Any]
    floor: float


@dataclass(frozen=True)
class Conformance:
    """What a store declares for the conformance suite (tests/conformance); a store declaring nothing gets
    each family at its defaults (floor 1.0 for an exact family, else 0.9) and every check its flags call for.

    Builds: ``cases`` (recall floors and read-back, every metric), ``knobs`` (each search knob takes effect),
    ``filters`` (searched under each operator in ``filter_ops``, floor on the filtered neighbours), ``deletes``
    (``supports_delete``: deleted rows vanish, rows inserted after the build are found), ``writes``
    (``concurrent_writes``: searches beside a writing thread) and ``k_beyond`` (k above the row count). Unset
    (None) ones are the first case of each family in ``cases`` (the first case for ``writes``, ``k_beyond``).

    How the suite gets an instance: it opens the store with ``options``, with the environment variables in
    ``unset_env`` cleared, so it measures the instance these floors are for. A store that needs a server the
    harness does not start names its URL variable in ``server_env``: unset, the suite skips it and says so.
    ``unavailable`` says why the store cannot run on this host (None when it can).

    ``attribute_indexes`` maps an attribute kind (str, int, float) to the index the engine reports on such a
    column; ``resources`` names ``resources()`` figures every build must report above 0. ``secrets`` are
    options (and ``secret_env`` environment variables) holding credentials that ``client_handle()`` must not
    carry.
    """

    cases: tuple[Case, ...] = ()
    knobs: tuple[Knob, ...] = ()
    filters: tuple[Case, ...] | None = None
    deletes: tuple[Case, ...] | None = None
    writes: Case | None = None
    k_beyond: Case | None = None
    attribute_indexes: Mapping[str, str] = field(default_factory=dict)
    resources: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    server_env: str = ""
    unset_env: tuple[str, ...] = ()
    unavailable: Callable[[], str | None] | None = None
    secrets: Mapping[str, Any] = field(default_factory=dict)
    secret_env: Mapping[str, str] = field(default_factory=dict)


class Store(ABC):
    """Base class of every adapter.

    Lifecycle: ``open()`` (start or connect to the engine), then for each build
    ``create() → insert()… → build_index()``, then for each search setting
    ``set_search_params() → search()…``, then ``drop()``; finally ``close()``.
    ``close()`` must be safe to call twice and after a failure.

    Workloads beyond plain k-NN use three more calls, each behind a capability flag:
    ``set_filter(f)`` makes the following searches filtered (``filter_ops``), ``delete(ids)``
    removes rows (``supports_delete``), and inserts after ``build_index()`` must become searchable
    (churn). With ``concurrent_writes`` the adapter may be searched from one thread while
    another inserts or deletes.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    mode: ClassVar[str] = "embedded"  # how the engine runs: "in-process", "embedded" or "server"
    families: ClassVar[Mapping[str, FamilySpec]] = {}
    # what the conformance suite builds and the recall each build must reach (see Conformance)
    conformance: ClassVar[Conformance] = Conformance()
    supports_batch_search: ClassVar[bool] = False
    single_process_reason: ClassVar[str] = "the engine cannot be searched from a second process"
    max_dim: ClassVar[int | None] = None
    # option key → one-line help; a config's ``options`` may use only these keys (checked before start)
    options_help: ClassVar[Mapping[str, str]] = {}
    # What the store indexes and searches: "vectors" (float32 rows), or "text" (the passage and query
    # strings of a text dataset; ``insert`` gets a list of str, ``search`` a str). Only bm25 takes text.
    input: ClassVar[str] = "vectors"
    # The engine's own full-text + vector search, where the adapter offers it (``set_texts`` before the build,
    # then ``set_hybrid(True)`` makes each query a (vector, text) pair); None elsewhere.
    native_hybrid: ClassVar[str | None] = None
    # filter operators (vdbbench.core.filters.OPS) the adapter translates into the engine's own filter; empty: none
    filter_ops: ClassVar[frozenset[str]] = frozenset()
    # how the engine applies a filter during the search (pre-filter, filtered graph walk, ...), for the report
    filter_note: ClassVar[str] = ""
    supports_delete: ClassVar[bool] = False
    # names of the adapter's own fields (id, vector, ...): a dataset attribute by one of these names is refused
    reserved_attributes: ClassVar[frozenset[str]] = frozenset()
    # searches may run in one thread while another inserts or deletes (churn measures them concurrently)
    concurrent_writes: ClassVar[bool] = False

    # -- facts about the store, read by the shared modules (identity, provenance, portable settings, services) --
    # a reference implementation measured beside the databases (a library, never a database to choose)
    baseline: ClassVar[bool] = False
    # how ``engine_version`` names the engine that ran, first match wins (see ``identify``)
    identity_rules: ClassVar[tuple[IdentityRule, ...]] = ()
    # (product, engine, mode) when the engine did not say (a failed open, an old record without a version)
    identity_fallback: ClassVar[tuple[str, str, str] | None] = None
    # Python distributions of the engine and its client: their versions go into every result's provenance
    packages: ClassVar[tuple[str, ...]] = ()
    # engine-only build values that make a family's build the same as on the other stores (``settings:
    # portable``), family → {parameter: value}; see vdbbench.stores.portable
    engine_extras: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    # docker compose services (docker/docker-compose.yml) that serve this store, dependencies first; () for none
    compose_services: ClassVar[tuple[str, ...]] = ()
    # where those services answer and how a config names another server; None without compose services
    compose_address: ClassVar[ComposeAddress | None] = None

    def __init__(self, workdir: Path, options: Mapping[str, Any] | None = None) -> None:
        self.workdir = Path(workdir)
        self.options = dict(options or {})
        self.spec: BuildSpec | None = None
        self.search_params: dict[str, Any] = {}
        self.filter: Filter | None = None

    @classmethod
    def check_point(
        cls, family: str, build: Mapping[str, Any], search: Mapping[str, Any], dim: int, k: int
    ) -> list[str]:
        """Engine rules one build × search point breaks (``"build.m: ... ; fix"``), checked before anything
        starts, so a sweep does not fail hours in; [] when the engine would take it."""
        return []

    @classmethod
    def check_options(cls, family: str, options: Mapping[str, Any]) -> list[str]:
        """Problems with the values of the entry's ``options`` (``"options.x: ...; fix"``), checked before anything
        starts (the keys are checked against ``options_help`` already); [] when the adapter would take them."""
        return []

    @classmethod
    def reserved_clashes(cls, names: Iterable[str]) -> list[str]:
        """Attribute names that are this store's own fields (checked before start, and again in ``create``)."""
        reserved = {r.lower() for r in cls.reserved_attributes}
        return [f"attribute {name!r} is one of {cls.name}'s own fields ({', '.join(sorted(reserved))}); rename it "
                "in the dataset" for name in names if name.lower() in reserved]  # fmt: skip

    def refuse_attributes(self, spec: BuildSpec, identifiers: bool = False) -> None:
        """Raise StoreError when ``spec`` carries an attribute that is one of this store's own fields, or (for
        engines that quote no names) one that is not an identifier."""
        problems = self.reserved_clashes(spec.attributes)
        if problems := (unnamable(spec.attributes) if identifiers else []) + problems:
            raise StoreError(f"{self.name}: " + "; ".join(problems))

    # -- lifecycle -----------------------------------------------------------------
    def open(self) -> None:  # noqa: B027 - optional hook, most embedded stores need nothing
        """Start or connect to the engine. Embedded stores may do nothing here."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and stop anything ``open()`` started. Idempotent."""

    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- build ---------------------------------------------------------------------
    @abstractmethod
    def create(self, spec: BuildSpec) -> None:
        """Create an empty collection/table/index for ``spec``, replacing any earlier one."""

    @abstractmethod
    def insert(self, ids: np.ndarray, vectors: np.ndarray, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Insert one batch: ``ids`` are int64 dataset row numbers, ``vectors`` float32 rows, ``attributes``
        the batch's values of each column in ``spec.attributes`` (None when the dataset has none)."""

    def delete(self, ids: np.ndarray) -> None:
        """Delete the rows ``ids``; once this returns, no search may return them (``supports_delete``)."""
        raise StoreError(f"{self.name} cannot delete rows in vdbbench")

    @abstractmethod
    def build_index(self) -> None:
        """Build the index if needed and return only once the engine reports it searchable."""

    # -- search --------------------------------------------------------------------
    def set_search_params(self, params: Mapping[str, Any]) -> None:
        """Apply query-time parameters for the following searches."""
        self.search_params = dict(params)

    def set_filter(self, flt: Filter | None) -> None:
        """Filter the following searches by ``flt`` (None: unfiltered). Adapters translate it here, once, into
        the engine's own filter, so no translation runs inside the timed loop."""
        unsupported = sorted(flt.ops - self.filter_ops) if flt is not None else []
        if unsupported:
            raise StoreError(f"{self.name} cannot filter with {unsupported} in vdbbench")
        self.filter = flt

    @abstractmethod
    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        """Return the ids (dataset row numbers, int64) of up to ``k`` nearest items, best first."""

    def search_batch(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        """Answer many queries in one call where the engine offers it; else one by one."""
        return [self.search(q, k) for q in queries]

    # -- introspection ---------------------------------------------------------------
    @abstractmethod
    def effective_config(self) -> dict[str, Any]:
        """The index as the engine itself reports it after the build.

        Must contain ``family`` (the harness family the engine actually serves),
        ``metric``, ``params`` (portable parameter names → values read back from the
        engine) and ``engine`` (the raw definition it returned). ``params`` holds only what
        the engine itself reported: a value the adapter merely sent is left out, so the
        runner records it as ``sent`` in ``param_source``. Where the build has attributes,
        ``attribute_indexes`` maps each column to the index the engine reports on it (or
        ``"none"``: filtered by scanning its values).
        """

    def resources(self) -> dict[str, Any]:
        """Sizes the engine reports (``index_bytes``, ``data_bytes``, ``memory_bytes``); {} if unknown."""
        return {}

    def client_handle(self) -> dict[str, Any] | None:
        """What a second process needs to search the index built here; None when it cannot be shared."""
        return None

    def attach(self, handle: dict[str, Any]) -> None:
        """Open, for searching only, the index another instance built (from its ``client_handle``)."""
        raise StoreError(f"{self.name} cannot be searched from a second process")

    def compose_service(self) -> str | None:
        """The docker-compose store (``vdbbench services`` name) serving this instance, so the runner can
        read its containers' memory and disk; None when no container serves it."""
        return None

    def owned_processes(self) -> list[int]:
        """PIDs of server processes this adapter started, so the harness can stop them if it hangs."""
        return []

    def owned_paths(self) -> list[str]:
        """Files, directories and shared memory segments the servers this adapter started write, so the
        harness can remove them when it had to kill the adapter's process (``close()`` never ran)."""
        return []

    def engine_version(self) -> str | None:
        """Version of the engine or its client library, for provenance."""
        return None

    def build_threads(self) -> int | None:
        """Threads the engine used (or may use) to build the index; None when it does not say."""
        return None

    def engine_identity(self) -> dict[str, Any]:
        """The engine actually measured and how it ran (the record's ``engine`` field), from ``engine_version``.

        "local server" when this adapter started the server process itself.
        """
        return self.identify(self.engine_version(), self.options, local=bool(self.owned_processes()))

    @classmethod
    def identify(cls, engine_version: str | None, options: Mapping[str, Any] | None = None,
                 local: bool | None = None) -> dict[str, Any]:  # fmt: skip
        """The ``engine`` field for this store: product, engine, version, mode, baseline and a label, from the
        version string its engine reported (``identity_rules``), else from ``fallback_identity``.

        ``local`` says whether the harness started the server itself (its adapter owned the process); None when
        unknown (an old record): then a server is called just "server".
        """
        return identify_engine(cls.identity_rules, cls.fallback_identity(options or {}), cls.baseline, engine_version,
                               local)  # fmt: skip

    @classmethod
    def fallback_identity(cls, options: Mapping[str, Any]) -> tuple[str, str, str]:
        """(product, engine, mode) when the engine did not say: ``identity_fallback``; an adapter whose options
        decide which engine runs overrides this."""
        return cls.identity_fallback or (cls.name, cls.name, "unknown")

    @abstractmethod
    def drop(self) -> None:
        """Delete the collection/table/index built by ``create()``."""


def identify_engine(rules: Iterable[IdentityRule], fallback: tuple[str, str, str], baseline: bool,
                    engine_version: str | None, local: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """The ``engine`` field from the first rule matching ``engine_version``, else from ``fallback``."""
    where = "local server" if local else "server"
    for rule in rules:
        m = re.match(rule.pattern, engine_version or "")
        if m:
            groups = m.groupdict()
            version = " + ".join(v for v in (groups.get("v"), groups.get("x")) if v)
            return _identity(rule.product, rule.engine, version, rule.mode, rule.label.format(where=where, **groups),
                             baseline)  # fmt: skip
    product, engine, mode = fallback
    how = {"embedded": "(embedded)", "in-process": "(in-process)", "server": where}.get(mode)
    label = f"{engine} {how}" if how and mode not in engine else engine
    return _identity(product, engine, None, mode, label, baseline)


def _identity(product: str, engine: str, version: str | None, mode: str, label: str, baseline: bool) -> dict[str, Any]:
    if baseline:  # "hnswlib 0.8.0 (in-process library)" -> "hnswlib 0.8.0 (in-process library, baseline)"
        label = label[:-1] + ", baseline)" if label.endswith(")") else label + " (baseline)"
    return {
        "product": product,
        "engine": engine,
        "version": version,
        "mode": mode,
        "baseline": baseline,
        "label": label,
    }


def served_family(family: str, rows: int, indexed_rows: int) -> str:
    """The family that really answers queries, from the engine's own per-segment index coverage.

    Engines search rows outside an index (small or growing segments, unindexed tails) by brute
    force; a build whose rows are not all indexed is served as ``"flat"`` (none indexed) or
    ``"<family>+flat"`` (some), so a scan never passes for the index that was asked for.
    """
    if family == "flat" or indexed_rows >= rows:
        return family
    return "flat" if indexed_rows <= 0 else f"{family}+flat"


def coverage(segments: int, indexed_segments: int, rows: int, indexed_rows: int, source: str) -> dict[str, Any]:
    """The ``effective["coverage"]`` entry: how many segments and rows an index serves, as the engine says."""
    return {
        "segments": int(segments),
        "indexed_segments": int(indexed_segments),
        "rows": int(rows),
        "indexed_rows": int(indexed_rows),
        "source": source,
    }


def sub_vector_problem(field: str, value: int, dim: int) -> list[str]:
    """The PQ rule of engines that split a vector into equal sub-vectors: ``value`` must divide ``dim``."""
    if dim % value == 0:
        return []
    fits = [m for m in range(1, min(dim, 96) + 1) if dim % m == 0]
    return [f"{field}: {value} does not divide the dimension {dim}; use one of {fits}"]


def unnamable(names: Iterable[str]) -> list[str]:
    """Attribute names no store can take as a column name: every engine takes letters, digits and _."""
    return [f"attribute {name!r}: a column name in every store is letters, digits and _, not starting with a digit; "
            "rename it in the dataset" for name in names if not ATTRIBUTE_NAME.fullmatch(name)]  # fmt: skip
