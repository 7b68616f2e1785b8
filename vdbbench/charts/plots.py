"""Plot helpers shared by the report and the workloads' report sections: fonts, colours, series, figures."""

from __future__ import annotations

import base64
import io
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from vdbbench.charts.fields import params_text, short_params
from vdbbench.stores.identity import record_identity

CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "Source Han Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic",
             "VL Gothic", "Hiragino Sans", "Yu Gothic", "Meiryo")  # fmt: skip


COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
          "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")  # fmt: skip


LINESTYLES = ("-", "--", ":", "-.")

# Build parameters shown in a plot label, so the labels leave the plot its width.
PLOT_PARAMS_SHOWN = 36


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """A Japanese-capable font matplotlib can use, registering system fonts its cache has not seen."""
    from matplotlib import font_manager

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((n for n in CJK_FONTS if n in names), None)

    if found := known():
        return found
    try:  # matplotlib's font cache predates fonts installed later; ask fontconfig
        out = subprocess.run(["fc-list", ":lang=ja", "file"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        path = line.split(":", 1)[0].strip()
        if path:
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    return known()


def plot_text(text: str) -> str | None:
    """``text`` made safe for a matplotlib label, or None when it would render as empty boxes."""
    if any(ord(c) >= 0x2000 and c not in "–—…" for c in text) and cjk_font() is None:
        return None  # DejaVu Sans covers Latin, Greek and Cyrillic; CJK needs a CJK font
    text = text.replace("$", r"\$")  # a lone $ would start mathtext
    return "\u200b" + text if text.startswith("_") else text  # legend hides labels starting with _


# -- model -------------------------------------------------------------------------------
@dataclass
class Series:
    """One store configuration × index family: a line on the recall/QPS plot."""

    tag: str
    label: str
    store: str
    family: str  # the records' ``index``
    color: str
    marker: str
    engine: dict[str, Any]

    @property
    def who(self) -> str:
        """The engine measured (``Milvus Lite 3.2.2 (embedded)``), after the config's label where the user named it."""
        return self.engine["label"] if self.label == self.store else f"{self.label} ({self.engine['label']})"

    @property
    def name(self) -> str:
        return f"{self.who} · {self.family}"

    @property
    def baseline(self) -> bool:
        return bool(self.engine.get("baseline"))

    def plot_name(self) -> str:
        return f"{self.tag} {plot_text(self.name) or ''}".strip()


def build_label(s: Series, build: dict[str, Any] | None, with_name: bool = False) -> str:
    """Plot label of one build: tag, (name,) build parameters; ASCII-safe parts only when glyphs are missing."""
    params = short_params(params_text(build), PLOT_PARAMS_SHOWN) if build else ""
    name = plot_text(s.name) if with_name or not params else None
    return " ".join(x for x in (s.tag, name, plot_text(params) if params else None) if x)


def series_key(record: dict[str, Any]) -> tuple[str, str]:
    return str(record.get("label")), str(record.get("index"))


def build_series(records: list[dict[str, Any]]) -> dict[tuple[str, str], Series]:
    """One series per store label × family, named by the engine its records say was measured."""
    out: dict[tuple[str, str], Series] = {}
    for r in records:
        key = series_key(r)
        if key not in out:
            i = len(out)
            out[key] = Series(f"S{i + 1}", key[0], str(r.get("store")), key[1], COLORS[i % len(COLORS)],
                              MARKERS[i % len(MARKERS)], record_identity(r))  # fmt: skip
        elif out[key].engine.get("version") is None and (r.get("engine") or r.get("engine_version")):
            out[key].engine = record_identity(r)  # a failed first record knew no version; a later one does
    return out


def databases(records: list[dict[str, Any]], series: dict[tuple[str, str], Series]) -> dict[str, str]:
    """Store label → the engine measured (``Series.who``) of every entry among ``records`` that is no baseline."""
    out: dict[str, str] = {}
    for r in records:
        s = series[series_key(r)]
        if not s.baseline:
            out.setdefault(str(r.get("label")), s.who)
    return out


# -- plots -------------------------------------------------------------------------------
def plot_style() -> Any:
    """Matplotlib settings for one plot, not leaking into the caller's: CJK glyph fallback where available."""
    import matplotlib

    font = cjk_font()
    return matplotlib.rc_context({"font.family": ["DejaVu Sans", font]} if font else {})


def new_figure(width: float, height: float) -> Any:
    """A matplotlib figure of ``width`` × ``height`` inches at the report's resolution."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure registry

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def qps_tick(value: float, _pos: Any = None) -> str:
    """Axis label such as 500, 2k, 50k, 1.2M instead of matplotlib's 5×10^4."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= div:
            return f"{value / div:g}{suffix}"
    return f"{value:g}"


def png_data_uri(fig: Any) -> str:
    """The figure as an inline PNG (``data:`` URI), so the report stays one self-contained file."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
