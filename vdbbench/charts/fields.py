"""How numbers, sizes and parameters are written in tables, plots and the console: one formatter each."""

from __future__ import annotations

import json
import math
from typing import Any


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def qps_range(record: dict[str, Any]) -> tuple[float, float] | None:
    """Slowest and fastest timed pass of a point, or None when it has no QPS."""
    runs = [float(x) for x in (record.get("qps_runs") or []) if isinstance(x, int | float)]
    if not runs and isinstance(record.get("qps"), int | float):
        runs = [float(record["qps"])]
    return (min(runs), max(runs)) if runs else None


# Parameter text longer than this is cut in table cells, with the full text under <details>.
PARAMS_SHOWN = 48


def params_text(params: dict[str, Any] | None, empty: str = "—") -> str:
    """``m=16 ef=64``: parameters as tables, plots, the console and the dry run write them; ``empty`` when none."""
    return " ".join(f"{k}={v}" for k, v in (params or {}).items()) or empty


def all_params(record: dict[str, Any]) -> str:
    """A record's build and search parameters as one text."""
    return params_text({**(record.get("build") or {}), **(record.get("search") or {})})


def short_params(text: str, limit: int = PARAMS_SHOWN) -> str:
    """Parameter text cut to fit a table cell (the full text goes under <details>) or a plot label."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- numbers and names -------------------------------------------------------------------
def fmt_num(value: Any, digits: int = 3) -> str:
    """Readable number: thousands separators for large values, ``digits`` significant digits for small ones."""
    if not is_number(value):
        return "" if value is None else str(value)
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def fmt_bytes(value: Any) -> str:
    if not is_number(value):
        return "" if value is None else str(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return str(value)


def fmt_resource(key: str, value: Any) -> str:
    return fmt_bytes(value) if "bytes" in key else fmt_num(value)


def compact_json(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
