"""Benchmarks that cannot rot: every script in benchmarks/ runs its whole path in CI at toy size (``--smoke``),
and every benchmark command the README names exists with options its script takes. No timing is asserted."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parent.parent
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))  # _figures.py is shared code
# scripts with more than one path worth running in CI: the extra arguments of each run
VARIANTS = {"harness_overhead.py": [["--store", "hnswlib"], ["--store", "redis"]]}


def runs() -> list:
    return [pytest.param(script, extra, id=" ".join([script.name, *extra]))
            for script in SCRIPTS for extra in VARIANTS.get(script.name, [[]])]  # fmt: skip


def load_script(path: Path):
    """The script as a module (its ``main`` not run), to read its argument parser."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_the_folder_holds_the_scripts_this_suite_runs():
    assert {p.name for p in SCRIPTS} >= {"harness_overhead.py", "groundtruth_speed.py", "embed_throughput.py",
                                         "scale_1m.py"}  # fmt: skip
    assert set(VARIANTS) <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize(("script", "extra"), runs())
def test_every_benchmark_runs_at_toy_size_and_writes_finite_figures(script, extra, tmp_path):
    figures = tmp_path / "figures.json"
    args = [sys.executable, str(script), "--smoke", "--figures", str(figures), *extra]
    if any("--out" in action.option_strings for action in load_script(script).build_parser()._actions):
        args += ["--out", str(tmp_path / "out")]  # never the default folder, shared with other runs
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{script.name} --smoke failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    found = json.loads(figures.read_text())

    def numbers(value):
        if isinstance(value, dict):
            return [x for v in value.values() for x in numbers(v)]
        if isinstance(value, list):
            return [x for v in value for x in numbers(v)]
        return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []

    values = numbers(found)
    assert values, f"{script.name} wrote no figures"
    assert all(math.isfinite(v) for v in values)


def readme_benchmark_commands() -> list[tuple[str, list[str]]]:
    """(script, arguments) of every ``benchmarks/<script>.py ...`` command the README shows in backticks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = []
    for span in re.findall(r"`([^`]*benchmarks/\w+\.py[^`]*)`", text):
        words = shlex.split(span)
        at = next(i for i, w in enumerate(words) if re.fullmatch(r"(\S*/)?benchmarks/\w+\.py", w))
        found.append((Path(words[at]).name, words[at + 1 :]))
    return found


def test_the_readme_names_benchmark_commands():
    names = {script for script, _ in readme_benchmark_commands()}
    assert names >= {"harness_overhead.py", "groundtruth_speed.py", "embed_throughput.py", "scale_1m.py"}


@pytest.mark.parametrize(("script", "args"), readme_benchmark_commands(), ids=lambda x: str(x))
def test_every_benchmark_command_in_the_readme_exists_with_options_its_script_takes(script, args):
    path = BENCHMARKS / script
    assert path.is_file(), f"README names benchmarks/{script}, which does not exist"
    parser = load_script(path).build_parser()
    try:
        parser.parse_args(args)
    except SystemExit as e:
        pytest.fail(f"README's `benchmarks/{script} {' '.join(args)}`: the script refuses these options ({e})")


def test_every_benchmark_config_is_valid_for_the_stores():
    """Configs under benchmarks/ are checked and planned as a sweep would: a renamed parameter fails here."""
    from vdbbench.config import load_config

    configs = sorted(BENCHMARKS.glob("*.yaml"))
    assert configs
    for path in configs:
        cfg = load_config(path)
        for entry in cfg.stores:
            assert cfg.plan(entry, 20000, 784).builds


def test_gpu_check_without_cuda_says_so_and_exits_0(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no CUDA device here" in done.stdout


def test_gpu_check_finds_each_kind_of_mismatch():
    """The comparisons the CUDA path relies on: a wrong id, a changed distance, a vector turned away."""
    check = load_script(BENCHMARKS / "gpu_check.py")
    ids, dist = np.arange(12).reshape(3, 4), np.linspace(0, 1, 12).reshape(3, 4)
    assert check.truth_mismatches((ids, dist), (ids.copy(), dist.copy())) == []
    other = ids.copy()
    other[1, 2] = 99
    assert check.truth_mismatches((ids, dist), (other, dist)) == ["1 of 3 queries have other neighbour ids"]
    assert check.truth_mismatches((ids, dist), (ids, dist + 1e-7)) == ["distances differ by up to 1e-07"]
    assert check.truth_mismatches((ids, dist), (ids[:, :2], dist[:, :2]))[0].startswith("shapes differ")
    a = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    b = a.copy()
    b[3] += 0.2 * np.linalg.norm(a[3]) * np.eye(8, dtype=np.float32)[0]
    cos = check.cosines(a, b)
    assert np.allclose(cos[[0, 1, 2, 4]], 1.0) and cos[3] < check.MIN_COSINE
