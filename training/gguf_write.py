"""Write models and LoRA adapters as GGUF with the ``gguf`` package.

Architectures (``ARCHS``, by Hugging Face ``model_type``): llama, mistral (as llama), qwen2,
qwen3, gemma2 and phi3. Tensor names come from the ``gguf`` package's map for the
architecture (``gguf.get_tensor_name_map``, what llama.cpp's converter uses); what is not a
renaming is in :class:`ArchSpec` (q/k row order, Gemma's norm offset, phi3's output matrix).
Whatever is written is then checked in llama.cpp against the torch model
(:mod:`training.parity`), so a wrong mapping is refused, not shipped.

Two writers:

* :func:`write_lora_gguf`: a LoRA adapter (``general.type = adapter``) that llama.cpp applies
  to the original base GGUF through ``lora_path``;
* :func:`write_model_gguf`: a whole model, its metadata (tokenizer, chat template, special
  tokens) copied from a template GGUF and its hyperparameters taken from the HF config.

For llama, llama.cpp stores the rows of ``q_proj``/``k_proj`` in a rotary-friendly order (its
converter "permutes" them, and transformers' GGUF loader undoes it). A LoRA delta ``B @ A``
lands on those rows, so ``B`` of q/k is permuted the same way, and so are merged q/k weights.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from gguf.constants import MODEL_ARCH, MODEL_ARCH_NAMES

from training.manifest import TrainingError


@dataclass(frozen=True)
class ArchSpec:
    """How one Hugging Face ``model_type`` becomes a llama.cpp architecture."""

    arch: MODEL_ARCH
    # llama.cpp's llama converter reorders q/k rows for its rotary layout; the others
    # (NEOX rotary, as transformers computes it) keep the rows as they are.
    permute_qk: bool = False
    # Gemma's HF norms compute x * (1 + w); llama.cpp's compute x * w, so w + 1 is stored.
    norm_offset: float = 0.0
    # llama.cpp's phi3 always reads an ``output`` matrix, even for tied embeddings.
    needs_output: bool = False

    @property
    def name(self) -> str:
        """The GGUF ``general.architecture``."""
        return MODEL_ARCH_NAMES[self.arch]


ARCHS = {
    "llama": ArchSpec(MODEL_ARCH.LLAMA, permute_qk=True),
    "mistral": ArchSpec(MODEL_ARCH.LLAMA, permute_qk=True),
    "qwen2": ArchSpec(MODEL_ARCH.QWEN2),
    "qwen3": ArchSpec(MODEL_ARCH.QWEN3),
    "gemma2": ArchSpec(MODEL_ARCH.GEMMA2, norm_offset=1.0),
    "phi3": ArchSpec(MODEL_ARCH.PHI3, needs_output=True),
}
ARCH = "llama"  # the architecture of the bundled model
OUT_TYPES = {
    "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}
# Types llama.cpp's own quantizer makes from an f16 GGUF (k-quants need its importance logic).
QUANTIZED = {"q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}
_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.")


def arch_spec(model_type: str) -> ArchSpec:
    """The export recipe for a Hugging Face ``config.model_type``.

    Raises:
        TrainingError: a model type this exporter does not map.
    """
    if model_type not in ARCHS:
        raise TrainingError(
            f"{model_type!r} models do not export to GGUF; exportable: {', '.join(ARCHS)}"
        )
    return ARCHS[model_type]


@cache
def _name_map(arch: MODEL_ARCH, n_blocks: int) -> gguf.TensorNameMap:
    return gguf.get_tensor_name_map(arch, n_blocks)


def gguf_name(hf_module: str, model_type: str = "llama", n_blocks: int = 256) -> str:
    """Map an HF module name (``model.layers.3.mlp.up_proj``) to llama.cpp's (``blk.3.ffn_up``).

    The names come from the ``gguf`` package's tensor map for the model's architecture
    (the one llama.cpp's own converter uses).

    Raises:
        TrainingError: a module llama.cpp's architecture for ``model_type`` does not have.
    """
    spec = arch_spec(model_type)
    match = _LAYER_RE.match(hf_module)
    blocks = max(n_blocks, int(match.group(1)) + 1) if match else n_blocks
    name = _name_map(spec.arch, blocks).get_name(hf_module)
    if name is None:
        raise TrainingError(
            f"no llama.cpp {spec.name} tensor for {hf_module!r}; this module does not export"
        )
    return name


def _model_type(config: Any) -> str:
    return str(getattr(config, "model_type", None) or ARCH)


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
    """Write a GGUF LoRA adapter (f16) for a base of any architecture in ``ARCHS``.

    Args:
        lora: HF module name -> (A of shape (r, in), B of shape (out, r)), as peft stores them.
        config: the HF model config (head counts for the q/k permutation).
        alpha: LoRA alpha; llama.cpp scales ``B @ A`` by ``alpha / r`` like peft.
        out: the file to create.
        name: ``general.name`` of the adapter.
    """
    model_type = _model_type(config)
    spec = arch_spec(model_type)
    writer = gguf.GGUFWriter(str(out), spec.name)
    writer.add_string("general.type", "adapter")
    writer.add_name(name)
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for module, (a, b) in sorted(lora.items()):
        target = gguf_name(module, model_type, config.num_hidden_layers)
        heads = _heads_for(module, config) if spec.permute_qk else None
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
    """Write a whole model (any architecture in ``ARCHS``) as GGUF.

    Tokenizer, chat template and special tokens are copied from ``template`` (a GGUF of the
    same vocabulary, normally the base the model was trained from; its architecture may
    differ); the hyperparameters come from ``config`` and the tensor names from the ``gguf``
    package's map for ``config.model_type``.

    Args:
        state: HF parameter name -> array (``model.layers.0.self_attn.q_proj.weight``, ...).
        config: the HF model config (``LlamaConfig``, ``Qwen2Config``, ...).
        template: the GGUF whose metadata is copied.
        out: the file to create.
        outtype: ``f32``, ``f16`` or ``q8_0`` (matrices; norms and biases stay f32).
        name: ``general.name``; default: the template's.

    Raises:
        TrainingError: an unknown type or architecture, a vocabulary that does not match
            the template's, or a tensor llama.cpp's architecture has no name for.
    """
    if outtype not in OUT_TYPES:
        raise TrainingError(f"unknown GGUF type {outtype!r}; choose one of {', '.join(OUT_TYPES)}")
    qtype, ftype = OUT_TYPES[outtype]
    model_type = _model_type(config)
    spec = arch_spec(model_type)
    reader = gguf.GGUFReader(str(template), "r")
    template_arch = str(reader.fields["general.architecture"].contents())
    writer = gguf.GGUFWriter(str(out), spec.name)
    _add_hparams(writer, config, spec)
    writer.add_file_type(ftype)
    if name:
        writer.add_name(name)
    skip = {f.name for f in reader.fields.values() if f.name.startswith(f"{template_arch}.")}
    skip |= {"general.architecture", "general.file_type", "general.quantization_version"}
    if name:
        skip.add("general.name")
    n_tokens = len(reader.fields["tokenizer.ggml.tokens"].data)
    if n_tokens != config.vocab_size:
        raise TrainingError(
            f"the model has {config.vocab_size} tokens but {template}'s tokenizer has "
            f"{n_tokens}; export with the tokenizer the model was trained with"
        )
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in skip:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    blocks = int(config.num_hidden_layers)
    for param, array in state.items():
        module, _, leaf = param.rpartition(".")
        if leaf not in ("weight", "bias") or (tied and module == "lm_head"):
            continue
        heads = _heads_for(module, config) if spec.permute_qk else None
        if heads is not None:
            array = permute_rows(array, heads)
        if spec.norm_offset and array.ndim == 1 and module.endswith("norm"):
            array = array + spec.norm_offset
        data, raw = _encode(array, qtype)
        writer.add_tensor(f"{gguf_name(module, model_type, blocks)}.{leaf}", data, raw_dtype=raw)
    if spec.needs_output and tied:
        data, raw = _encode(state["model.embed_tokens.weight"], qtype)
        writer.add_tensor("output.weight", data, raw_dtype=raw)
    _finish(writer)
    return out


def _add_hparams(writer: gguf.GGUFWriter, config: Any, spec: ArchSpec) -> None:
    """Write the hyperparameters llama.cpp reads for ``spec``'s architecture."""
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.num_key_value_heads or heads)
    writer.add_rope_freq_base(float(_rope_theta(config)))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(config.vocab_size)
    if head_dim != config.hidden_size // heads or spec.arch == MODEL_ARCH.GEMMA2:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    if spec.arch in (MODEL_ARCH.LLAMA, MODEL_ARCH.PHI3):
        rotary = float(getattr(config, "partial_rotary_factor", None) or 1.0)
        writer.add_rope_dimension_count(int(head_dim * rotary))
    if spec.arch == MODEL_ARCH.GEMMA2:
        writer.add_attn_logit_softcapping(float(config.attn_logit_softcapping or 0.0))
        writer.add_final_logit_softcapping(float(config.final_logit_softcapping or 0.0))
    window = getattr(config, "sliding_window", None)
    if window and spec.arch in (MODEL_ARCH.GEMMA2, MODEL_ARCH.PHI3):
        writer.add_sliding_window(int(window))


def quantize_gguf(src: Path, out: Path, outtype: str, threads: int = 1) -> Path:
    """Quantize the GGUF ``src`` into ``out`` with llama.cpp (``llama_model_quantize``).

    Matrices whose rows do not split into 256-value blocks get llama.cpp's fallback types
    (q5_0 / q8_0 ...), as its ``llama-quantize`` tool does.

    Raises:
        TrainingError: an unknown type, or llama.cpp failed.
    """
    if outtype not in QUANTIZED:
        raise TrainingError(f"unknown quantized type {outtype!r}; choose {', '.join(QUANTIZED)}")
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANTIZED[outtype])
    params.nthread = threads
    code = llama_cpp.llama_model_quantize(
        str(src).encode(), str(out).encode(), ctypes.byref(params)
    )
    if code != 0 or not out.is_file():
        raise TrainingError(f"llama.cpp could not quantize {src} to {outtype} (code {code})")
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
