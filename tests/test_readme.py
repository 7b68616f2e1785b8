"""The README's generated parts stay generated."""

from pathlib import Path

from vdbbench.report.capabilities import generated_blocks

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


def test_every_example_config_is_valid_and_plans(monkeypatch, tmp_path):
    """The examples are what a new user runs first: each must pass the config check and plan its points."""
    from vdbbench.config import load_config
    from vdbbench.sweep.plan import planned_points

    monkeypatch.setenv("VDBBENCH_DATA_DIR", str(tmp_path))  # nothing prepared: plans come from the configs alone
    for path in sorted((README.parent / "examples").glob("*.yaml")):
        lines = planned_points(load_config(path))
        assert len(lines) > 2, path
    churn = planned_points(load_config(README.parent / "examples" / "churn.yaml"))
    assert sum(" · churn: " in line for line in churn) == 5
