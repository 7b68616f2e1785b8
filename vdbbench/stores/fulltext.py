"""Passage and query text for an engine's own full-text index (native hybrid search), shared by the stores whose
analyzer cannot split Japanese: those get MeCab tokens joined by spaces (fugashi + unidic-lite content words, the
bm25 store's tokenizer), which their whitespace/word tokenizer then splits; English goes as written, for the
engine's own analyzer. Also the one RRF constant every native hybrid query sends or applies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vdbbench.stores.bm25.adapter import detect_language, japanese_tokenizer

RRF_K = 60  # score = sum of 1 / (RRF_K + rank): LanceDB's RRFReranker default and the config's rrf_k default
JA_PRETOKENIZED = "MeCab-pretokenized by vdbbench (fugashi + unidic-lite content words, space-joined)"


@dataclass(frozen=True)
class TextPrep:
    """How passages and queries are sent to the engine: ``language`` detected on the passages, ``how`` for
    ``effective_config``, and ``prepare`` applied to every passage and query."""

    language: str
    how: str
    prepare: Callable[[str], str]


def prepare_texts(texts: list[str]) -> TextPrep:
    """English (and any space-separated language) as written; Japanese MeCab-pretokenized."""
    if detect_language(texts) == "ja":
        tokens = japanese_tokenizer()
        return TextPrep("ja", JA_PRETOKENIZED, lambda text: " ".join(tokens(text)))
    return TextPrep("en", "as written (the engine's analyzer tokenizes)", lambda text: text)
