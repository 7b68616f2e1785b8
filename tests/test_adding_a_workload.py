"""The README's recipe for a new workload, done as a user would: one new module, no other file edited.

In a scratch copy of the package, ``vdbbench/workloads/toy.py`` defines a workload that measures plain
search at one setting under its own name. Without touching anything else, the CLI (run from the copy, in
subprocesses) lists its points in a dry run, measures and records them, shows them in the report and
matches them in ``compare``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

TOY = '''
"""A toy workload: one timed search per build at the entry's most accurate setting, recorded as "toy"."""

from vdbbench.execution.points import PointId, score_passes
from vdbbench.workloads import Workload


class Toy(Workload):
    name = "toy"

    def applies(self, cfg, dc, s):
        return True

    def points(self, sweep, ds, s, build):
        search = sweep.plan.target_base
        return [PointId(sweep.key(ds, s, build, search, self.name), ds, search, self.name)]

    def plan_lines(self, cfg, dc, s, plan, shape, head):
        return [f"{head} · toy search at {plan.target_base}"]

    def run(self, run):
        [point] = self.points(run.sweep, run.ds, run.s, run.build)
        if point.key in run.done:
            return True
        run.worker.call("set_search_params", point.search, timeout=600)
        passes, _ = run.worker.call("timed_passes", run.cfg.k, run.cfg.runs, run.cfg.warmup, timeout=600)
        scored = score_passes(passes, run.ds, run.cfg.k)
        run.sweep.record(run.ds, run.s, run.build, point.search, key_override=point.key, workload=self.name,
                         status="ok", error=None, recall=scored.recall, qps=scored.qps, qps_runs=scored.qps_runs,
                         **scored.latency, **run.build_fields)
        return True
'''

CONFIG = {
    "k": 10,
    "runs": 2,
    "warmup": 5,
    "batch_size": 0,
    "datasets": [{"name": "syn", "synthetic": {"n": 1000, "dim": 8, "queries": 20, "seed": 7}}],
    "stores": [
        {
            "store": "hnswlib",
            "index": "hnsw",
            "build": {"M": [8, 16], "ef_construction": 32},
            "search": {"ef": [10, 40]},
        },
    ],
}


def vdbbench(scratch: Path, *args: str) -> str:
    """``python -m vdbbench ARGS`` on the scratch copy; its stdout (a failure shows both streams)."""
    env = {**os.environ, "PYTHONPATH": str(scratch), "VDBBENCH_DATA_DIR": str(scratch / "data")}
    done = subprocess.run([sys.executable, "-m", "vdbbench", *args], cwd=scratch, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_a_workload_added_as_one_module_is_planned_measured_reported_and_compared(tmp_path):
    scratch = tmp_path / "scratch"
    shutil.copytree(REPO / "vdbbench", scratch / "vdbbench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", scratch / "pyproject.toml")
    (scratch / "vdbbench" / "workloads" / "toy.py").write_text(TOY, encoding="utf-8")  # the only change
    (scratch / "cfg.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")

    planned = vdbbench(scratch, "sweep", "--dry-run", "-c", "cfg.yaml").splitlines()
    toy_lines = [line for line in planned if "· toy search at {'ef': 40}" in line]
    assert len(toy_lines) == 2 and all("hnswlib (hnswlib) hnsw" in line for line in toy_lines)  # one per build

    out = scratch / "out"
    vdbbench(scratch, "sweep", "-c", "cfg.yaml", "-o", str(out), "--no-report")
    records = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    toy = [r for r in records if r["workload"] == "toy"]
    assert [(r["build"], r["search"], r["status"]) for r in toy] == [
        ({"m": 8, "ef_construction": 32}, {"ef": 40}, "ok"),
        ({"m": 16, "ef_construction": 32}, {"ef": 40}, "ok"),
    ]
    assert all(0 < r["recall"] <= 1 and r["qps"] > 0 and r["schema"] == 2 for r in toy)
    assert len([r for r in records if r["workload"] == "knn"]) == 4  # the other workloads are measured as before
    assert {r["key"] for r in toy}.isdisjoint(r["key"] for r in records if r["workload"] != "toy")

    vdbbench(scratch, "report", str(out))
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'href="#dataset-1-toy"' in html  # in the contents
    part = html[html.index('<h3 id="dataset-1-toy">') :]
    part = part[: part.index("</table>")]
    assert "The toy workload" in part and part.count('<td class="mono">ef=40</td>') == 2
    for r in toy:  # its recall and QPS, as sort keys of their cells
        assert f'data-sort="{r["recall"]}"' in part and f'data-sort="{r["qps"]}"' in part
    with (out / "points.csv").open(encoding="utf-8") as f:
        assert sum(",toy," in line for line in f) == 2  # exported as points

    compared = vdbbench(scratch, "compare", str(out), str(out))
    assert f"{len(records)} point(s) matched" in compared
    assert compared.count("ef=40 · toy") == 2  # its points, named by their workload
