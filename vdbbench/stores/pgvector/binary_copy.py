"""PostgreSQL's binary COPY format for the pgvector table's rows, built with numpy (far faster than text COPY or
row-by-row writes for millions of vectors)."""

from __future__ import annotations

import numpy as np

COPY_FORMATS = {"int": ">i8", "float": ">f8"}  # binary COPY layout of the fixed-width attribute columns
VECTOR_ELEMENTS = {"vector": ">f4", "halfvec": ">f2"}  # pgvector's vector_recv / halfvec_recv element layout


def copy_columns(kinds: dict[str, str]) -> list[str]:
    """Attribute columns in the order ``binary_copy_rows`` writes them: fixed-width numbers, then texts."""
    return [n for n, kind in kinds.items() if kind != "str"] + [n for n, kind in kinds.items() if kind == "str"]


def binary_copy_rows(ids: np.ndarray, vectors: np.ndarray, attributes: dict[str, tuple[str, np.ndarray]] | None = None,
                     vector_type: str = "vector") -> bytes:  # fmt: skip
    """One COPY ... (FORMAT BINARY) stream of (bigint id, vector, attribute...) rows, built with numpy.

    Layout (PostgreSQL COPY binary format): signature, flags, header extension length; per row
    a field count, then each field's byte length and value in network byte order; the
    pgvector value is int16 dim, int16 unused, dim float4 (``halfvec``: dim float2); bigint is int8, double precision
    float8, text its UTF-8 bytes. A trailer of -1 ends the stream. ``attributes`` (name →
    (kind, values)) must come in ``copy_columns`` order: numbers, which numpy lays out with
    the fixed part of each row, then texts, appended row by row.
    """
    attributes = attributes or {}
    n, dim = vectors.shape
    element = VECTOR_ELEMENTS[vector_type]
    numbers = {name: kv for name, kv in attributes.items() if kv[0] != "str"}
    fields = [("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("vec_len", ">i4"),
              ("dim", ">i2"), ("unused", ">i2"), ("values", element, (dim,))]  # fmt: skip
    for i, (kind, _) in enumerate(numbers.values()):
        fields += [(f"a{i}_len", ">i4"), (f"a{i}", COPY_FORMATS[kind])]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["fields"] = 2 + len(attributes)
    rows["id_len"] = 8
    rows["id"] = ids
    rows["vec_len"] = 4 + np.dtype(element).itemsize * dim
    rows["dim"] = dim
    rows["unused"] = 0
    rows["values"] = vectors
    for i, (_, values) in enumerate(numbers.values()):
        rows[f"a{i}_len"] = 8
        rows[f"a{i}"] = values
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    texts = [values for kind, values in attributes.values() if kind == "str"]
    if texts:
        fixed, size = rows.tobytes(), rows.dtype.itemsize
        encoded = [[str(v).encode() for v in values] for values in texts]
        body = b"".join(
            fixed[r * size : (r + 1) * size] + b"".join(len(col[r]).to_bytes(4, "big") + col[r] for col in encoded)
            for r in range(n)
        )
    else:
        body = rows.tobytes()
    return header + body + (-1).to_bytes(2, "big", signed=True)
