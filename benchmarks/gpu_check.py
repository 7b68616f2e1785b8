"""Checks the CUDA paths on a GPU host: fp16 embedding against the CPU, and ground truth on the GPU against the CPU.

On a host where CUDA is visible (an NVIDIA device and torch sees it), this
  1. embeds the passages (default 10,000 WordNet glosses) with all-MiniLM-L6-v2 on the CPU (float32) and on the GPU
     (float16, batch size from free memory: the harness's own ``Embedder``, cache off), and checks the cosine of
     each passage's GPU vector against its CPU vector (>= 0.999 for every passage);
  2. computes exact ground truth (k = 100) of held-out passages among the rest, on the CPU (faiss) and on the GPU
     (faiss-gpu or torch), and checks the two give the same ids and the same distances;
  3. prints passages/s and ground-truth seconds on each device (each after a small warm-up, so CUDA's start-up,
     seconds on a fresh process, is not counted as speed), and their ratio.
It exits 1 on any mismatch. On a host without CUDA it says so and exits 0 (with ``--smoke`` it then runs both
sides on the CPU, so CI exercises every check). Takes well under 5 minutes on a T4.

    .venv/bin/python benchmarks/gpu_check.py                   # on the GPU host
    .venv/bin/python benchmarks/gpu_check.py --corpus FILE     # passages from a text/JSONL file of your own
    .venv/bin/python benchmarks/gpu_check.py --smoke           # seconds: 64 passages (what CI runs)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import NamedTuple
from unittest.mock import patch

import numpy as np
from _figures import add_common_args, write_figures

MIN_COSINE = 0.999  # per passage, GPU fp16 against CPU fp32


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="wordnet-en", help="a built-in corpus name or a passages file")
    ap.add_argument("--passages", type=int, default=10_000)
    ap.add_argument("--model", default="all-MiniLM-L6-v2", help="a model name or a local model folder")
    ap.add_argument("--queries", type=int, default=1_000, help="passages held out as ground-truth queries")
    ap.add_argument("--k", type=int, default=100)
    return add_common_args(ap)


def cuda_visible() -> bool:
    """An NVIDIA device that torch (or faiss-gpu) can use; torch is imported only where /dev/nvidia* exists."""
    from vdbbench.data.groundtruth import choose_backend

    return choose_backend("auto") != "faiss-cpu"


class Embedding(NamedTuple):
    vectors: np.ndarray
    per_second: float
    dtype: str
    batch_size: int


def embed(texts: list[str], model: str, device: str) -> Embedding:
    """The passages through the harness's Embedder on ``device``, with an empty cache (so it really encodes)."""
    from vdbbench.data import embed as harness

    with tempfile.TemporaryDirectory() as tmp, patch.dict(os.environ, {"VDBBENCH_DATA_DIR": tmp}):
        embedder = harness.Embedder(model, device=device, progress=False)
        embedder.model().model.encode(texts[:64], show_progress_bar=False)  # warm-up: CUDA start-up is not speed
        done = embedder.embed(texts, "passage")
        harness.release_model()
    return Embedding(done.vectors, done.meta["texts_per_second"], done.meta["dtype"], done.meta["batch_size"])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, the cosine of ``a``'s row with ``b``'s (float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def truth_mismatches(cpu: tuple[np.ndarray, np.ndarray], gpu: tuple[np.ndarray, np.ndarray]) -> list[str]:
    """What differs between two ground truths (ids, distances): empty when they are the same."""
    problems = []
    if cpu[0].shape != gpu[0].shape:
        return [f"shapes differ: CPU {cpu[0].shape}, GPU {gpu[0].shape}"]
    if rows := int((cpu[0] != gpu[0]).any(axis=1).sum()):
        problems.append(f"{rows} of {cpu[0].shape[0]} queries have other neighbour ids")
    if (gap := float(np.abs(cpu[1] - gpu[1]).max())) > 0:
        problems.append(f"distances differ by up to {gap:.3g}")
    return problems


def timed_truth(train: np.ndarray, test: np.ndarray, k: int, device: str) -> tuple[tuple, float]:
    from vdbbench.data.groundtruth import exact_knn

    exact_knn(train[:1000], test[:10], "angular", min(k, 10), device=device)  # warm-up (CUDA start-up)
    start = time.perf_counter()
    found = exact_knn(train, test, "angular", k, device=device)
    return found, time.perf_counter() - start


def main() -> int:
    args = build_parser().parse_args()
    if args.smoke:
        args.passages, args.queries, args.k = 64, 8, 10
    device = "cuda" if cuda_visible() else None
    if device is None:
        print("no CUDA device here (no /dev/nvidia*, or neither torch nor faiss sees one): nothing to check on a GPU")
        if not args.smoke:
            write_figures(args.figures, {"cuda": 0})
            return 0
        device = "cpu"
        print("--smoke: both sides run on the CPU, so every check below still runs")
    from vdbbench.data.corpora import load_corpus

    texts = load_corpus(args.corpus, max_passages=args.passages).passages
    if len(texts) <= args.queries:
        sys.exit(f"--corpus {args.corpus}: {len(texts)} passages, need more than --queries {args.queries}")
    if device == "cuda":
        import torch

        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    cpu = embed(texts, args.model, "cpu")
    gpu = embed(texts, args.model, device)
    cos = cosines(cpu.vectors, gpu.vectors)
    failures = []
    if (low := int((cos < MIN_COSINE).sum())) > 0:
        failures.append(f"{low} of {len(texts)} passages: GPU/CPU cosine below {MIN_COSINE} (lowest {cos.min():.6f})")
    vectors = cpu.vectors
    train, test = vectors[: -args.queries], vectors[-args.queries :]
    truth_cpu, cpu_s = timed_truth(train, test, args.k, "cpu")
    truth_gpu, gpu_s = timed_truth(train, test, args.k, device)
    failures += truth_mismatches(truth_cpu, truth_gpu)
    print(f"embedding {len(texts)} passages with {args.model}:")
    print(f"  cpu    {cpu.dtype:8s} batch {cpu.batch_size:4d}  {cpu.per_second:10,.0f} passages/s")
    print(f"  {device:6s} {gpu.dtype:8s} batch {gpu.batch_size:4d}  {gpu.per_second:10,.0f} passages/s"
          f"  ({gpu.per_second / max(cpu.per_second, 1e-9):.1f}x)")  # fmt: skip
    print(f"  cosine GPU vs CPU per passage: min {cos.min():.6f}, median {np.median(cos):.6f} (need >= {MIN_COSINE})")
    print(f"ground truth, {args.queries} queries x {len(train)} rows, k={args.k}, angular:")
    print(f"  cpu {cpu_s:.2f} s, {device} {gpu_s:.2f} s ({cpu_s / max(gpu_s, 1e-9):.1f}x); same ids and distances: "
          f"{'yes' if not truth_mismatches(truth_cpu, truth_gpu) else 'NO'}")  # fmt: skip
    write_figures(args.figures, {"cuda": int(device == "cuda"), "passages": len(texts),
                                 "cpu_passages_per_s": cpu.per_second, "gpu_passages_per_s": gpu.per_second,
                                 "min_cosine": float(cos.min()), "truth_cpu_s": cpu_s, "truth_gpu_s": gpu_s,
                                 "mismatches": len(failures)})  # fmt: skip
    for problem in failures:
        print(f"MISMATCH: {problem}")
    print("FAILED" if failures else "OK: the GPU paths agree with the CPU")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
