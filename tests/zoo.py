"""A zoo of tiny GGUF chat models, one per family llama.cpp runs, built in the tests.

Each file has random weights (hidden size 64, 2 layers, a few MB), its family's
architecture and tensor layout, its family's chat template (``tests/zoo_templates/``, short
templates equivalent to the real ones) and a real tokenizer: the bundled SmolLM2's byte-level
BPE vocabulary with the family's template markers added as special tokens. llama.cpp loads
and runs every file; what the models *say* is noise, so tests pin structure (markers, stop
tokens, cached prompt tokens, parsed calls), never words.

Usage (``tests/conftest.py`` has the session fixture ``zoo``)::

    models = build_zoo(tmp_dir)            # {family: ZooModel}
    qwen = models["qwen2"]
    Llama(model_path=str(qwen.path))       # or LlamaCppBackend(qwen.path)

Families (``FAMILIES``): ``llama3`` and ``mistral`` (architecture ``llama``), ``qwen2``
(Qwen 2.5, tools), ``qwen3`` (tools, ``<think>``), ``gemma2`` (no system role), ``gemma3``
and ``phi3`` (fused qkv and gate/up tensors).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from gguf.constants import (
    MODEL_ARCH,
    MODEL_ARCH_NAMES,
    MODEL_TENSOR,
    MODEL_TENSORS,
    TENSOR_NAMES,
    GGUFValueType,
)

TEMPLATES = Path(__file__).parent / "zoo_templates"
FAMILIES = ("llama3", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3")

# Template markers each family's file adds to SmolLM2's vocabulary (which already has
# <|endoftext|>, <|im_start|> and <|im_end|>). CONTROL tokens are dropped when text is
# detokenized without special=True, as in the real files; the USER_DEFINED ones (markers a
# parser reads in the model's text: <think>, <tool_call>) stay visible.
_CONTROL = {
    "llama3": (
        "<|begin_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
        "<|eom_id|>",
    ),
    "mistral": (
        "<s>",
        "</s>",
        "[INST]",
        "[/INST]",
        "[AVAILABLE_TOOLS]",
        "[/AVAILABLE_TOOLS]",
        "[TOOL_RESULTS]",
        "[/TOOL_RESULTS]",
        "[TOOL_CALLS]",
    ),
    "gemma2": ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"),
    "gemma3": ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"),
    # llama.cpp sets attributes on <unk>, <s> and </s> of a model named "phi3": they must exist.
    "phi3": ("<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
}
_TOOL_MARKERS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
_USER_DEFINED = {"qwen2": _TOOL_MARKERS, "qwen3": ("<think>", "</think>", *_TOOL_MARKERS)}

# Tiny dimensions shared by every file.
N_EMBD, N_LAYER, N_HEAD, N_HEAD_KV, N_FF, N_CTX = 64, 2, 4, 2, 128, 2048
HEAD_DIM = N_EMBD // N_HEAD


@dataclass(frozen=True)
class ZooModel:
    """One zoo file and what its family's format promises.

    Attributes:
        path: the GGUF file.
        family: ``llama3``, ``mistral``, ``qwen2``, ``qwen3``, ``gemma2``, ``gemma3``, ``phi3``.
        arch: its ``general.architecture`` (``llama`` for llama3 and mistral).
        template: the chat template embedded in the file.
        bos_token: text of the BOS token (what the template writes first, or "").
        eos_token: text of the file's EOS token (``tokenizer.ggml.eos_token_id``).
        end_of_turn: the token that ends an assistant turn (EOS, or the EOT token where the
            family has one apart from EOS: gemma ``<end_of_turn>``, phi3 ``<|end|>``).
        generation_prompt: the text the template ends with when a reply is asked for.
        tools: the template renders ``tools`` (JSON schemas) and assistant ``tool_calls``.
        think: the family writes ``<think>...</think>`` reasoning before the answer.
        system: the template accepts a system message (gemma2 raises on one).
    """

    path: Path
    family: str
    arch: str
    template: str
    bos_token: str
    eos_token: str
    end_of_turn: str
    generation_prompt: str
    tools: bool = False
    think: bool = False
    system: bool = True

    @property
    def stop_tokens(self) -> tuple[str, ...]:
        """Tokens at which generation must end (EOS and the end-of-turn token)."""
        return tuple(dict.fromkeys((self.end_of_turn, self.eos_token)))


@dataclass(frozen=True)
class _Family:
    arch: MODEL_ARCH
    bos: str
    eos: str
    eot: str | None = None  # an end-of-turn token other than EOS
    generation_prompt: str = ""
    tools: bool = False
    think: bool = False
    system: bool = True


_SPECS = {
    "llama3": _Family(
        MODEL_ARCH.LLAMA,
        "<|begin_of_text|>",
        "<|eot_id|>",
        generation_prompt="<|start_header_id|>assistant<|end_header_id|>\n\n",
        tools=True,
    ),
    "mistral": _Family(MODEL_ARCH.LLAMA, "<s>", "</s>", generation_prompt="[/INST]", tools=True),
    "qwen2": _Family(
        MODEL_ARCH.QWEN2,
        "<|endoftext|>",
        "<|im_end|>",
        generation_prompt="<|im_start|>assistant\n",
        tools=True,
    ),
    "qwen3": _Family(
        MODEL_ARCH.QWEN3,
        "<|endoftext|>",
        "<|im_end|>",
        generation_prompt="<|im_start|>assistant\n",
        tools=True,
        think=True,
    ),
    "gemma2": _Family(
        MODEL_ARCH.GEMMA2,
        "<bos>",
        "<eos>",
        "<end_of_turn>",
        "<start_of_turn>model\n",
        system=False,
    ),
    "gemma3": _Family(
        MODEL_ARCH.GEMMA3, "<bos>", "<eos>", "<end_of_turn>", "<start_of_turn>model\n"
    ),
    # As in real Phi-3 files, EOS is <|endoftext|> and <|end|> ends a turn.
    "phi3": _Family(MODEL_ARCH.PHI3, "<s>", "<|endoftext|>", "<|end|>", "<|assistant|>\n"),
}


@dataclass(frozen=True)
class Vocab:
    """A byte-level BPE vocabulary: tokens, their types and the merges."""

    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str

    def id(self, token: str) -> int:
        """The id of ``token`` (which must be in the vocabulary)."""
        return self.tokens.index(token)


@cache
def base_vocab(tokenizer_gguf: Path) -> Vocab:
    """The vocabulary of ``tokenizer_gguf`` (read once per process: about 3 s for SmolLM2)."""
    reader = gguf.GGUFReader(str(tokenizer_gguf), "r")
    return Vocab(
        tokens=list(reader.fields["tokenizer.ggml.tokens"].contents()),
        types=[int(t) for t in reader.fields["tokenizer.ggml.token_type"].contents()],
        merges=list(reader.fields["tokenizer.ggml.merges"].contents()),
        pre=str(reader.fields["tokenizer.ggml.pre"].contents()),
    )


def family_vocab(base: Vocab, family: str) -> Vocab:
    """``base`` plus the template markers of ``family`` (only its own, as in a real file)."""
    tokens, types = list(base.tokens), list(base.types)
    added = [(t, gguf.TokenType.CONTROL) for t in _CONTROL.get(family, ())]
    added += [(t, gguf.TokenType.USER_DEFINED) for t in _USER_DEFINED.get(family, ())]
    for token, kind in added:
        if token not in tokens:
            tokens.append(token)
            types.append(int(kind))
    return Vocab(tokens, types, base.merges, base.pre)


class _Writer(gguf.GGUFWriter):
    """GGUFWriter packing long metadata arrays in one go (its per-item loop takes ~0.7 s)."""

    def _pack_val(
        self, val: Any, vtype: GGUFValueType, add_vtype: bool, sub_type: GGUFValueType | None = None
    ) -> bytes:
        if vtype != GGUFValueType.ARRAY or not isinstance(val, list) or len(val) < 1024:
            return super()._pack_val(val, vtype, add_vtype, sub_type)
        head = struct.pack("<I", vtype) if add_vtype else b""
        if all(type(v) is str for v in val):
            data = [v.encode("utf-8") for v in val]
            body = b"".join(struct.pack("<Q", len(d)) + d for d in data)
            return head + struct.pack("<IQ", GGUFValueType.STRING, len(val)) + body
        array = np.asarray(val, dtype="<i4")
        return head + struct.pack("<IQ", GGUFValueType.INT32, len(val)) + array.tobytes()


def template_source(family: str) -> str:
    """The chat template of ``family`` (from ``tests/zoo_templates/FAMILY.jinja``)."""
    return (TEMPLATES / f"{family}.jinja").read_text(encoding="utf-8").strip()


def _tensor(kind: MODEL_TENSOR, arch: MODEL_ARCH, layer: int | None = None) -> str:
    name = TENSOR_NAMES[kind]
    if name not in {TENSOR_NAMES[k] for k in MODEL_TENSORS[arch]}:  # FFN_NORM is FFN_PRE_NORM's
        raise ValueError(f"{arch.name} has no {name} tensor")
    return name.format(bid=layer) if layer is not None else name


def _weights(arch: MODEL_ARCH, n_vocab: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random tensors (numpy shape (out, in), as transformers stores them) for ``arch``."""
    t = MODEL_TENSOR
    kv = N_HEAD_KV * HEAD_DIM

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * 0.2).astype(np.float16)

    def norm(size: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(size)).astype(np.float32)

    embd = mat(n_vocab, N_EMBD)
    if arch in (MODEL_ARCH.GEMMA2, MODEL_ARCH.GEMMA3):
        # Gemma scales embeddings by sqrt(n_embd); unscaled random ones would swamp the
        # residual stream and every step would repeat the last token.
        embd = (embd / np.sqrt(N_EMBD)).astype(np.float16)
    out = {
        _tensor(t.TOKEN_EMBD, arch): embd,
        _tensor(t.OUTPUT_NORM, arch): norm(N_EMBD),
    }
    for i in range(N_LAYER):

        def add(kind: MODEL_TENSOR, value: np.ndarray, suffix: str = "weight", i: int = i) -> None:
            out[f"{_tensor(kind, arch, i)}.{suffix}"] = value

        add(t.ATTN_NORM, norm(N_EMBD))
        add(t.ATTN_OUT, mat(N_EMBD, N_HEAD * HEAD_DIM))
        add(t.FFN_DOWN, mat(N_EMBD, N_FF))
        if arch == MODEL_ARCH.PHI3:  # fused projections
            add(t.ATTN_QKV, mat(N_HEAD * HEAD_DIM + 2 * kv, N_EMBD))
            add(t.FFN_UP, mat(2 * N_FF, N_EMBD))
        else:
            add(t.ATTN_Q, mat(N_HEAD * HEAD_DIM, N_EMBD))
            add(t.ATTN_K, mat(kv, N_EMBD))
            add(t.ATTN_V, mat(kv, N_EMBD))
            add(t.FFN_GATE, mat(N_FF, N_EMBD))
            add(t.FFN_UP, mat(N_FF, N_EMBD))
        if arch == MODEL_ARCH.QWEN2:  # q/k/v biases
            add(t.ATTN_Q, norm(N_HEAD * HEAD_DIM) - 1, "bias")
            add(t.ATTN_K, norm(kv) - 1, "bias")
            add(t.ATTN_V, norm(kv) - 1, "bias")
        if arch in (MODEL_ARCH.QWEN3, MODEL_ARCH.GEMMA3):  # per-head q/k norms
            add(t.ATTN_Q_NORM, norm(HEAD_DIM))
            add(t.ATTN_K_NORM, norm(HEAD_DIM))
        if arch in (MODEL_ARCH.GEMMA2, MODEL_ARCH.GEMMA3):  # norms after attention and ffn too
            add(t.ATTN_POST_NORM, norm(N_EMBD))
            add(t.FFN_POST_NORM, norm(N_EMBD))
        add(t.FFN_NORM, norm(N_EMBD))
    if arch == MODEL_ARCH.PHI3:  # llama.cpp's phi3 has no tied output
        out[_tensor(t.OUTPUT, arch) + ".weight"] = mat(n_vocab, N_EMBD)
    return {k if "." in k else f"{k}.weight": v for k, v in out.items()}


def write_zoo_model(path: Path, family: str, base: Vocab, seed: int = 0) -> ZooModel:
    """Write one tiny random-weight GGUF of ``family`` to ``path`` (``base``: the vocabulary)."""
    spec = _SPECS[family]
    vocab = family_vocab(base, family)
    arch = MODEL_ARCH_NAMES[spec.arch]
    template = template_source(family)
    writer = _Writer(str(path), arch)
    writer.add_name(f"zoo-{family}")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(len(vocab.tokens))
    if spec.arch in (MODEL_ARCH.LLAMA, MODEL_ARCH.PHI3):
        writer.add_rope_dimension_count(HEAD_DIM)
    if spec.arch in (MODEL_ARCH.GEMMA2, MODEL_ARCH.GEMMA3):
        writer.add_key_length(HEAD_DIM)
        writer.add_value_length(HEAD_DIM)
        writer.add_sliding_window(64)
    if spec.arch == MODEL_ARCH.GEMMA2:
        writer.add_attn_logit_softcapping(50.0)
        writer.add_final_logit_softcapping(30.0)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(vocab.id(spec.bos))
    writer.add_eos_token_id(vocab.id(spec.eos))
    if spec.eot is not None:
        writer.add_eot_token_id(vocab.id(spec.eot))
    writer.add_pad_token_id(vocab.id(spec.eos))
    writer.add_add_bos_token(False)  # every template writes its BOS itself (or has none)
    writer.add_chat_template(template)
    rng = np.random.default_rng(seed + FAMILIES.index(family))
    for name, array in _weights(spec.arch, len(vocab.tokens), rng).items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return ZooModel(
        path=path,
        family=family,
        arch=arch,
        template=template,
        bos_token=spec.bos if "bos_token" in template else "",
        eos_token=spec.eos,
        end_of_turn=spec.eot or spec.eos,
        generation_prompt=spec.generation_prompt,
        tools=spec.tools,
        think=spec.think,
        system=spec.system,
    )


def build_zoo(
    directory: Path, tokenizer_gguf: Path | None = None, families: tuple[str, ...] = FAMILIES
) -> dict[str, ZooModel]:
    """Write one tiny GGUF per family into ``directory``; return ``{family: ZooModel}``.

    Args:
        directory: where the ``zoo-FAMILY.gguf`` files go (created if missing).
        tokenizer_gguf: the GGUF whose vocabulary is reused (default: the bundled SmolLM2).
        families: which families to build (default: all of ``FAMILIES``).
    """
    if tokenizer_gguf is None:
        from assistant.bundled import bundled_model_path

        tokenizer_gguf = bundled_model_path()
    directory.mkdir(parents=True, exist_ok=True)
    vocab = base_vocab(Path(tokenizer_gguf))
    models = {f: write_zoo_model(directory / f"zoo-{f}.gguf", f, vocab) for f in families}
    (directory / "zoo.json").write_text(
        json.dumps({f: _describe(m) for f, m in models.items()}, indent=2)
    )
    return models


def _describe(model: ZooModel) -> dict[str, Any]:
    return {"path": str(model.path), "arch": model.arch, "end_of_turn": model.end_of_turn}
