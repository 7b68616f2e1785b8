"""Sweep configuration: YAML → validated model, checked against each store's declared capabilities.

Everything that can be wrong with a config is reported before any engine starts, each
message naming the field (as a path like ``stores[1].build.M``) and what to write instead.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator, model_validator

from vdbbench.core.distances import canonical_metric
from vdbbench.core.filters import Filter, FilterError, parse_filter
from vdbbench.stores import FAMILIES, get_store_class, store_names
from vdbbench.stores.fulltext import RRF_K
from vdbbench.stores.portable import SEARCH_KNOB, default_values


class ConfigError(ValueError):
    """The config is invalid; the message lists every problem with its field path."""


class _Strict(BaseModel):
    # inf and NaN are refused everywhere: they pass range checks unnoticed and are not JSON
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# a number in a config: true/false is refused (YAML's `true` is no price or fraction), integers are taken
Number = Annotated[float, Strict()]


class SyntheticSpec(_Strict):
    n: int = Field(2000, ge=1)
    dim: int = Field(32, ge=1)
    queries: int = Field(100, ge=1)
    metric: str = "euclidean"
    clusters: int = Field(20, ge=1)
    seed: int = 0
    duplicates: Number = Field(0.0, ge=0.0, lt=1.0)

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        return canonical_metric(v)


class TextSpec(_Strict):
    """A dataset embedded from text (see vdbbench.data.embed): corpus file or built-in name, queries, model."""

    corpus: str = Field(
        min_length=1,
        description="a .txt/.jsonl/.csv/.parquet file, a BEIR directory, "
        "wordnet-en / manpages-ja, labelled tasks wordnet-en-labels / manpages-ja-labels, mteb:<task>",
    )
    queries: str | None = Field(None, description="file of queries (same formats); else held-out passages")
    holdout: int | None = Field(None, ge=1, description="passages held out as queries (default min(1000, 10%))")
    model: str | list[str] = Field(
        "all-MiniLM-L6-v2",
        description="sentence-transformers name or folder, or use-multilingual-v3 (offline, multilingual), or a "
        "list of them: one dataset per model, named <name>-<model>",
    )
    batch_size: int | None = Field(None, ge=1, description="default: 32 on CPU, by free GPU memory on CUDA")
    max_passages: int | None = Field(None, ge=1)
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$")
    dtype: str = Field("auto", pattern="^(auto|float32|float16)$", description="auto: float16 on CUDA")
    text_field: str = Field("text", min_length=1, description="field/column holding the text")
    query_prefix: str | None = None
    passage_prefix: str | None = None
    attributes: list[str] = Field(
        default_factory=list,
        description="fields/columns of the corpus records carried as attribute columns for filters "
        "(BEIR: title, or any field of corpus.jsonl); ISO dates become int YYYYMMDD",
    )

    @field_validator("attributes")
    @classmethod
    def _attribute_names(cls, v: list[str]) -> list[str]:
        if any(not name.strip() for name in v) or len(set(v)) < len(v):
            raise ValueError("give distinct, non-empty field names, e.g. attributes: [department, published]")
        return v

    @model_validator(mode="after")
    def _one_query_source(self) -> TextSpec:
        if self.queries and self.holdout:
            raise ValueError("give either 'queries' or 'holdout', not both")
        models = self.model if isinstance(self.model, list) else [self.model]
        if not models or any(not m for m in models) or len(set(models)) < len(models):
            raise ValueError("'model': give a model name, or a list of distinct model names")
        return self


class GeneratedFilters(_Strict):
    """A generated attribute column and one filter per fraction: ``{filter_rank: {lt: round(f × n)}}``.

    ``filter_rank`` is a seeded random permutation of 0..n-1, so each filter passes exactly
    round(f × n) rows, spread uniformly over the data (VectorDBBench's int-filter cases work alike).
    """

    selectivity: list[Number] = Field(min_length=1, description="fractions of train rows that pass, in (0, 1]")
    seed: int = 0

    @field_validator("selectivity")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 < f <= 1 for f in v):
            raise ValueError("each selectivity must be in (0, 1], e.g. [0.001, 0.01, 0.1, 0.5, 0.99]")
        return sorted(set(v))


GENERATED_COLUMN = "filter_rank"


class DatasetConfig(_Strict):
    name: str = Field(min_length=1)
    path: str | None = None
    synthetic: SyntheticSpec | None = None
    text: TextSpec | None = None
    train_size: int | None = Field(None, ge=1)
    test_size: int | None = Field(None, ge=1)
    filters: list[dict[str, Any]] | GeneratedFilters | None = Field(
        None,
        description="metadata filters to measure: a list of expressions ({field: value}, {field: {in: [..]}}, "
        "{field: {gte: x, lt: y}}), or {selectivity: [0.01, 0.5]} to generate a column and one filter per fraction",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        if sum(x is not None for x in (self.path, self.synthetic, self.text)) > 1:
            raise ValueError("give only one of 'path', 'synthetic' or 'text'")
        if isinstance(self.filters, list):
            if not self.filters:
                raise ValueError("filters: empty list; give at least one expression, or drop 'filters'")
            for j, expr in enumerate(self.filters):
                try:
                    parse_filter(expr, f"filters[{j}]")
                except FilterError as e:
                    raise ValueError(str(e)) from None
        return self

    def filter_list(self, n: int | None) -> list[Filter]:
        """The entry's filters; generated ones need the train size ``n`` (None: not known yet, for a dry run)."""
        if self.filters is None:
            return []
        if isinstance(self.filters, list):
            return [parse_filter(expr) for expr in self.filters]
        if n is None:
            return []
        return [parse_filter({GENERATED_COLUMN: {"lt": max(1, round(f * n))}}) for f in self.filters.selectivity]


class Limits(_Strict):
    build_s: Number | None = Field(None, gt=0, description="seconds one build may take")
    search_s: Number | None = Field(None, gt=0, description="seconds one search point may take")


class ConcurrencyConfig(_Strict):
    clients: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    duration_s: Number = Field(10.0, gt=0, description="seconds each client count runs")
    min_recall: Number = Field(0.9, ge=0, le=1, description="measure the fastest point reaching this recall")
    engine: Literal["local", "ray"] = Field("local", description="local: client processes here; ray: Ray actors")
    address: str | None = Field(None, description="engine ray: cluster address (auto, local, ray://host:10001)")

    @model_validator(mode="after")
    def _ray_ready(self) -> ConcurrencyConfig:
        if self.engine == "local" and self.address is not None:
            raise ValueError("address is for engine: ray; drop it or set engine: ray")
        if self.engine == "ray" and importlib.util.find_spec("ray") is None:
            raise ValueError("engine: ray needs the ray package: pip install 'vdbbench[ray]'")
        return self

    @field_validator("clients")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(n < 1 for n in v):
            raise ValueError("client counts must be >= 1")
        return sorted(set(v))


def _check_targets(v: list[float] | None) -> list[float] | None:
    if v is None:
        return None
    if any(not 0 < t <= 1 for t in v):
        raise ValueError("recall targets must be in (0, 1], e.g. [0.9, 0.95, 0.99]")
    return sorted(set(v))


Settings = Literal["portable", "engine"]


class HybridSpec(_Strict):
    """Fuse a dense store's answers with bm25's on the same text dataset (ranx fusion)."""

    fusion: str = Field("rrf", pattern="^(rrf|weighted)$", description="rrf (reciprocal rank) or weighted")
    rrf_k: int = Field(60, ge=1, description="RRF constant: score = sum of 1 / (rrf_k + rank)")
    weights: list[Number] = Field(
        default_factory=lambda: [0.5, 0.5],
        min_length=2,
        max_length=2,
        description="weighted: [dense, bm25] weights of min-max normalised scores",
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: list[float]) -> list[float]:
        if any(w < 0 for w in v) or sum(v) <= 0:
            raise ValueError(f"weights must be >= 0 and not all 0, e.g. [0.5, 0.5]; got {v}")
        return v

    native: bool = Field(False, description="also measure the store's own hybrid search, where the store has one")

    @model_validator(mode="after")
    def _native_rrf_k(self) -> HybridSpec:
        if self.native and self.rrf_k != RRF_K:
            raise ValueError(f"rrf_k {self.rrf_k} with native: true: vdbbench sends every engine's own hybrid "
                             f"query with RRF k {RRF_K}, so the native points would not honour it; leave rrf_k out, "
                             f"or measure native hybrid in a separate entry")  # fmt: skip
        return self


class StoreConfig(_Strict):
    # The family is read from and written as the config key ``index`` (the user's word for it); the code says family.
    # (merged with _Strict's: extra keys and inf/NaN stay refused)
    model_config = ConfigDict(validate_by_alias=True, validate_by_name=False, serialize_by_alias=True)

    store: str
    family: str | None = Field(
        None, alias="index", description="index family; may be left out when the store has only one"
    )
    label: str | None = None
    settings: Settings | None = Field(None, description="default set for this entry; else the top-level one")
    recall_targets: list[Number] | None = Field(None, description="overrides the top-level recall_targets")
    hybrid: HybridSpec | None = None
    churn: ChurnSpec | None = Field(None, description="also measure inserts and deletes while searching")
    build: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("recall_targets")
    @classmethod
    def _targets(cls, v: list[float] | None) -> list[float] | None:
        return _check_targets(v)

    @property
    def display_name(self) -> str:
        return self.label or self.store

    @field_validator("hybrid", mode="before")
    @classmethod
    def _hybrid_shorthand(cls, v: Any) -> Any:
        return {"fusion": v} if isinstance(v, str) else v


class ChurnSpec(_Strict):
    """Build on the first (1 - insert) of train, then insert the rest and delete ``delete`` of the built rows,
    in ``batches``, while a client searches (vdbbench.workloads.churn)."""

    insert: Number = Field(0.1, gt=0, lt=1, description="fraction of train held back and inserted during churn")
    delete: Number = Field(0.1, ge=0, lt=1, description="fraction of the built rows deleted during churn")
    batches: int = Field(10, ge=1, description="write batches; recall on the live rows is checked after each")
    settle_s: Number = Field(30.0, gt=0, description="longest wait for an inserted row to become searchable")
    seed: int = 0


class HostConfig(_Strict):
    """What the host costs, so the report can show cost per million queries."""

    price_per_hour: Number = Field(gt=0)
    currency: str = Field(min_length=1)


@dataclass
class StorePlan:
    """What one store entry runs on one dataset: builds, explicit search grid, recall targets."""

    settings: str
    builds: list[dict[str, Any]]
    searches: list[dict[str, Any]]
    targets: list[float]
    knob: str | None  # the search parameter recall-target tuning moves
    target_base: dict[str, Any]  # the other search parameters while tuning
    notes: list[str] = field(default_factory=list)


class SweepConfig(_Strict):
    k: int = Field(10, ge=1, le=1000)
    runs: int = Field(3, ge=1)
    warmup: int = Field(100, ge=0, description="untimed queries before each search point")
    insert_batch: int = Field(1000, ge=1)
    batch_size: int = Field(100, ge=0, description="queries per batch call where a store has one; 0 = off")
    limits: Limits = Field(default_factory=Limits)
    concurrency: ConcurrencyConfig | None = None
    settings: Settings = Field("portable", description="portable: equal documented values; engine: each default")
    recall_targets: list[Number] | None = Field(None, description="tune each build to these recalls, e.g. [0.9]")
    host: HostConfig | None = None
    datasets: list[DatasetConfig] = Field(min_length=1)
    stores: list[StoreConfig] = Field(min_length=1)

    @field_validator("recall_targets")
    @classmethod
    def _targets(cls, v: list[float] | None) -> list[float] | None:
        return _check_targets(v)

    @model_validator(mode="after")
    def _one_dataset_per_model(self) -> SweepConfig:
        """A text dataset with a list of models becomes one dataset per model, named ``<name>-<model>``."""
        out = []
        for d in self.datasets:
            if d.text is None or isinstance(d.text.model, str):
                out.append(d)
                continue
            for model in d.text.model:
                out.append(
                    d.model_copy(
                        update={
                            "name": model_dataset_name(d.name, model),
                            "text": d.text.model_copy(update={"model": model}),
                        }
                    )
                )
        self.datasets = out
        return self

    def build_grid(self, store: StoreConfig, n: int | None = None, dim: int | None = None) -> list[dict[str, Any]]:
        return self.plan(store, n, dim).builds

    def search_grid(self, store: StoreConfig, n: int | None = None, dim: int | None = None) -> list[dict[str, Any]]:
        return self.plan(store, n, dim).searches

    def plan(self, store: StoreConfig, n: int | None = None, dim: int | None = None) -> StorePlan:
        """Builds, search grid and targets of ``store`` on data of ``n`` vectors × ``dim``.

        Values the entry gives win; the rest come from its settings (vdbbench.stores.portable). With
        recall targets, the search grid is measured only where the entry lists ``search`` values.
        """
        fam = store_families(store)[store.family]
        settings = store.settings or self.settings
        build, search, notes = default_values(get_store_class(store.store), fam, settings, n, dim)
        targets = store.recall_targets if store.recall_targets is not None else (self.recall_targets or [])
        knob = SEARCH_KNOB.get(fam.family) if fam.search_param(SEARCH_KNOB.get(fam.family, "")) else None
        targets = targets if knob else []
        notes = [x for x in notes if x.split(":")[0] not in {**store.build, **store.search}]  # the entry's own win
        searches = expand_grid({**search, **store.search}, fam.search)
        if targets and not store.search:
            searches = []
        base = {}
        for p in fam.search:
            v = store.search.get(p.name, search.get(p.name, p.default))
            base[p.name] = p.coerce(v[-1] if isinstance(v, list) else v)  # the most accurate listed value
        return StorePlan(settings, expand_grid({**build, **store.build}, fam.build), searches, targets, knob,
                         base, notes)  # fmt: skip


def model_dataset_name(name: str, model: str) -> str:
    """``<name>-<last part of the model name>`` in file-name characters, e.g. ``faq-ruri-v3-310m``."""
    part = Path(model.partition("@")[0].rstrip("/")).name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{name}-{part}").strip("-")


def store_families(store: StoreConfig):
    return get_store_class(store.store).families


def expand_grid(values: dict[str, Any], params) -> list[dict[str, Any]]:
    """Every combination of the listed values, defaults filled in, in declaration order.

    A value that is a rule in words (a dry run before the data size is known) is kept as it is.
    """
    axes = []
    for p in params:
        v = values.get(p.name, p.default)
        axes.append([x if isinstance(x, str) and p.type is not str else p.coerce(x)
                     for x in (v if isinstance(v, list) else [v])])  # fmt: skip
    return [dict(zip([p.name for p in params], combo, strict=True)) for combo in itertools.product(*axes)]


def normalise_names(section: dict[str, Any], declared, where: str, problems: list[str]) -> dict[str, Any]:
    """``section`` with engine aliases renamed to the portable names; both spellings of one parameter is an error."""
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in section.items():
        p = next((p for p in declared if key == p.name or key in p.aliases), None)
        name = p.name if p else key
        if name in spelled:
            problems.append(
                f"{where}.{key}: {key!r} and {spelled[name]!r} are two spellings of the same parameter "
                f"{p.spellings}; give only one (the portable name is {name!r})"
            )
            continue
        spelled[name] = key
        out[name] = value
    return out


def _check_store(i: int, s: StoreConfig, problems: list[str]) -> None:
    where = f"stores[{i}]"
    if s.store not in store_names():
        problems.append(f"{where}.store: unknown store {s.store!r}; use one of {', '.join(store_names())}")
        return
    cls = get_store_class(s.store)
    if s.family is None:
        if len(cls.families) != 1:
            problems.append(f"{where}.index: required: store {s.store!r} offers {', '.join(cls.families)}")
            return
        s.family = next(iter(cls.families))
    if s.hybrid is not None and cls.input != "vectors":
        problems.append(f"{where}.hybrid: {s.store} is not a dense store; put 'hybrid' on a vector store entry")
    if s.hybrid is not None and s.hybrid.native and cls.native_hybrid is None:
        offered = [n for n in store_names() if get_store_class(n).native_hybrid]
        problems.append(
            f"{where}.hybrid.native: {s.store} has no native hybrid search in vdbbench; "
            f"stores that have: {', '.join(offered)}"
        )
    if s.churn is not None and s.churn.delete > 0 and not cls.supports_delete:
        problems.append(f"{where}.churn.delete: {s.store} cannot delete rows in vdbbench (see the capability "
                        "table); set delete: 0 to measure inserts only, or drop churn")  # fmt: skip
    if s.churn is not None and cls.input != "vectors":
        problems.append(f"{where}.churn: {s.store} searches text; churn is measured on vector stores")
    if s.family not in cls.families:
        problems.append(
            f"{where}.index: store {s.store!r} has no {s.family!r} index; it offers {', '.join(cls.families)}"
            + ("" if s.family in FAMILIES else f" (harness families are {', '.join(FAMILIES)})")
        )
        return
    for key in s.options:
        if key not in cls.options_help:
            valid = "; ".join(f"{k} ({h})" for k, h in cls.options_help.items()) or "none (it takes no options)"
            # no colon after the key: "options.password: <store>" reads as a secret's value and would be masked
            problems.append(f"{where}.options.{key} - {s.store} has no option {key!r}; valid keys: {valid}")
    problems += [f"{where}.{problem}" for problem in cls.check_options(s.family, s.options)]
    fam = cls.families[s.family]
    for section, declared in (("build", fam.build), ("search", fam.search)):
        given = getattr(s, section)
        setattr(s, section, normalise_names(given, declared, f"{where}.{section}", problems))
        for key, value in given.items():  # messages name the key as the user wrote it
            p = next((p for p in declared if key == p.name or key in p.aliases), None)
            if p is None:
                offered = ", ".join(p.spellings for p in declared) or "none"
                problems.append(
                    f"{where}.{section}.{key}: {s.store} {s.family} has no {section} parameter {key!r}; "
                    f"it takes: {offered}"
                )
                continue
            values = value if isinstance(value, list) else [value]
            if not values:
                problems.append(f"{where}.{section}.{key}: empty list; give at least one value")
            for v in values:
                try:
                    p.coerce(v)
                except ValueError as e:
                    problems.append(f"{where}.{section}.{key}: {e} (parameter {p.spellings})")


def _format_pydantic(e: ValidationError) -> list[str]:
    out = []
    for err in e.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        msg = err["msg"].removeprefix("Value error, ")  # pydantic's prefix to a validator's own message
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling (see README: Sweep config)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        out.append(f"{loc or '<top>'}: {msg}")
    return out


def parse_config(data: Any, source: str = "config") -> SweepConfig:
    """Validate a loaded YAML document; ConfigError lists every problem found."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with keys such as k, datasets, stores")
    try:
        cfg = SweepConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source} is invalid:\n  " + "\n  ".join(_format_pydantic(e))) from None
    problems: list[str] = []
    for i, s in enumerate(cfg.stores):
        _check_store(i, s, problems)
    labels = [s.display_name for s in cfg.stores]
    for label in {x for x in labels if labels.count(x) > 1}:
        same = [s for s in cfg.stores if s.display_name == label]
        if len({s.family for s in same}) < len(same):
            problems.append(f"stores: {label!r} appears twice with the same index; give one of them a distinct 'label'")
    names = [d.name for d in cfg.datasets]
    for name in {x for x in names if names.count(x) > 1}:
        problems.append(f"datasets: {name!r} appears twice; dataset names must be unique")
    if problems:
        raise ConfigError(f"{source} is invalid:\n  " + "\n  ".join(problems))
    return cfg


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a YAML sweep config."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path} is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    return parse_config(data, str(path))


DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"
