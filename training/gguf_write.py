"""Write llama-architecture models and LoRA adapters as GGUF with the ``gguf`` package.

Two writers:

* :func:`write_lora_gguf`: a LoRA adapter (``general.type = adapter``) that llama.cpp applies
  to the original base GGUF through ``lora_path``;
* :func:`write_model_gguf`: a whole model, its metadata (tokenizer, chat template, special
  tokens) copied from a template GGUF and its hyperparameters taken from the HF config.

llama.cpp stores the rows of ``q_proj``/``k_proj`` in a rotary-friendly order (its converter
"permutes" them, and transformers' GGUF loader undoes it). A LoRA delta ``B @ A`` lands on
those rows, so ``B`` of q/k is permuted the same way, and so are merged q/k weights.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from training.manifest import TrainingError

ARCH = "llama"
_LAYER_MAP = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
_TOP_MAP = {
    "model.embed_tokens": "token_embd",
    "model.norm": "output_norm",
    "lm_head": "output",
}
_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
OUT_TYPES = {
    "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}


def gguf_name(hf_module: str) -> str:
    """Map an HF module name (``model.layers.3.mlp.up_proj``) to llama.cpp's (``blk.3.ffn_up``).

    Raises:
        TrainingError: a module llama.cpp's llama architecture does not have.
    """
    if hf_module in _TOP_MAP:
        return _TOP_MAP[hf_module]
    match = _LAYER_RE.match(hf_module)
    if match and match.group(2) in _LAYER_MAP:
        return f"blk.{match.group(1)}.{_LAYER_MAP[match.group(2)]}"
    raise TrainingError(
        f"no llama.cpp tensor for {hf_module!r}; only llama-architecture models export"
    )


def permute_rows(rows: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder the output rows of a q/k projection the way llama.cpp stores them."""
    out = rows.shape[0]
    return (
        rows.reshape(n_head, 2, out // n_head // 2, *rows.shape[1:])
        .swapaxes(1, 2)
        .reshape(rows.shape)
    )


def _heads_for(module: str, config: Any) -> int | None:
    if module.endswith("self_attn.q_proj"):
        return int(config.num_attention_heads)
    if module.endswith("self_attn.k_proj"):
        return int(config.num_key_value_heads or config.num_attention_heads)
    return None


def _encode(array: np.ndarray, qtype: gguf.GGMLQuantizationType) -> tuple[np.ndarray, Any]:
    """Return (data, raw_dtype) for ``add_tensor``; 1-D tensors always stay f32."""
    if array.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
        return array.astype(np.float32), None
    if qtype == gguf.GGMLQuantizationType.F16:
        return array.astype(np.float16), None
    if array.shape[-1] % 32:
        return array.astype(np.float16), None  # Q8_0 needs rows in blocks of 32
    return gguf.quants.quantize(array.astype(np.float32), qtype), qtype


def write_lora_gguf(
    lora: Mapping[str, tuple[np.ndarray, np.ndarray]],
    config: Any,
    alpha: float,
    out: Path,
    name: str,
) -> Path:
    """Write a GGUF LoRA adapter (f16) for a llama-architecture base.

    Args:
        lora: HF module name -> (A of shape (r, in), B of shape (out, r)), as peft stores them.
        config: the HF model config (head counts for the q/k permutation).
        alpha: LoRA alpha; llama.cpp scales ``B @ A`` by ``alpha / r`` like peft.
        out: the file to create.
        name: ``general.name`` of the adapter.
    """
    writer = gguf.GGUFWriter(str(out), ARCH)
    writer.add_string("general.type", "adapter")
    writer.add_name(name)
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for module, (a, b) in sorted(lora.items()):
        target = gguf_name(module)
        heads = _heads_for(module, config)
        if heads is not None:
            b = permute_rows(b, heads)
        writer.add_tensor(f"{target}.weight.lora_a", a.astype(np.float16))
        writer.add_tensor(f"{target}.weight.lora_b", b.astype(np.float16))
    _finish(writer)
    return out


def write_model_gguf(
    state: Mapping[str, np.ndarray],
    config: Any,
    template: Path,
    out: Path,
    outtype: str = "f16",
    name: str | None = None,
) -> Path:
    """Write a whole llama-architecture model as GGUF.

    Tokenizer, chat template and special tokens are copied from ``template`` (a GGUF of the
    same vocabulary, normally the base the model was trained from); the hyperparameters come
    from ``config``.

    Args:
        state: HF parameter name -> array (``model.layers.0.self_attn.q_proj.weight``, ...).
        config: the HF ``LlamaConfig``.
        template: the GGUF whose metadata is copied.
        out: the file to create.
        outtype: ``f32``, ``f16`` or ``q8_0`` (matrices; norms stay f32).
        name: ``general.name``; default: the template's.
    """
    if outtype not in OUT_TYPES:
        raise TrainingError(f"unknown GGUF type {outtype!r}; choose one of {', '.join(OUT_TYPES)}")
    qtype, ftype = OUT_TYPES[outtype]
    reader = gguf.GGUFReader(str(template), "r")
    arch = str(reader.fields["general.architecture"].contents())
    if arch != ARCH:
        raise TrainingError(f"{template} is a {arch!r} model; only llama-architecture export works")
    writer = gguf.GGUFWriter(str(out), ARCH)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads or config.num_attention_heads)
    writer.add_rope_freq_base(float(_rope_theta(config)))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(config.vocab_size)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_file_type(ftype)
    if name:
        writer.add_name(name)
    skip = {f.name for f in reader.fields.values() if f.name.startswith(f"{ARCH}.")}
    skip |= {"general.architecture", "general.file_type", "general.quantization_version"}
    if name:
        skip.add("general.name")
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in skip:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for param, array in state.items():
        module, _, leaf = param.rpartition(".")
        if leaf != "weight" or (tied and module == "lm_head"):
            continue
        heads = _heads_for(module, config)
        if heads is not None:
            array = permute_rows(array, heads)
        data, raw = _encode(array, qtype)
        writer.add_tensor(f"{gguf_name(module)}.weight", data, raw_dtype=raw)
    _finish(writer)
    return out


def _rope_theta(config: Any) -> float:
    theta = getattr(config, "rope_theta", None)
    if theta is None:
        params = getattr(config, "rope_parameters", None) or {}
        theta = params.get("rope_theta", 10000.0)
    return float(theta)


def _finish(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def special_tokens(path: Path) -> dict[str, Any]:
    """The chat template and BOS/EOS/padding ids a GGUF carries (None where absent)."""
    reader = gguf.GGUFReader(str(path), "r")
    keys = {
        "chat_template": "tokenizer.chat_template",
        "bos_token_id": "tokenizer.ggml.bos_token_id",
        "eos_token_id": "tokenizer.ggml.eos_token_id",
        "padding_token_id": "tokenizer.ggml.padding_token_id",
        "add_bos_token": "tokenizer.ggml.add_bos_token",
    }
    found: dict[str, Any] = {}
    for label, key in keys.items():
        field = reader.fields.get(key)
        found[label] = field.contents() if field is not None else None
    return found
