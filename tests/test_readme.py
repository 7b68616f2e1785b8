"""The README's generated parts stay generated."""

from pathlib import Path

from vdbbench.capabilities import END, START, capability_markdown

README = Path(__file__).parent.parent / "README.md"


def test_capability_matrix_matches_the_adapters():
    text = README.read_text(encoding="utf-8")
    block = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == capability_markdown(), (
        "README capability matrix is stale: run 'python -m vdbbench stores --update-readme README.md'"
    )


def test_readme_leads_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = "bash scripts/setup.sh && .venv/bin/python -m pytest"
    assert test_command in text.split("## Commands")[0] and test_command in ci
    assert "bash scripts/setup.sh && .venv/bin/python -m vdbbench sweep" in text.split("## Commands")[0]
