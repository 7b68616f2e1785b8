"""The package imports cleanly from the repository root, where ``datasets/`` could shadow a library."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_repository_datasets_folder_does_not_shadow_huggingface_datasets():
    # `python -c` puts the working directory first on sys.path, as `python -m vdbbench` does
    code = "import vdbbench, sys; import sentence_transformers, lancedb; print(sys.modules.get('datasets'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "namespace" not in out.stdout


def test_cli_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "vdbbench", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("sweep", "report", "compare", "datasets", "embed", "stores", "services"):
        assert command in out.stdout
