"""What a user installs: the built wheel holds the templates and configs and its entry point runs; the package
imports cleanly from the repository root, where ``datasets/`` could shadow a library."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_repository_datasets_folder_does_not_shadow_huggingface_datasets():
    # `python -c` puts the working directory first on sys.path, as `python -m vdbbench` does
    # (engine clients that probe for it too are checked in their own test files)
    code = "import vdbbench, sys; import sentence_transformers; print(sys.modules.get('datasets'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "namespace" not in out.stdout


def test_cli_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "vdbbench", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("sweep", "report", "compare", "datasets", "embed", "stores", "services"):
        assert command in out.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this tree (no network: the venv's setuptools), installed into a folder of its own."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building in place would leave build/ and egg-info in the tree
    shutil.copytree(ROOT / "vdbbench", source / "vdbbench", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"),
         str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    [wheel] = (root / "dist").glob("vdbbench-*.whl")
    target = root / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    return wheel, target


def test_wheel_holds_the_report_templates_and_the_built_in_configs(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    templates = [p for p in (ROOT / "vdbbench" / "report" / "templates").rglob("*") if p.is_file()]  # workloads' too
    in_tree = {f"vdbbench/{p.relative_to(ROOT / 'vdbbench')}" for p in templates}
    in_tree |= {f"vdbbench/configs/{p.name}" for p in (ROOT / "vdbbench" / "configs").glob("*.yaml")}
    assert in_tree and in_tree <= set(names), sorted(in_tree - set(names))
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "vdbbench = vdbbench.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_entry_point_runs_and_finds_its_default_config(installed, tmp_path):
    _, target = installed
    env = {**os.environ, "PYTHONPATH": str(target)}  # the installed copy only, not this source tree
    script = target / "bin" / "vdbbench"
    out = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "sweep" in out.stdout and "compare" in out.stdout
    code = (
        "import vdbbench, vdbbench.config as c; cfg = c.load_config(c.DEFAULT_CONFIG); "
        "print(vdbbench.__file__); print(len(cfg.stores))"
    )
    shown = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    where, stores = shown.stdout.split()
    assert where.startswith(str(target)) and int(stores) >= 1
