"""The "Adding a store" recipe, done as a new user would: in a scratch copy of the repository, copy
vdbbench/stores/hnswlib/ to vdbbench/stores/toylib/ and change only the store's name (one line). The new store is
listed, gets the conformance suite (tests/conformance) and passes it, and a sweep measures it; no other file is
edited."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def test_a_store_copied_from_hnswlib_with_its_name_changed_is_listed_tested_and_measured(tmp_path):
    scratch = tmp_path / "repo"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("vdbbench", "tests"):
        shutil.copytree(ROOT / folder, scratch / folder, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", scratch)
    # the recipe: copy the folder, change the one name line
    shutil.copytree(scratch / "vdbbench/stores/hnswlib", scratch / "vdbbench/stores/toylib")
    adapter = scratch / "vdbbench/stores/toylib/adapter.py"
    text, changed = re.subn(r'(?m)^(\s+)name = "hnswlib"$', r'\1name = "toylib"', adapter.read_text())
    assert changed == 1
    adapter.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env |= {"PYTHONPATH": str(scratch), "VDBBENCH_DATA_DIR": str(tmp_path / "data")}

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, *args], cwd=scratch, env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
        return done

    listed = run("-m", "vdbbench", "stores").stdout
    assert re.search(r"(?m)^\| toylib \| in-process \| hnsw \|", listed), listed

    tested = run("-m", "pytest", "tests/conformance", "-k", "toylib", "-q", "-p", "no:cacheprovider").stdout
    summary = tested.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 10 and not re.search(r"failed|error|skipped", summary), summary

    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump({
        "k": 10, "runs": 1, "warmup": 0,
        "datasets": [{"name": "toy", "synthetic": {"n": 500, "dim": 8, "queries": 20}}],
        "stores": [{"store": "toylib", "index": "hnsw"}],
    }))  # fmt: skip
    run("-m", "vdbbench", "sweep", "--config", str(config), "--out", str(tmp_path / "out"), "--no-report")
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert records and all(r["store"] == "toylib" and r["status"] == "ok" for r in records), records
    assert all(r["recall"] > 0.5 for r in records)
