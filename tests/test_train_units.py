"""Training stages on tiny llama models built from a config (no download), and pure helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from training.evaluate import rouge_l  # noqa: E402
from training.export import lora_weights  # noqa: E402
from training.finetune import Collator, FinetuneConfig, lora_model, training_args  # noqa: E402
from training.gguf_write import gguf_name, permute_rows  # noqa: E402
from training.manifest import TrainingError  # noqa: E402
from training.prepare import (  # noqa: E402
    examples_from_conversations,
    parse_line,
    read_examples,
    scrub_pii,
)

torch.set_num_threads(1)


def tiny_llama(vocab: int = 64, seed: int = 0) -> LlamaForCausalLM:
    """A two-layer llama with grouped-query attention, randomly initialised."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "yo"},
                ]
            },
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        ),
        (
            {"instruction": "Translate", "input": "chat", "output": "cat"},
            [
                {"role": "user", "content": "Translate\n\nchat"},
                {"role": "assistant", "content": "cat"},
            ],
        ),
        (
            {"instruction": "Say hi", "output": "hi"},
            [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi"}],
        ),
    ],
)
def test_parse_line_accepts_chat_and_instruction_records(record: object, expected: object) -> None:
    assert parse_line(record) == expected


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ([], "expected a JSON object"),
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": "only a question"}]}, "last message"),
        ({"instruction": "x", "output": " "}, "'output' is empty"),
        ({"text": "free text"}, "expected 'messages'"),
    ],
)
def test_parse_line_rejects_malformed_records(record: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_line(record)


def test_read_examples_reports_bad_lines_with_numbers(tmp_path: Path) -> None:
    good = json.dumps({"instruction": "a", "output": "b"})
    path = tmp_path / "data.jsonl"
    path.write_text(f"{good}\nnot json\n\n{json.dumps({'messages': []})}\n{good}\n")
    examples, problems = read_examples([path])
    assert len(examples) == 2
    assert [p.split(": ")[0] for p in problems] == [f"{path}:2", f"{path}:4"]


def test_read_examples_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="no file at"):
        read_examples([tmp_path / "nope.jsonl"])


def test_scrub_pii_replaces_contact_details() -> None:
    text = (
        "Mail ada@example.org or call +44 20 7946 0958 from 192.168.1.20, card 4111 1111 1111 1111."
    )
    assert scrub_pii(text) == "Mail [EMAIL] or call [PHONE] from [IP], card [CARD]."
    assert scrub_pii("Version 3.11 ships in 2025.") == "Version 3.11 ships in 2025."


def test_examples_from_conversations_keep_answered_turns_only() -> None:
    convs = [
        [
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "unanswered"},
        ],
        [{"role": "user", "content": "never answered"}],
        [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "no question"}],
    ]
    assert examples_from_conversations(convs) == [
        [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    ]


def test_rouge_l_scores_longest_common_subsequence() -> None:
    assert rouge_l("the cat sat", "the cat sat") == 1.0
    assert rouge_l("", "x") == 0.0
    # LCS "the sat" = 2 of 3 and 2 of 4 tokens.
    assert rouge_l("the dog sat", "the cat has sat") == pytest.approx(
        2 * (2 / 3) * 0.5 / (2 / 3 + 0.5)
    )


def test_gguf_names_follow_llama_cpp() -> None:
    assert gguf_name("model.layers.7.self_attn.q_proj") == "blk.7.attn_q"
    assert gguf_name("model.layers.0.mlp.down_proj") == "blk.0.ffn_down"
    assert gguf_name("model.embed_tokens") == "token_embd"
    with pytest.raises(TrainingError):
        gguf_name("model.layers.0.self_attn.rotary_emb")


def test_permute_rows_interleaves_rotary_halves_per_head() -> None:
    rows = np.arange(8).reshape(8, 1)  # 2 heads of 4 rows: halves (0,1)(2,3) per head
    assert permute_rows(rows, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def _batches(n: int, vocab: int = 64) -> list[dict[str, list[int]]]:
    gen = torch.Generator().manual_seed(1)
    rows = []
    for _ in range(n):
        ids = torch.randint(0, vocab, (12,), generator=gen).tolist()
        rows.append({"input_ids": ids, "labels": [-100] * 6 + ids[6:]})
    return rows


def test_lora_training_changes_lora_weights_and_not_the_base(tmp_path: Path) -> None:
    from transformers import Trainer

    model = lora_model(tiny_llama(), FinetuneConfig(rank=4, alpha=8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = FinetuneConfig(rank=4, alpha=8, max_steps=3, batch_size=2, save_steps=100)
    Trainer(
        model=model,
        args=training_args(tmp_path, config, progress=False),
        train_dataset=_batches(6),
        data_collator=Collator(0),
    ).train()
    after = model.state_dict()
    lora_keys = [k for k in before if "lora_B" in k]
    base_keys = [k for k in before if "lora_" not in k]
    assert lora_keys and base_keys
    assert all(not torch.equal(before[k], after[k]) for k in lora_keys)
    assert all(torch.equal(before[k], after[k]) for k in base_keys)


def test_merge_equals_w_plus_scaled_ba() -> None:
    model = lora_model(tiny_llama(), FinetuneConfig(rank=4, alpha=8))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)  # B starts at zero: make the delta real
    lora = lora_weights(model)
    w = model.base_model.model.model.layers[1].self_attn.k_proj.base_layer.weight.detach().clone()
    a, b = lora["model.layers.1.self_attn.k_proj"]
    merged = model.merge_and_unload()
    got = merged.model.layers[1].self_attn.k_proj.weight.detach().numpy()
    np.testing.assert_allclose(got, w.numpy() + (8 / 4) * b @ a, rtol=1e-5, atol=1e-6)


def test_collator_pads_with_masked_labels() -> None:
    batch = Collator(pad_id=9)(
        [{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}, {"input_ids": [4], "labels": [4]}]
    )
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 9, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 2, 3], [4, -100, -100]]


def _hf_base(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-hf"
    tiny_llama().save_pretrained(folder)
    return folder


def test_qlora_nf4_trains_lora_weights_and_leaves_the_4bit_base(tmp_path: Path, home: Path) -> None:
    """QLoRA runs where CUDA is (bf16) and on CPU (bitsandbytes' CPU backend, fp32)."""
    from transformers import Trainer

    from training.base import load_model, resolve_base

    config = FinetuneConfig(rank=4, alpha=8, max_steps=3, batch_size=2, save_steps=100, qlora=True)
    base = resolve_base(str(_hf_base(tmp_path)), home)
    assert base.kind == "hf"
    model = lora_model(load_model(base, home, qlora=True), config)
    assert "Linear4bit" in {type(m).__name__ for m in model.modules()}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(
        model=model,
        args=training_args(tmp_path / "out", config, progress=False),
        train_dataset=_batches(6),
        data_collator=Collator(0),
    ).train()
    after = model.state_dict()
    lora_keys = [k for k in before if "lora_B" in k]
    packed = [k for k in before if k.endswith("proj.base_layer.weight")]
    assert lora_keys and packed and before[packed[0]].dtype == torch.uint8  # NF4, two per byte
    assert all(not torch.equal(before[k], after[k]) for k in lora_keys)
    assert all(torch.equal(before[k], after[k]) for k in packed)
