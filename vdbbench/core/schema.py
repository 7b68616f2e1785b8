"""The results record: one written schema that the runner writes and the report, compare, export and CLI read.

Every line of ``results.jsonl`` is one ``Record``. The runner validates each record against this model
before writing it (a field not declared here is an error, so the schema cannot drift from the code),
and ``upgrade`` turns records older harness versions wrote into this version's shape, so every reader
sees one shape. The README's "Results record" table is generated from this model.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 2


class SchemaError(ValueError):
    """A record does not match the written schema; the message names the fields."""


class Record(BaseModel):
    """One measured (or failed, or skipped) point."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # identity
    schema_: int = Field(alias="schema", description="schema version of this record")
    key: str = Field(description="point identity: dataset, store label, family, options, build, search, k, "
                     "workload, filter; a resumed sweep skips keys already measured")  # fmt: skip
    time: str = Field(description="when the record was written (UTC, ISO 8601)")
    workload: str = Field(
        description="what was measured: the name of the workload that wrote the record, one module "
        "each under vdbbench/workloads/ (see Workloads)"
    )
    dataset: str
    store: str = Field(description="adapter name")
    label: str = Field(description="the config's label for the store entry (default: the store name)")
    index: str = Field(description="index family asked for (flat, hnsw, ivf, pq...): the config's word for the family")
    metric: str
    build: dict[str, Any] = Field(description="build parameters asked for (portable names)")
    search: dict[str, Any] = Field(description="search parameters asked for (portable names)")
    k: int
    runs: int = Field(description="timed passes over the queries; the median pass is reported")
    options: dict[str, Any] = Field(description="the store entry's options, secrets removed")
    filter: dict[str, Any] | None = Field(description="the metadata filter of a filtered point, as in the config")
    selectivity: float | None = Field(description="fraction of train rows that pass the filter")
    attributes: dict[str, str] = Field(
        description="attribute columns the build inserted and indexed (name → kind), for the dataset's filters"
    )
    status: Literal["ok", "failed", "skipped"]
    error: str | None = None
    timed_out: bool | None = Field(None, description="the step ran past its limits: time limit")
    # settings and targets
    settings: str = Field(description="portable (equal documented values) or engine (each engine's defaults)")
    settings_note: list[str] = Field(description="rules behind settings-derived values")
    param_source: dict[str, str] = Field(description="per parameter: engine (read back) or sent (only sent)")
    search_param_ignored: bool = Field(description="every search setting of the build gave identical answers")
    target_recall: float | None = Field(description="recall target this point was tuned to")
    target_reached: bool | None = Field(None, description="the held-out recall's interval reaches the target: "
                                        "recall_ci95[1] >= target_recall")  # fmt: skip
    tuning_recall: float | None = Field(None, description="recall of the chosen setting on the tuning queries")
    tuning_aim: float | None = Field(None, description="what tuning aimed for: target_recall plus the half-width of "
                                     "the tuning recall's own 95% interval at the chosen setting")  # fmt: skip
    tuning_queries: int | None = None
    evaluation_queries: int | None = None
    # build
    insert_s: float | None = Field(None, description="seconds inserting (timed in the store's process)")
    index_s: float | None = Field(None, description="seconds from the last insert until searchable")
    build_s: float | None = None
    build_threads: int | None = None
    effective: dict[str, Any] | None = Field(None, description="the index as the engine reports it")
    config_mismatch: list[str] | None = Field(None, description="asked vs engine-reported differences")
    resources: dict[str, Any] | None = Field(None, description="memory and disk: engine figures and sampled RSS")
    engine_version: str | None = None
    engine: dict[str, Any] | None = Field(None, description="the engine measured: product, version, mode")
    # search
    recall: float | None = Field(None, description="tie-aware recall@k against exact (filtered) neighbours")
    recall_ci95: list[float] | None = Field(
        None, description="[low, high]: 95% interval of recall over the queries (seeded bootstrap, core.metrics)"
    )
    qps: float | None = None
    qps_runs: list[float] | None = None
    mean_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    duplicate_answers: int | None = None
    short_answers: int | None = Field(None, description="answers with fewer than min(k, passing rows) ids")
    invalid_ids: int | None = None
    filter_violations: int | None = Field(None, description="returned ids of rows the filter rejects (misses)")
    client: dict[str, Any] | None = Field(None, description="the timing client's CPU share and floor cost")
    batch: dict[str, Any] | None = Field(None, description="batch-search QPS and recall")
    answers_file: str | None = Field(
        None,
        description="the answers recall was scored on, relative to the results file: answers/<key>.npz with ids "
        "(int64, queries × k, -1 where short), the engine's scores (float64, NaN where short or not given) and "
        "queries (int64 test rows asked); churn: the last checkpoint's (each in churn.checkpoints names its own)",
    )
    # retrieval quality (labelled datasets)
    retrieval: str | None = Field(None, description="dense, bm25, hybrid or native-hybrid")
    ndcg_10: float | None = Field(None, alias="ndcg@10")
    recall_10: float | None = Field(None, alias="recall@10")
    recall_100: float | None = Field(None, alias="recall@100")
    mrr_10: float | None = Field(None, alias="mrr@10")
    run_file: str | None = Field(None, description="TREC run file of the point, for re-scoring")
    qrels_file: str | None = None
    judged_queries: int | None = None
    label_source: str | None = None
    legs: list[dict[str, Any]] | None = Field(None, description="the points a hybrid point fused")
    fusion: dict[str, Any] | None = None
    timing_note: str | None = None
    native_hybrid: str | None = None
    # concurrent workload
    chosen_by: str | None = None
    chosen_recall: float | None = None
    chosen_qps: float | None = None
    concurrency: dict[str, Any] | None = Field(None, description="per client count: QPS and latency")
    # churn workload
    recall_live: float | None = Field(None, description="recall on the live rows after the last write batch")
    deleted_returned: int | None = Field(None, description="checkpoint answers holding a deleted id (0 if correct)")
    freshness_s: float | None = Field(None, description="median seconds from an insert's return until searchable")
    freshness_max_s: float | None = None
    churn: dict[str, Any] | None = Field(None, description="the churn spec, mode, write times and checkpoints")
    # context
    host: dict[str, Any] | None = Field(None, description="the host's price, for cost per million queries")
    dataset_info: dict[str, Any] = Field(description="the data: name, sizes, sha256, attributes")
    provenance: dict[str, Any] = Field(description="packages, git, host and config of the sweep")


class TimePart(BaseModel):
    """One phase of a sweep and the seconds spent in it, not counting the phases inside it."""

    model_config = ConfigDict(extra="forbid")

    phase: str = Field(description="data preparation, embedding, ground truth, or per store: start and stop, build, "
                       "timed passes, tuning, filtered, concurrency, churn, drop")  # fmt: skip
    store: str | None = Field(description="the store entry's label, null for a dataset phase")
    seconds: float


class TimeSummary(BaseModel):
    """Where one run of ``sweep`` spent its time: one line of ``timings.jsonl`` beside ``results.jsonl`` per run."""

    model_config = ConfigDict(extra="forbid")

    schema_: int = Field(alias="schema", description="schema version")
    time: str = Field(description="when the sweep ended (UTC, ISO 8601)")
    total_s: float = Field(description="wall seconds of the whole sweep")
    parts: list[TimePart] = Field(description="exclusive seconds per phase (and store), in the order they started")
    other_s: float = Field(description="total_s minus the parts: setup, writing records, the closing check")


def validate_record(record: dict[str, Any], workloads: Collection[str] | None = None) -> None:
    """Raise SchemaError naming every field of ``record`` the written schema does not allow.

    ``workloads``: the names of the workloads there are (the writer passes the registry's, vdbbench.workloads);
    the record's ``workload`` must be one of them. The schema itself lists none, so a workload added as one
    module writes valid records.
    """
    problems = []
    try:
        Record.model_validate(record)
    except ValidationError as e:
        problems = [f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
    if workloads is not None and isinstance(record.get("workload"), str) and record["workload"] not in workloads:
        names = [repr(w) for w in workloads]
        known = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)
        problems.append(f"workload: Input should be {known}")
    if problems:
        raise SchemaError("record does not match vdbbench.core.schema.Record: " + "; ".join(problems))


def workload_name(record: dict[str, Any]) -> str:
    """The workload of a record of any version (version 1 named none: plain k-NN, or concurrency by its ``kind``)."""
    return record.get("workload") or ("concurrent" if record.get("kind") == "concurrency" else "knn")


def unknown_fields(record: dict[str, Any]) -> set[str]:
    """Fields of ``record`` this version's schema does not declare (a newer harness's, or a hand edit)."""
    declared = {f.alias or name for name, f in Record.model_fields.items()}
    return set(record) - declared


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """A record in this version's shape, from any version the harness wrote (version 1 had no ``workload``,
    ``filter`` or ``selectivity``, and marked concurrency records with ``kind: concurrency``). A record of a
    newer version is returned as it is: its readers warn (vdbbench.core.results), never relabel it."""
    version = record.get("schema")
    if version == SCHEMA_VERSION or (isinstance(version, int) and version > SCHEMA_VERSION):
        return record
    out = dict(record)
    out["workload"] = workload_name(out)
    out.pop("kind", None)
    out.setdefault("filter", None)
    out.setdefault("selectivity", None)
    out.setdefault("attributes", {})
    out["schema"] = SCHEMA_VERSION
    return out


def schema_markdown() -> str:
    """The README's table of record fields, from the model."""
    rows = ["| field | type | meaning |", "|---|---|---|"]
    for name, f in Record.model_fields.items():
        shown = f.alias or name
        kind = str(f.annotation).replace("typing.", "").replace("Literal", "one of ").replace("NoneType", "null")
        rows.append(f"| `{shown}` | {kind.replace('|', 'or')} | {f.description or ''} |")
    return "\n".join(rows)
