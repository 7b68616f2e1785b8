"""Passages per second through the harness (vdbbench.data.embed) vs a bare ``model.encode`` on the same passages.

The harness adds prompt handling, length sorting, chunked progress updates, the text hash and the
cache write; this measures what that costs. Target: ratio >= 0.95. Runs on the CPU, and on CUDA
too when torch sees a GPU. Bare and harness runs alternate; the reported ratio is the median over
pairs of (harness run / the bare run just before it), which keeps a busy machine's drift out of
it. The ratio of CPU seconds spent (this process, all threads) is printed too.

    .venv/bin/python benchmarks/embed_throughput.py [--corpus wordnet-en] [--n 500] [--model NAME] [--repeats 9]
    .venv/bin/python benchmarks/embed_throughput.py --smoke   # seconds: 32 passages, one repeat (what CI runs)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from _figures import add_common_args, write_figures


def measure(device: str, texts: list[str], model: str, batch_size: int | None, repeats: int) -> dict:
    from vdbbench.data import embed

    embedder = embed.Embedder(model, device=device, batch_size=batch_size, progress=True)
    lm = embedder.model()
    prefix = embedder.prefixes(lm).passage
    batch = batch_size or embedder.backend.batch_size(lm, texts)
    embedder.backend.encode(lm, texts[:64], prefix, batch)  # warm-up (kernels, allocator)
    bare, harness, bare_cpu, harness_cpu = [], [], [], []
    for i in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        embedder.backend.encode(lm, texts, prefix, batch)
        bare.append(len(texts) / (time.perf_counter() - start))
        bare_cpu.append(time.process_time() - cpu)
        saved = os.environ.get("VDBBENCH_DATA_DIR")
        with tempfile.TemporaryDirectory() as tmp:  # an empty cache: every run embeds everything
            os.environ["VDBBENCH_DATA_DIR"] = tmp
            try:
                start, cpu = time.perf_counter(), time.process_time()
                out = embedder.embed(texts, "passage", label=f"harness run {i + 1}")
                harness.append(len(texts) / (time.perf_counter() - start))
                harness_cpu.append(time.process_time() - cpu)
            finally:
                if saved is None:
                    os.environ.pop("VDBBENCH_DATA_DIR")
                else:
                    os.environ["VDBBENCH_DATA_DIR"] = saved
            assert not out.cache_hit
    embed.release_model()
    b, h = statistics.median(bare), statistics.median(harness)
    return {
        "device": embedder.backend.describe_device(embedder.device),
        "dtype": embedder.dtype,
        "model": embedder.ref.name,
        "passages": len(texts),
        "batch_size": batch,
        "bare_passages_per_s": round(b, 1),
        "harness_passages_per_s": round(h, 1),
        # each harness run over the bare run just before it, median over pairs: drift between pairs cancels
        "ratio": round(statistics.median(x / y for x, y in zip(harness, bare, strict=True)), 3),
        "ratio_of_medians": round(h / b, 3),
        # CPU seconds of this process per run: the harness's own cost, less sensitive to other load
        "cpu_time_ratio": round(statistics.median(bare_cpu) / statistics.median(harness_cpu), 3),
        "bare_runs": [round(x, 1) for x in bare],
        "harness_runs": [round(x, 1) for x in harness],
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="wordnet-en", help="built-in corpus name or file")
    parser.add_argument("--n", type=int, default=500, help="passages to embed per run")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                        help="all: the CPU, and CUDA when torch sees it")  # fmt: skip
    return add_common_args(parser)


def main() -> None:
    args = build_parser().parse_args()
    if args.smoke:
        args.n, args.repeats = 32, 1

    from vdbbench.data.corpora import load_corpus
    from vdbbench.data.models.sentence_transformers import resolve_device

    texts = load_corpus(args.corpus, max_passages=args.n).passages
    devices = ["cpu"] + (["cuda"] if resolve_device("auto") == "cuda" else [])
    if args.device != "all":
        devices = [resolve_device(args.device)]  # cuda without a GPU is refused, never measured on the CPU
    results = [measure(d, texts, args.model, args.batch_size, args.repeats) for d in devices]
    for r in results:
        verdict = "ok" if r["ratio"] >= 0.95 else "BELOW TARGET 0.95"
        print(
            f"{r['device']:>20} {r['dtype']}  {r['model']}  n={r['passages']} batch={r['batch_size']}: "
            f"bare {r['bare_passages_per_s']:,.1f}/s, harness {r['harness_passages_per_s']:,.1f}/s, "
            f"ratio {r['ratio']:.3f} ({verdict}); CPU-time ratio {r['cpu_time_ratio']:.3f}"
        )
    print(json.dumps(results, indent=1))
    write_figures(args.figures, {r["device"]: r for r in results})


if __name__ == "__main__":
    main()
