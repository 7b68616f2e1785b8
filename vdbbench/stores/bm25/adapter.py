"""BM25 in process (bm25s): the lexical baseline, and the sparse leg of hybrid search.

This store takes TEXT, not vectors (``input = "text"``): the runner passes it the dataset's passage
and query texts. Tokenisation is language-aware: Japanese through the morphological analyser
MeCab (fugashi + unidic-lite), keeping content words; English lowercased, stopwords removed
(bm25s's English list) and Snowball-stemmed (PyStemmer). ``language: auto`` picks Japanese when at
least a fifth of the passages contain kana or kanji.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import numpy as np

from vdbbench.stores.base import BuildSpec, FamilySpec, Param, Store, StoreError

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s's own default token pattern
# UniDic parts of speech that carry no content: particles, auxiliaries, symbols, blanks.
_JA_SKIP = ("助詞", "助動詞", "補助記号", "記号", "空白")


def english_tokenizer() -> Callable[[str], list[str]]:
    import Stemmer
    from bm25s.stopwords import STOPWORDS_EN

    stem, stop = Stemmer.Stemmer("english").stemWord, frozenset(STOPWORDS_EN)
    return lambda text: [stem(w) for w in _WORD.findall(text.lower()) if w not in stop]


def japanese_tokenizer() -> Callable[[str], list[str]]:
    try:
        import fugashi
    except ImportError:
        raise StoreError("bm25 on Japanese text needs fugashi and unidic-lite: pip install 'vdbbench[bm25]'") from None
    tagger = fugashi.Tagger()  # finds the unidic-lite dictionary by itself

    def tokens(text: str) -> list[str]:
        out = []
        for word in tagger(unicodedata.normalize("NFKC", text)):
            if word.feature.pos1 not in _JA_SKIP and word.surface.strip():
                out.append(word.surface.lower())
        return out

    return tokens


TOKENIZERS = {
    "en": ("snowball-english+bm25s-stopwords-en (PyStemmer)", english_tokenizer),
    "ja": ("mecab-unidic-lite content words (fugashi)", japanese_tokenizer),
}


def detect_language(texts: list[str]) -> str:
    sample = texts[:1000]
    japanese = sum(1 for t in sample if _JAPANESE.search(t))
    return "ja" if sample and japanese >= len(sample) / 5 else "en"


class BM25Store(Store):
    name = "bm25"
    description = "BM25 with bm25s in process, on the passages' text (language-aware tokenisation)."
    mode = "in-process"
    baseline = True
    identity_fallback = ("BM25", "BM25", "in-process")
    packages = ("bm25s",)
    input = "text"
    families = {
        "bm25": FamilySpec(
            "bm25",
            "bm25s sparse BM25 (lexical, not a vector index)",
            build=(
                Param("k1", float, 1.5, "term-frequency saturation", minimum=0),
                Param("b", float, 0.75, "length normalisation", minimum=0),
                Param(
                    "method", str, "lucene", "BM25 variant", choices=("lucene", "robertson", "atire", "bm25l", "bm25+")
                ),
                Param("language", str, "auto", "tokeniser", choices=("auto", "en", "ja")),
            ),
            exact=True,
            note="needs a text dataset (embedded from a corpus)",
        )
    }

    def create(self, spec: BuildSpec) -> None:
        self.spec = spec
        self._texts: list[str] = []
        self._ids: list[np.ndarray] = []
        self._retriever: Any = None

    def insert(self, ids: np.ndarray, texts: Any) -> None:
        if len(texts) and not isinstance(texts[0], str):
            raise StoreError("bm25 searches text: it needs a text dataset (datasets[].text), not vectors")
        self._texts.extend(texts)
        self._ids.append(np.asarray(ids, dtype=np.int64))

    def build_index(self) -> None:
        import bm25s

        params = self.spec.params
        self.language = params["language"] if params["language"] != "auto" else detect_language(self._texts)
        self.tokenizer_name, make = TOKENIZERS[self.language]
        self._tokenize = make()
        self._row_ids = np.concatenate(self._ids) if self._ids else np.empty(0, dtype=np.int64)
        self._retriever = bm25s.BM25(k1=params["k1"], b=params["b"], method=params["method"])
        self._retriever.index([self._tokenize(t) for t in self._texts], show_progress=False)
        self._texts = []

    def search_scored(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, BM25 scores) of up to ``k`` passages sharing a term with the query, best first."""
        tokens = [t for t in self._tokenize(query) if t in self._retriever.vocab_dict]
        if not tokens:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        docs, scores = self._retriever.retrieve(
            [tokens], k=min(k, self._row_ids.size), show_progress=False, n_threads=0
        )
        hit = scores[0] > 0
        return self._row_ids[docs[0][hit]], scores[0][hit]

    def search(self, query: str, k: int) -> np.ndarray:
        return self.search_scored(query, k)[0]

    def effective_config(self) -> dict[str, Any]:
        r = self._retriever
        return {
            "family": "bm25",
            "metric": None,
            "params": {"k1": r.k1, "b": r.b, "method": r.method},
            "engine": {
                "k1": r.k1,
                "b": r.b,
                "method": r.method,
                "documents": int(r.scores["num_docs"]),
                "vocabulary": len(r.vocab_dict),
                "tokenizer": self.tokenizer_name,
                "language": self.language,
            },
        }

    def resources(self) -> dict[str, Any]:
        scores = self._retriever.scores
        return {"index_bytes": int(sum(scores[name].nbytes for name in ("data", "indices", "indptr")))}

    def engine_version(self) -> str:
        return f"bm25s {version('bm25s')}"

    def drop(self) -> None:
        self._retriever = None
