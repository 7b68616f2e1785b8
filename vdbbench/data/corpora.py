"""Text corpora for embedding: users' files (.txt, .jsonl, .csv, .parquet) and built-in offline corpora.

Built-in corpora come from Debian packages, so they work without internet:

* ``wordnet-en``: every WordNet synset as "lemmas: gloss" (package ``wordnet-base``, ~117k passages).
* ``manpages-ja``: paragraphs of the Japanese man pages, roff markup stripped (package ``manpages-ja``,
  ~30k passages).

A prepare step extracts each into ``data_dir()/corpora/<name>.jsonl`` (one ``{"text", "source"}``
object per line) on first use; later reads use that file.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.core.filters import column_kind
from vdbbench.data.datasets import DatasetError, data_dir


class CorpusError(DatasetError):
    """A corpus file is missing, empty, unreadable or wrongly encoded; the message names the file and the fix."""


@dataclass
class Corpus:
    name: str
    path: Path
    passages: list[str]
    attributes: dict[str, np.ndarray] = field(default_factory=dict)  # name → one value per passage
    dates: list[str] = field(default_factory=list)  # the attributes made from ISO dates (int YYYYMMDD)

    @property
    def sha256(self) -> str:
        """Hash of the passage texts themselves, so the same text in another format hashes the same."""
        return texts_sha256(self.passages)

    def cut(self, max_passages: int | None) -> Corpus:
        """The first ``max_passages`` passages and their attribute values."""
        if not max_passages:
            return self
        columns = {n: c[:max_passages] for n, c in self.attributes.items()}
        return Corpus(self.name, self.path, self.passages[:max_passages], columns, self.dates)

    def describe_attributes(self) -> str:
        """'name kind, ...' of the attribute columns, dates marked: what the dataset file records of them."""
        return describe_attributes(self.attributes, self.dates)


def texts_sha256(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


# -- user files --------------------------------------------------------------------------

FORMATS = (".txt", ".jsonl", ".csv", ".parquet")


def iconv_command(path: Path, encoding: str) -> str:
    """A shell command converting ``path`` to UTF-8 next to it, keeping its format's suffix (quoted for the shell)."""
    path = Path(path)
    target = path.with_name(f"{path.stem}.utf8{path.suffix}")
    return f"iconv -f {encoding} -t UTF-8 {shlex.quote(str(path))} > {shlex.quote(str(target))}"


def _decode_utf8(raw: bytes, path: Path) -> str:
    """Decode as UTF-8 (a BOM is allowed) or raise CorpusError naming the byte, line and the likely encoding."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        command = iconv_command(path, "UTF-16")
        raise CorpusError(f"{path} is UTF-16 text, not UTF-8; re-save it as UTF-8 (e.g. {command})")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        hint = ""
        for codec, label in (("cp932", "Shift_JIS/CP932"), ("euc_jp", "EUC-JP")):
            try:
                raw.decode(codec)
            except UnicodeDecodeError:
                continue
            hint = f" It decodes as {label}: {iconv_command(path, codec.upper().replace('_', '-'))}"
            break
        raise CorpusError(f"{path} is not UTF-8 at byte {e.start} (line {line}); re-save it as UTF-8.{hint}") from None


def _open_checked(path: Path):
    """Open for reading, turning OS errors into CorpusError with the fix."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise CorpusError(
            f"corpus file {path} does not exist: check the path (or use a built-in corpus: {', '.join(BUILTIN)})"
        ) from None
    except IsADirectoryError:
        raise CorpusError(f"corpus {path} is a directory: give one {'/'.join(FORMATS)} file") from None
    except OSError as e:
        raise CorpusError(f"cannot read corpus file {path}: {e.strerror}; check its permissions") from None


def _read_bytes(path: Path) -> bytes:
    with _open_checked(path) as f:
        return f.read()


def _clean(text: object) -> str:
    return " ".join(str(text).split()) if text is not None else ""


@dataclass
class Rows:
    """What a reader found: each row's text, the asked fields' raw values (None: absent or null) and where
    each row is in the file ("line 3", "row 3"), so attribute errors can name it."""

    texts: list[str]
    values: dict[str, list[Any]]
    where: list[str]


ATTRIBUTES_AT = "text.attributes (--attribute)"  # the setting attribute errors name


def _read_txt(path: Path, field: str, names: tuple[str, ...] = ()) -> Rows:
    if names:
        raise CorpusError(
            f"{ATTRIBUTES_AT}: {path} is plain text, one passage per line, with no fields to read "
            f"{list(names)} from; give a .jsonl, .csv or .parquet corpus, or remove text.attributes"
        )
    texts = [_clean(line) for line in _decode_utf8(_read_bytes(path), path).splitlines()]
    return Rows(texts, {}, [f"line {i}" for i in range(1, len(texts) + 1)])


def json_lines(text: str, path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) for every non-blank line of a JSON-lines text; CorpusError names a bad line."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(
                f"{path} line {number} is not valid JSON ({e.msg}); each line must be one object"
            ) from None


def record_field(record: dict, name: str) -> Any:
    """A record's field ``name``, else that of its ``metadata`` object (BEIR's place for extras); None if neither."""
    if name in record:
        return record[name]
    metadata = record.get("metadata")
    return metadata.get(name) if isinstance(metadata, dict) else None


def _read_jsonl(path: Path, field: str, names: tuple[str, ...] = ()) -> Rows:
    rows = Rows([], {n: [] for n in names}, [])
    seen: set[str] = set()
    first: list[str] = []
    for number, obj in json_lines(_decode_utf8(_read_bytes(path), path), path):
        if not isinstance(obj, dict) or field not in obj:
            keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise CorpusError(
                f"{path} line {number} has no field {field!r} (it has {keys}); set the text field name "
                f"(--text-field / text.text_field)"
            )
        rows.texts.append(_clean(obj[field]))
        rows.where.append(f"line {number}")
        for n in names:
            rows.values[n].append(record_field(obj, n))
            if n in obj or (isinstance(obj.get("metadata"), dict) and n in obj["metadata"]):
                seen.add(n)
        first = first or sorted(obj)
    unknown = [n for n in names if n not in seen]
    if unknown and rows.texts:
        raise CorpusError(
            f"{ATTRIBUTES_AT}: no record of {path} has a field {unknown[0]!r} (the first has {first}); name fields "
            "of the records (or of their 'metadata' object), or remove it from text.attributes"
        )
    return rows


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _csv_column(cells: list[str]) -> list[Any]:
    """A CSV column's cells typed: all integers → int, all numbers → float (an empty cell → None, missing),
    else the strings as they are (an empty cell is the empty string, as in JSON)."""
    present = [c for c in cells if c != ""]
    if present and all(_INT.fullmatch(c) for c in present):
        return [int(c) if c != "" else None for c in cells]
    if present and all(_FLOAT.fullmatch(c) for c in present):
        return [float(c) if c != "" else None for c in cells]
    return cells


def _unknown_column(path: Path, names: tuple[str, ...], columns: list[str]) -> None:
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise CorpusError(
            f"{ATTRIBUTES_AT}: {path} has no column {unknown[0]!r} (columns: {columns}); name columns of the "
            "corpus, or remove it from text.attributes"
        )


def _read_csv(path: Path, field: str, names: tuple[str, ...] = ()) -> Rows:
    reader = csv.DictReader(io.StringIO(_decode_utf8(_read_bytes(path), path), newline=""))
    if reader.fieldnames is None:
        return Rows([], {n: [] for n in names}, [])
    if field not in reader.fieldnames:
        raise CorpusError(
            f"{path} has no column {field!r} (columns: {reader.fieldnames}); set the text column name "
            f"(--text-field / text.text_field)"
        )
    _unknown_column(path, names, list(reader.fieldnames))
    records = list(reader)
    values = {n: _csv_column([r[n] or "" for r in records]) for n in names}
    return Rows([_clean(r[field]) for r in records], values, [f"row {i}" for i in range(1, len(records) + 1)])


def _read_parquet(path: Path, field: str, names: tuple[str, ...] = ()) -> Rows:
    import pyarrow.parquet as pq

    with _open_checked(path):  # existence and permission errors in the same words as the other formats
        pass
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise CorpusError(f"{path} is not a readable Parquet file ({e}); re-export it") from None
    if field not in schema.names:
        raise CorpusError(
            f"{path} has no column {field!r} (columns: {schema.names}); set the text column name "
            f"(--text-field / text.text_field)"
        )
    _unknown_column(path, names, schema.names)
    table = pq.read_table(path, columns=list(dict.fromkeys([field, *names])))
    texts = [_clean(v) for v in table.column(field).to_pylist()]
    values = {n: table.column(n).to_pylist() for n in names}
    return Rows(texts, values, [f"row {i}" for i in range(1, len(texts) + 1)])


READERS: dict[str, Callable[[Path, str, tuple[str, ...]], Rows]] = {
    ".txt": _read_txt,
    ".jsonl": _read_jsonl,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
}


def read_passages(
    path: str | Path, text_field: str = "text", attributes: tuple[str, ...] = (), what: str = "corpus"
) -> Corpus:
    """Non-empty passages of one user file, whitespace collapsed, in file order, and the ``attributes`` fields
    of the same rows as typed columns (see ``attribute_columns``)."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise CorpusError(f"{what} {path}: unknown format {path.suffix!r}; use one of {', '.join(FORMATS)}")
    rows = reader(path, text_field, tuple(attributes))
    kept = [i for i, t in enumerate(rows.texts) if t]
    if not kept:
        raise CorpusError(
            f"{what} {path} holds no text"
            + (f" in field {text_field!r}" if path.suffix.lower() != ".txt" else "")
            + "; give a file with at least one non-empty passage"
        )
    values = {n: [v[i] for i in kept] for n, v in rows.values.items()}
    columns, dates = attribute_columns(values, [rows.where[i] for i in kept], path)
    return Corpus(path.stem, path, [rows.texts[i] for i in kept], columns, dates)


def read_texts(path: str | Path, text_field: str = "text", what: str = "corpus") -> list[str]:
    """Non-empty passages of one user file, whitespace collapsed, in file order."""
    return read_passages(path, text_field, (), what).passages


# -- attributes ----------------------------------------------------------------------------

_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?")


def iso_date(value: str) -> int | None:
    """An ISO date (YYYY-MM-DD, optionally with a time) as the integer YYYYMMDD; None for other strings.

    The date is the one written (a time zone does not move it), so a range ``{gte: 20240101, lt: 20240401}``
    selects the first quarter of 2024. ValueError for a date that does not exist (2024-02-30).
    """
    m = _ISO_DATE.fullmatch(value)
    if m is None:
        return None
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    date(year, month, day)  # raises for a day that does not exist
    return year * 10000 + month * 100 + day


def _kind(value: Any) -> tuple[str, Any]:
    """(kind, value as stored) of one raw field value: int, float, date (→ YYYYMMDD), str, missing or bad."""
    if value is None:
        return "missing", None
    if isinstance(value, bool):
        return "bad", value
    if isinstance(value, int):
        return "int", value
    if isinstance(value, float):
        return ("float", value) if math.isfinite(value) else ("bad", value)
    if isinstance(value, date):  # a Parquet date or timestamp column (datetime is a date)
        return "date", value.year * 10000 + value.month * 100 + value.day
    if isinstance(value, str):
        try:
            day = iso_date(value)
        except ValueError:
            return "bad", value
        return ("date", day) if day is not None else ("str", value)
    return "bad", value


def attribute_columns(
    values: dict[str, list[Any]], where: list[str], path: Path
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Raw field values (name → one per row) as attribute columns: all integers → int64, numbers → float64,
    all ISO dates → int64 YYYYMMDD, strings → str (strings of which only some are dates stay strings).

    Returns the columns and the names of those made from dates. CorpusError naming the field, the row and
    the fix for a field missing or null in some row, absent from every row, holding a boolean, list, object
    or non-finite number, or mixing numbers and strings.
    """
    columns, dates = {}, []
    for name, raw in values.items():
        at = f"{ATTRIBUTES_AT}: field {name!r} of {path}"
        typed = [_kind(v) for v in raw]
        kinds = {k for k, _ in typed}
        missing = [i for i, (k, _) in enumerate(typed) if k == "missing"]
        if len(missing) == len(typed):
            raise CorpusError(
                f"{at} is missing or null in every record; name a field the records have, or remove it from "
                "text.attributes"
            )
        if missing:
            raise CorpusError(
                f"{at} is missing or null in {where[missing[0]]}"
                + (f" and {len(missing) - 1} more rows" if len(missing) > 1 else "")
                + "; give every record a value, or remove the field from text.attributes"
            )
        bad = [i for i, (k, _) in enumerate(typed) if k == "bad"]
        if bad:
            value = raw[bad[0]]
            raise CorpusError(
                f"{at}: {where[bad[0]]} holds {value!r}"
                + (
                    ", written as an ISO date but no such day exists; correct it"
                    if isinstance(value, str)
                    else "; an attribute value is an integer, a finite number, a string or an ISO date (YYYY-MM-DD): "
                    "store booleans as 0/1 and flatten lists and objects"
                )
            )
        if kinds == {"int"}:
            columns[name] = np.array([v for _, v in typed], dtype=np.int64)
        elif kinds <= {"int", "float"}:
            columns[name] = np.array([v for _, v in typed], dtype=np.float64)
        elif kinds == {"date"}:
            columns[name] = np.array([v for _, v in typed], dtype=np.int64)
            dates.append(name)
        elif kinds <= {"str", "date"}:
            columns[name] = np.array([str(v) for v in raw], dtype=str)
        else:
            number = next(i for i, (k, _) in enumerate(typed) if k in ("int", "float"))
            text = next(i for i, (k, _) in enumerate(typed) if k in ("str", "date"))
            raise CorpusError(
                f"{at} mixes numbers and strings ({where[number]}: {raw[number]!r}, {where[text]}: {raw[text]!r}); "
                "give it one type in every record, or remove it from text.attributes"
            )
    return columns, dates


def describe_attributes(columns: dict[str, np.ndarray], dates: list[str]) -> str:
    """'name kind, ...' of corpus attribute columns, dates marked: what the dataset file records of them."""
    return ", ".join(f"{n} {'int YYYYMMDD' if n in dates else column_kind(c)}" for n, c in columns.items())


def load_corpus(
    source: str | Path, text_field: str = "text", max_passages: int | None = None, attributes: tuple[str, ...] = ()
) -> Corpus:
    """A built-in corpus by name (prepared on first use) or a user file, with the ``attributes`` fields of its
    records as columns (typed over the whole file), cut to ``max_passages``."""
    if str(source) in BUILTIN:
        corpus = read_passages(prepare_corpus(str(source)), "text", attributes)
        corpus.name = str(source)
    else:
        corpus = read_passages(Path(source).expanduser(), text_field, attributes)
    return corpus.cut(max_passages)


# -- built-in corpora ----------------------------------------------------------------------

WORDNET_DIR = Path("/usr/share/wordnet")
MANPAGES_JA_DIR = Path("/usr/share/man/ja")


def wordnet_synsets(wordnet_dir: Path = WORDNET_DIR) -> Iterator[tuple[str, str, list[str], str]]:
    """(part of speech, offset, lemmas, gloss) per synset of WordNet's data.{noun,verb,adj,adv} files.

    A data line is ``offset lex_filenum ss_type w_cnt(hex) word lex_id ... | gloss``; lines
    starting with two spaces are the licence header. Lemmas lose ``_`` and adjective markers.
    """
    for pos in ("noun", "verb", "adj", "adv"):
        path = wordnet_dir / f"data.{pos}"
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or " | " not in line:
                    continue
                head, gloss = line.split(" | ", 1)
                fields = head.split()
                count = int(fields[3], 16)
                words = [re.sub(r"\((a|p|ip)\)$", "", w).replace("_", " ") for w in fields[4 : 4 + 2 * count : 2]]
                yield pos, fields[0], words, gloss.strip()


def wordnet_passages(wordnet_dir: Path = WORDNET_DIR) -> Iterator[tuple[str, str]]:
    """(text, source) per synset: "lemma, lemma: gloss"."""
    for pos, offset, words, gloss in wordnet_synsets(wordnet_dir):
        yield f"{', '.join(words)}: {gloss}", f"wordnet/{pos}/{offset}"


# Requests that start a new paragraph. For the list/tag ones (.TP's next line, .IP/.It arguments)
# the tag text opens the new paragraph; section headings are dropped.
_BREAKS = {
    "SH",
    "SS",
    "PP",
    "LP",
    "P",
    "TP",
    "IP",
    "HP",
    "TQ",
    "sp",
    "Sh",
    "Ss",
    "Pp",
    "Lp",
    "It",
    "Bl",
    "El",
    "Bd",
    "Ed",
    "RS",
    "RE",
    "nf",
    "fi",
    "EX",
    "EE",
    "TE",
    "in",
    "ti",
    "br",
    "bp",
    "Dl",
    "D1",
    "Rs",
    "Re",
}
_HEADINGS = {"SH", "SS", "Sh", "Ss"}
_TAGGED = {"IP", "It", "Dl", "D1"}
# man(7) font macros: arguments are running text; the alternating ones join their arguments without a space.
_FONT_SPACED = {"B", "I", "SM", "SB"}
_FONT_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}
# mdoc(7) macros carrying no text. Other mdoc macros (two letters, capital first) carry text, and names of
# callable macros among their arguments (".It Fl v Ar file") are markup, not words.
_MDOC_SILENT = {"Dd", "Dt", "Os", "Bl", "El", "Bd", "Ed", "Bk", "Ek", "Ns", "Sm", "Ud", "Bt", "Db", "Bf", "Ef"}
_MDOC_CALLABLE = {
    "Ad",
    "An",
    "Ar",
    "Cd",
    "Cm",
    "Dv",
    "Er",
    "Ev",
    "Fa",
    "Fl",
    "Fn",
    "Ft",
    "Ic",
    "Li",
    "Nm",
    "Pa",
    "Va",
    "Vt",
    "Xr",
    "Em",
    "Sy",
    "Ql",
    "Dq",
    "Sq",
    "Pq",
    "Qq",
    "Aq",
    "Bq",
    "Brq",
    "Op",
    "Oo",
    "Oc",
    "Ns",
    "No",
    "Sx",
    "Tn",
    "Ux",
    "Bx",
    "At",
    "Lk",
    "Mt",
    "Ms",
    "Ot",
    "St",
    "Ta",
    "Xo",
    "Xc",
    "Pf",
    "Dl",
    "Nd",
}
_MDOC_MACRO = re.compile(r"^[A-Z][a-z]{1,2}$")


def _mdoc_text(macro: str, args: list[str]) -> str:
    """Text of one mdoc line: callable macro names dropped, ``Fl x`` as ``-x``, ``Xr ls 1`` as ``ls(1)``."""
    words, i = [], 0
    names = [macro, *args]
    while i < len(names):
        word = names[i]
        if word == "Xr" and i + 2 < len(names):
            words.append(f"{strip_escapes(names[i + 1])}({names[i + 2]})")
            i += 3
            continue
        if word == "Fl":
            flag = names[i + 1] if i + 1 < len(names) and names[i + 1] not in _MDOC_CALLABLE else ""
            words.append("-" + strip_escapes(flag))
            i += 2 if flag else 1
            continue
        if word not in _MDOC_CALLABLE and not (i == 0 and _MDOC_MACRO.match(word)):
            words.append(strip_escapes(word))
        i += 1
    return " ".join(w for w in words if w)


_SPECIAL = {
    "em": "—",
    "en": "–",
    "hy": "-",
    "bu": "•",
    "co": "©",
    "rg": "®",
    "tm": "™",
    "aq": "'",
    "dq": '"',
    "lq": "“",
    "rq": "”",
    "oq": "‘",
    "cq": "’",
    "ga": "`",
    "ha": "^",
    "ti": "~",
    "mu": "×",
    "di": "÷",
    "<=": "≤",
    ">=": "≥",
    "!=": "≠",
    "->": "→",
    "<-": "←",
    "ba": "|",
    "rs": "\\",
    "sl": "/",
    "pl": "+",
    "mi": "-",
    "eq": "=",
    "de": "°",
    "ct": "¢",
    "lB": "[",
    "rB": "]",
    "lC": "{",
    "rC": "}",
}
_ESCAPES = [
    (re.compile(r"\\f(\(..|\[[^]]*\]|.)"), ""),  # font changes
    (re.compile(r"\\s[+-]?(\d|\(\d\d|\[\d+\])"), ""),  # size changes
    (re.compile(r"\\\((..)"), lambda m: _SPECIAL.get(m.group(1), "")),
    (re.compile(r"\\\[([^]]*)\]"), lambda m: _SPECIAL.get(m.group(1), "")),
    (re.compile(r"\\\*(\(..|\[[^]]*\]|.)"), ""),  # string registers
    (re.compile(r"\\n[+-]?(\(..|\[[^]]*\]|.)"), ""),  # number registers
    (re.compile(r"\\[hvwlLNDXbozZHSx]'[^']*'"), ""),  # motions, widths, drawing
    (re.compile(r"\\[-e]"), lambda m: "-" if m.group(0) == "\\-" else "\\"),
    (re.compile(r"\\[ ~0]"), " "),
    (re.compile(r"\\[&,/^|)%:!cdurtapk{}]"), ""),
    (re.compile(r"\\(.)"), r"\1"),  # any other escaped character stands for itself
]
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
_CJK_OR_FULLWIDTH = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


def _roff_args(rest: str) -> list[str]:
    """Split macro arguments, honouring double quotes."""
    args, cur, quoted, i = [], "", False, 0
    while i < len(rest):
        c = rest[i]
        if c == "\\":  # an escape (``\ `` included) belongs to the argument
            cur += rest[i : i + 2]
            i += 2
            continue
        if c == '"':
            if quoted and rest[i + 1 : i + 2] == '"':
                cur += '"'
                i += 1
            else:
                quoted = not quoted
        elif c in " \t" and not quoted:
            if cur:
                args.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if cur:
        args.append(cur)
    return args


def strip_escapes(text: str) -> str:
    """Roff inline escapes to plain text (``\\fB``, ``\\-``, ``\\(em``, ``\\&``, comments...)."""
    text = re.sub(r'\\".*$', "", text)  # comment to end of line
    for pattern, repl in _ESCAPES:
        text = pattern.sub(repl, text)
    return text


def _join(lines: list[str]) -> str:
    """Join filled lines: no space between two Japanese characters, one space otherwise."""
    out = ""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if out and not (_CJK_OR_FULLWIDTH.match(out[-1]) and _CJK_OR_FULLWIDTH.match(line[0])):
            out += " "
        out += line
    return " ".join(out.split())


def roff_paragraphs(source: str) -> list[str]:
    """Plain-text paragraphs of one man page (man or mdoc macros); headings, tables and definitions dropped."""
    paragraphs: list[str] = []
    current: list[str] = []
    skip_until: str | None = None

    def flush() -> None:
        if current:
            text = _join(current)
            if text:
                paragraphs.append(text)
            current.clear()

    for raw in source.splitlines():
        line = raw.rstrip()
        if skip_until is not None:
            if line.startswith(skip_until):
                skip_until = None
            continue
        if line[:1] in (".", "'"):
            body = line[1:].lstrip()
            if body.startswith(('\\"', "\\#")) or not body:
                continue
            macro, _, rest = body.partition(" ")
            macro = macro.strip()
            if macro in ("de", "de1", "am", "ig"):
                skip_until = ".."
                continue
            if macro == "TS":
                flush()
                skip_until = ".TE"
                continue
            if macro in _HEADINGS:
                flush()  # the heading itself is not a paragraph
                continue
            args = _roff_args(rest)
            if macro in _BREAKS:
                flush()
                if macro == "It" and args:
                    current.append(_mdoc_text("It", args))
                elif macro in _TAGGED and args:
                    current.append(strip_escapes(" ".join(args) if macro != "IP" else args[0]))
                continue
            if macro in _FONT_SPACED:
                current.append(strip_escapes(" ".join(args)))
            elif macro in _FONT_ALTERNATING:
                current.append(strip_escapes("".join(args)))
            elif _MDOC_MACRO.match(macro) and macro not in _MDOC_SILENT:
                current.append(_mdoc_text(macro, args))
            # any other request (.TH, .ft, .if, .so, .UR...) carries no paragraph text
            continue
        if not line.strip():
            flush()
            continue
        current.append(strip_escapes(line))
    flush()
    return paragraphs


def manpages_ja_passages(man_dir: Path = MANPAGES_JA_DIR, min_chars: int = 20) -> Iterator[tuple[str, str]]:
    """(text, source) per paragraph of every Japanese man page with at least ``min_chars`` characters and
    some Japanese in it (English-only paragraphs are option lists and code). Symlinked pages are skipped
    (they duplicate their target), as are ``.so`` redirects and repeats of an earlier paragraph (shared
    option texts), so no two passages are identical."""
    seen: set[str] = set()
    for path in sorted(man_dir.glob("man*/*.gz")):
        if path.is_symlink():
            continue
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        except (OSError, EOFError):
            continue
        if text.lstrip().startswith(".so "):
            continue
        source = f"{path.parent.name}/{path.name.removesuffix('.gz')}"
        for paragraph in roff_paragraphs(text):
            if len(paragraph) >= min_chars and _JAPANESE.search(paragraph) and paragraph not in seen:
                seen.add(paragraph)
                yield paragraph, source


@dataclass(frozen=True)
class BuiltinCorpus:
    name: str
    description: str
    package: str
    check: Path
    extract: Callable[[], Iterator[tuple[str, str]]]


BUILTIN: dict[str, BuiltinCorpus] = {
    "wordnet-en": BuiltinCorpus(
        "wordnet-en",
        "English: WordNet synsets as 'lemmas: gloss', ~117k",
        "wordnet-base",
        WORDNET_DIR / "data.noun",
        wordnet_passages,
    ),
    "manpages-ja": BuiltinCorpus(
        "manpages-ja",
        "Japanese: paragraphs of the Japanese man pages, ~30k",
        "manpages-ja",
        MANPAGES_JA_DIR / "man1",
        manpages_ja_passages,
    ),
}


def corpus_path(name: str) -> Path:
    return data_dir() / "corpora" / f"{name}.jsonl"


def prepare_corpus(name: str, force: bool = False) -> Path:
    """Extract a built-in corpus into ``data_dir()/corpora/<name>.jsonl`` (once) and return the file."""
    if name not in BUILTIN:
        raise CorpusError(f"unknown built-in corpus {name!r}; use one of {', '.join(BUILTIN)} or a file path")
    spec = BUILTIN[name]
    target = corpus_path(name)
    if target.exists() and not force:
        return target
    if not spec.check.exists():
        raise CorpusError(
            f"built-in corpus {name!r} needs Debian's package {spec.package} ({spec.check} is missing): "
            f"sudo apt-get install {spec.package} (scripts/setup.sh installs it)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".jsonl.part")
    count = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for text, source in spec.extract():
            f.write(json.dumps({"text": text, "source": source}, ensure_ascii=False) + "\n")
            count += 1
    if count == 0:
        tmp.unlink()
        raise CorpusError(
            f"built-in corpus {name!r}: nothing extracted from {spec.check.parent}; reinstall {spec.package}"
        )
    os.replace(tmp, target)
    return target
