"""What every benchmark script shares: ``--smoke`` (the whole path in seconds, on data the script makes) and
``--figures FILE`` (its figures as JSON, for the test that runs every script in CI). Not a script itself."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--smoke", action="store_true",
                        help="run the whole path in seconds on small data the script makes (what CI runs)")  # fmt: skip
    parser.add_argument("--figures", metavar="FILE", help="also write the figures as JSON to FILE")
    return parser


def numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """Every number in ``value`` (nested dicts and lists), by a dotted path."""
    if isinstance(value, bool):
        return {}
    if isinstance(value, int | float):
        return {prefix: float(value)}
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in numbers(item, f"{prefix}.{key}".strip(".")).items()}
    if isinstance(value, list | tuple):
        return {k: v for i, item in enumerate(value) for k, v in numbers(item, f"{prefix}[{i}]").items()}
    return {}


def write_figures(path: str | None, figures: dict[str, Any]) -> None:
    """Write ``figures`` to ``path`` (when given); refuse an empty set or a non-finite figure, which would mean the
    benchmark measured nothing."""
    found = numbers(figures)
    if not found:
        raise SystemExit("benchmark produced no figures")
    if bad := sorted(k for k, v in found.items() if not math.isfinite(v)):
        raise SystemExit(f"benchmark produced non-finite figures: {', '.join(bad)}")
    if path:
        Path(path).write_text(json.dumps(figures, indent=1, allow_nan=False))
