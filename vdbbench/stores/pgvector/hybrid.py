"""pgvector's native hybrid search: PostgreSQL full-text search and the vector index fused by reciprocal rank
fusion in one SQL statement, the pattern pgvector documents (pgvector-python ``examples/hybrid_search/rrf.py``):
each side ranks its best ``CANDIDATES`` rows (``RANK() OVER``), and a row scores the sum of ``1 / (RRF_K + rank)``
over the sides that found it. Each side ranks k rows, as every store's native hybrid does, and ``RRF_K`` is the
one constant of ``stores/fulltext.py``.

The passage text is a column beside the vector, its ``tsvector`` a generated column under a GIN index. A query's
words become a tsquery with the same text search configuration, joined by OR (``plainto_tsquery`` joins them by
AND, which on a question of several words matches almost no passage), as BM25 matches any of them. The
configuration is ``english`` (stemmed, stopwords removed); PostgreSQL has no Japanese parser, so Japanese passages
and queries are MeCab-pretokenized (``fulltext.prepare_texts``) and split on spaces by ``simple``.
"""

from __future__ import annotations

from typing import Any

from vdbbench.stores.fulltext import RRF_K, TextPrep

TEXT, TSV = "passage", "passage_tsv"  # the text column and its generated tsvector


def text_search_config(prep: TextPrep) -> str:
    """The PostgreSQL text search configuration: english, or simple for MeCab-pretokenized Japanese."""
    return "simple" if prep.language == "ja" else "english"


def text_columns(config: str) -> list[Any]:
    """The passage column and its tsvector, which the server generates with ``config`` on every insert."""
    from psycopg import sql

    generated = sql.SQL("{} tsvector GENERATED ALWAYS AS (to_tsvector({}, {})) STORED")
    return [sql.SQL("{} text").format(sql.Identifier(TEXT)),
            generated.format(sql.Identifier(TSV), sql.Literal(config), sql.Identifier(TEXT))]  # fmt: skip


def gin_index(table: str) -> Any:
    """CREATE INDEX of the GIN index full-text matches use."""
    from psycopg import sql

    return sql.SQL("CREATE INDEX {} ON {} USING gin ({})").format(
        sql.Identifier(gin_index_name(table)), sql.Identifier(table), sql.Identifier(TSV)
    )


def gin_index_name(table: str) -> str:
    return f"{table}_{TSV}_idx"


def hybrid_sql(table: str, operator: str, vector_type: str, config: str) -> Any:
    """The fused statement; parameters ``q`` (the query vector), ``text`` and ``k`` (rows per side and in all)."""
    from psycopg import sql

    return sql.SQL(
        "WITH dense AS (SELECT id, RANK() OVER (ORDER BY embedding {op} %(q)s::{vt}) AS rank FROM {t}"
        " ORDER BY embedding {op} %(q)s::{vt} LIMIT %(k)s),"
        " words AS (SELECT replace(plainto_tsquery({cfg}, %(text)s)::text, ' & ', ' | ')::tsquery AS query),"
        " lexical AS (SELECT id, RANK() OVER (ORDER BY ts_rank_cd({tsv}, query) DESC) AS rank"
        " FROM {t}, words WHERE {tsv} @@ query ORDER BY ts_rank_cd({tsv}, query) DESC LIMIT %(k)s)"
        " SELECT COALESCE(dense.id, lexical.id) AS id FROM dense FULL OUTER JOIN lexical ON dense.id = lexical.id"
        " ORDER BY COALESCE(1.0 / ({rrf} + dense.rank), 0.0) + COALESCE(1.0 / ({rrf} + lexical.rank), 0.0) DESC,"
        " 1 LIMIT %(k)s"
    ).format(op=sql.SQL(operator), vt=sql.SQL(vector_type), t=sql.Identifier(table), tsv=sql.Identifier(TSV),
             cfg=sql.Literal(config), rrf=sql.Literal(RRF_K))  # fmt: skip
