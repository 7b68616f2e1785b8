"""The README's generated parts stay generated."""

from pathlib import Path

from vdbbench.capabilities import generated_blocks

README = Path(__file__).parent.parent / "README.md"


def test_generated_blocks_match_the_adapters_and_the_record_schema():
    text = README.read_text(encoding="utf-8")
    for (start, end), content in generated_blocks().items():
        block = text.split(start, 1)[1].split(end, 1)[0].strip()
        assert block == content, (
            f"README block {start} is stale: run 'python -m vdbbench stores --update-readme README.md'"
        )


def test_readme_leads_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = "bash scripts/setup.sh && .venv/bin/python -m pytest"
    assert test_command in text.split("## Commands")[0] and test_command in ci
    assert "bash scripts/setup.sh && .venv/bin/python -m vdbbench sweep" in text.split("## Commands")[0]
