"""A Japanese labelled set in BEIR layout that does not come with vdbbench, for trying models on Japanese offline.

Made from manpages-ja pages the built-in manpages-ja-labels task does not use, split another way: query = a
page's NAME summary, corpus = the first two Japanese paragraphs (≥ 30 characters) of each page, relevance
2 for the first and 1 for the second. Pages in reverse sha1 order of their file name. README's offline
Japanese table is this set with 150 pages:
    .venv/bin/python examples/ja-beir-from-manpages.py /tmp/ja-beir 150
then a sweep with  text: {corpus: /tmp/ja-beir, model: [all-MiniLM-L6-v2, use-multilingual-v3]}
"""

import gzip
import hashlib
import re
import sys
from pathlib import Path

from vdbbench.data.corpora import MANPAGES_JA_DIR, roff_paragraphs
from vdbbench.data.labels import manpages_ja_task, write_beir

JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


def main(out: Path, pages: int) -> None:
    builtin = {q.removeprefix("q-") for q, _ in manpages_ja_task()[1]}
    paths = sorted(
        (p for p in MANPAGES_JA_DIR.glob("man*/*.gz") if not p.is_symlink()),
        key=lambda p: hashlib.sha1(p.name.encode()).hexdigest(),
        reverse=True,
    )
    docs, queries, qrels, seen = [], [], [], set()
    for path in paths:
        page = path.name.removesuffix(".gz")
        if len(queries) >= pages or page in builtin:
            continue
        text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        paras = roff_paragraphs(text)
        if text.lstrip().startswith(".so ") or not paras or " - " not in paras[0]:
            continue
        summary = paras[0].split(" - ", 1)[1].strip()
        body = [p for p in paras[1:] if len(p) >= 30 and JAPANESE.search(p) and p not in seen][:2]
        if not JAPANESE.search(summary) or not body:
            continue
        queries.append((f"u-{page}", summary))
        for n, p in enumerate(body):
            seen.add(p)
            docs.append((f"{page}#{n}", p))
            qrels.append((f"u-{page}", f"{page}#{n}", 2 - n))
    write_beir(out, docs, queries, qrels)
    print(f"{out}: {len(docs)} passages, {len(queries)} queries; none of the {len(builtin)} built-in task's pages")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
