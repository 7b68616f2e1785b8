"""Passage and query text for an engine's own full-text index (native hybrid search), shared by the stores whose
analyzer cannot split Japanese: those get MeCab tokens joined by spaces (fugashi + unidic-lite content words, the
bm25 store's tokenizer), which their whitespace/word tokenizer then splits; English goes as written, for the
engine's own analyzer. Also the one RRF constant every native hybrid query sends or applies, and ``PreparedTexts``,
the ``set_texts``/``set_hybrid`` pair those stores share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vdbbench.stores.base import StoreError
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


class PreparedTexts:
    """``set_texts`` and ``set_hybrid`` of a store whose full-text index gets ``prepare_texts``'s text: the passages
    by row id as sent to the engine (``_texts``, read by its ``create``/``insert``), how they were prepared
    (``_text_prep``, applied to each query's text too), and whether queries are (vector, text) pairs (``_hybrid``)."""

    name: str
    _texts: list[str] | None = None
    _text_prep: TextPrep | None = None
    _hybrid: bool = False

    def set_texts(self, texts: list[str]) -> None:
        """Passage texts by row id; the next build adds the engine's text field and full-text index."""
        self._text_prep = prepare_texts(texts)
        self._texts = [self._text_prep.prepare(t) for t in texts]

    def set_hybrid(self, on: bool) -> None:
        """From now on each query is a (vector, text) pair, answered by the engine's own hybrid search."""
        if on and self._texts is None:
            raise StoreError(f"{self.name} native hybrid needs the passage texts (set_texts) before the build")
        self._hybrid = on
