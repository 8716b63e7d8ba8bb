"""The base model: a GGUF (the bundled one by default) or a Hugging Face model directory.

A GGUF is dequantized into torch by transformers (``GgufConfig(dequantize=True)``), which
takes about 30 s for the bundled model; the fp32 copy is cached as safetensors (with the
tokenizer) under ``<home>/training/bases/`` so later stages load it in about a second.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.bundled import BUNDLED_NAME
from assistant.registry import ModelRegistry
from training.manifest import TrainingError, digest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class BaseModel:
    """Where a base model lives and what it is called."""

    name: str  # registry name, or the file/directory name when not registered
    path: Path  # the .gguf file or the HF directory
    kind: str  # "gguf" or "hf"
    registered: bool = False

    @property
    def gguf(self) -> Path | None:
        """The GGUF file llama.cpp runs for this base (None for an HF directory)."""
        return self.path if self.kind == "gguf" else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view for manifests."""
        return {"name": self.name, "path": str(self.path), "kind": self.kind}


def resolve_base(ref: str | None, home: Path) -> BaseModel:
    """Resolve ``--base``: a registry name, a .gguf path or an HF model directory.

    Raises:
        TrainingError: an adapter, or a directory without ``config.json``.
        ModelNotFoundError: no such name or file.
    """
    ref = ref or BUNDLED_NAME
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise TrainingError(f"{path} is not a Hugging Face model directory (no config.json)")
        return BaseModel(path.name, path.resolve(), "hf")
    registry = ModelRegistry(home)
    entry = registry.resolve(ref)
    if entry.kind == "adapter":
        raise TrainingError(f"{ref} is an adapter; pass its base model with --base {entry.base}")
    registered = entry.builtin or entry.added_at is not None
    if not registered:  # a path to a registered model: use its registry name
        same = [e for e in registry.list() if e.kind == "model" and e.path == entry.path]
        if same:
            entry, registered = same[0], True
    return BaseModel(entry.name, entry.path, "gguf", registered)


def cache_dir(base: BaseModel, home: Path) -> Path:
    """The directory holding the dequantized fp32 copy of a GGUF base.

    ``<home>/training/bases/`` unless ``ASSISTANT_TRAINING_CACHE`` names another folder
    (shared by several data directories, e.g. across tests).
    """
    stat = base.path.stat()
    key = digest([str(base.path), stat.st_size, stat.st_mtime_ns])
    shared = os.environ.get("ASSISTANT_TRAINING_CACHE")
    root = Path(shared).expanduser() if shared else home / "training" / "bases"
    return root / f"{base.path.stem}-{key}"


def _hf_dir(base: BaseModel, home: Path) -> Path:
    """An HF directory for ``base``: the user's, or the cache (built on first use)."""
    if base.kind == "hf":
        return base.path
    cached = cache_dir(base, home)
    if (cached / "config.json").is_file():
        return cached
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(base.path.parent), base.path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=name,
        dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".building-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, cached)  # atomic: a killed build never looks finished
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return cached


def load_tokenizer(base: BaseModel, home: Path) -> Any:
    """The base model's tokenizer, with its own chat template.

    Raises:
        TrainingError: the tokenizer has no chat template.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(_hf_dir(base, home)))
    if not tokenizer.chat_template:
        raise TrainingError(f"{base.name} has no chat template; train a chat model instead")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(base: BaseModel, home: Path, qlora: bool = False) -> Any:
    """The base model in torch: fp32, or NF4-quantized for QLoRA.

    QLoRA computes in bf16 on CUDA and in fp32 on CPU (bitsandbytes' CPU backend; bf16 is
    ~18x slower on CPUs without bf16 units), where it trades speed for a 4-bit base in memory.
    """
    import torch
    from transformers import AutoModelForCausalLM

    folder = str(_hf_dir(base, home))
    if not qlora:
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    from transformers import BitsAndBytesConfig

    cuda = torch.cuda.is_available()
    compute = torch.bfloat16 if cuda else torch.float32
    quant = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )
    # Under torchrun / accelerate launch each rank holds its own copy on its own GPU.
    device = int(os.environ.get("LOCAL_RANK", "0")) if cuda else "cpu"
    return AutoModelForCausalLM.from_pretrained(
        folder, quantization_config=quant, dtype=compute, device_map={"": device}
    )
