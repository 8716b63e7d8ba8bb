"""A tiny llama with a word-level tokenizer and a chat template (preference and probe tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

WORDS = (  # noqa: SIM905 (one line of words reads better)
    "<pad> <s> </s> <unk> <|im_start|> <|im_end|> system user assistant "
    "yes no maybe hello hi what is the capital of france paris two plus four "
    "short long answer please say one sentence a very and then more words here "
    "python was created by guido in netherlands language abc"
).split()
TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> "
    "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


def tiny_chat_model(root: Path, seed: int = 0) -> Path:
    """Save a 1-layer llama and its tokenizer (vocab of ``WORDS``) under ``root/tiny``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = root / "tiny"
    vocab = {w: i for i, w in enumerate(WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<pad>"],
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def pair_lines() -> list[dict[str, Any]]:
    """Eight pairs teaching 'yes' over 'no' (string and message-list prompts)."""
    prompts = ["hello", "what is two plus two", "say one sentence", "hi"]
    lines: list[dict[str, Any]] = []
    for i, prompt in enumerate(prompts * 2):
        shown: Any = prompt if i % 2 else [{"role": "user", "content": prompt}]
        lines.append({"prompt": shown, "chosen": "yes short answer", "rejected": "no long answer"})
    return lines
