"""A tiny llama saved as a Hugging Face folder, with data prepared for it (training tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def tiny_prepared_run(root: Path, examples: int) -> dict[str, Any]:
    """Save a 1-layer llama under ``root`` and prepare ``examples`` rows; return its parts."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.base import resolve_base
    from training.manifest import write_manifest

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    LlamaForCausalLM(config).save_pretrained(root / "tiny")
    home = root / "home"
    base = resolve_base(str(root / "tiny"), home)
    data = root / "data"
    data.mkdir()
    rows = [{"input_ids": [1, 5 + i, 9, 2], "labels": [-100, -100, 9, 2]} for i in range(examples)]
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_manifest(
        data,
        {"stage": "prepare", "key": "tiny", "base": base.as_dict(), "data_hash": "0"}
        | {"chat_template": "", "eos_token": "</s>"},
    )
    return {"base": base, "home": home, "data": data}
