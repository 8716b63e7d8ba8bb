"""Preference tuning: pair files and stored pairs → data, DPO / ORPO on tiny models, evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("trl")

from tests.test_cli import assistant  # noqa: E402
from tests.tiny_preferences import pair_lines, tiny_chat_model  # noqa: E402
from training.manifest import TrainingError  # noqa: E402
from training.preferences import (  # noqa: E402
    Pair,
    parse_pair,
    prepare_preferences,
    read_pairs,
    sequence_logps,
)

torch.set_num_threads(1)
HP: dict[str, Any] = {"rank": 4, "alpha": 8, "learning_rate": 1e-2, "batch_size": 2}


@pytest.mark.parametrize(
    ("record", "prompt"),
    [
        ({"prompt": "hi", "chosen": "yes", "rejected": "no"}, [{"role": "user", "content": "hi"}]),
        (
            {
                "prompt": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                ],
                "chosen": [{"role": "assistant", "content": "yes"}],
                "rejected": [{"role": "assistant", "content": "no"}],
            },
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        ),
    ],
)
def test_parse_pair_takes_trl_string_and_conversational_records(
    record: dict[str, Any], prompt: list[dict[str, str]]
) -> None:
    assert parse_pair(record) == (prompt, "yes", "no")


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ([], "expected a JSON object"),
        ({"prompt": "hi", "chosen": "yes"}, "missing 'rejected'"),
        ({"prompt": "", "chosen": "a", "rejected": "b"}, "'prompt' is empty"),
        ({"prompt": 3, "chosen": "a", "rejected": "b"}, "'prompt' must be a string"),
        ({"prompt": "hi", "chosen": "a", "rejected": "a"}, "the same text"),
        ({"prompt": "hi", "chosen": " ", "rejected": "b"}, "'chosen' is empty"),
        ({"prompt": "hi", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"},
         "one assistant"),
        (
            {"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
            | {"chosen": "a", "rejected": "b"},
            "must end with a user",
        ),
        ({"prompt": [{"role": "robot", "content": "q"}], "chosen": "a", "rejected": "b"}, "role"),
    ],
)  # fmt: skip
def test_parse_pair_refuses_malformed_records(record: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_pair(record)


def test_read_pairs_reports_bad_lines_by_number(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    good = json.dumps({"prompt": "hi", "chosen": "yes", "rejected": "no"})
    path.write_text(f"{good}\n{{not json\n\n{json.dumps({'prompt': 'hi'})}\n{good}\n")
    pairs, problems = read_pairs([path])
    assert [p.group for p in pairs] == [f"{path}:1", f"{path}:5"]
    assert [p.split(": ")[0] for p in problems] == [f"{path}:2", f"{path}:4"]
    assert "missing 'chosen'" in problems[1]


def test_prepare_preferences_cli_lists_bad_lines_like_sft_prepare(
    tmp_path: Path, home: Path
) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "hi", "chosen": "yes", "rejected": "yes"}) + "\n")
    one = assistant(
        "train", "prepare", "--preferences", str(path), "--out", str(tmp_path / "d"), home=home
    )
    assert one.returncode != 0
    assert f"{path}:1: 'chosen' and 'rejected' are the same text; fix the line" in one.stderr
    path.write_text("[]\n" + json.dumps({"prompt": "hi", "chosen": "a", "rejected": "b"}) + "\n{\n")
    two = assistant(
        "train", "prepare", "--preferences", str(path), "--out", str(tmp_path / "d"), home=home
    )
    assert two.returncode != 0
    assert f"invalid: {path}:1: expected a JSON object" in two.stderr
    assert f"invalid: {path}:3:" in two.stderr and "2 invalid lines" in two.stderr
    assert not (tmp_path / "d").exists()


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, Any]:
    """A tiny chat llama (HF folder with a tokenizer) and its 8 pairs prepared."""
    from training.base import load_tokenizer, resolve_base

    tiny_chat_model(tmp_path)
    home = tmp_path / "home"
    base = resolve_base(str(tmp_path / "tiny"), home)
    tokenizer = load_tokenizer(base, home)
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in pair_lines()))
    pairs, problems = read_pairs([path])
    assert not problems
    data = tmp_path / "data"
    prepare_preferences(pairs, data, tokenizer, base.as_dict(), val_fraction=0.25)
    return {"base": base, "home": home, "data": data, "tokenizer": tokenizer, "root": tmp_path}


def _rows(data: Path, split: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (data / f"{split}.jsonl").read_text().splitlines()]


def test_prepare_renders_pairs_with_the_chat_template_and_holds_out_whole_groups(
    tiny: dict[str, Any], tmp_path: Path
) -> None:
    tokenizer = tiny["tokenizer"]
    train, val = _rows(tiny["data"], "train"), _rows(tiny["data"], "val")
    assert (len(train), len(val)) == (6, 2)
    row = train[0]
    text = tokenizer.decode(row["prompt_ids"] + row["chosen_ids"])
    assert text.startswith("<|im_start|> user ") and text.endswith("yes short answer <|im_end|>")
    assert tokenizer.decode(row["rejected_ids"]) == "no long answer <|im_end|>"
    # a conversation with three pairs goes wholly to one side of the split
    pairs = [
        Pair([{"role": "user", "content": f"hi {i}"}], "yes", "no", "compare", f"c{i % 3}")
        for i in range(9)
    ]
    prepare_preferences(pairs, tmp_path / "g", tokenizer, tiny["base"].as_dict(), val_fraction=0.34)
    held = {r["group"] for r in _rows(tmp_path / "g", "val")}
    trained = {r["group"] for r in _rows(tmp_path / "g", "train")}
    assert len(held) == 1 and not held & trained
    assert sum(r["group"] in held for r in _rows(tmp_path / "g", "val")) == 3


def _run(tiny: dict[str, Any], method: str, name: str, **extra: Any) -> dict[str, Any]:
    from training.finetune import FinetuneConfig, finetune

    config = FinetuneConfig(method=method, max_steps=12, save_steps=6, **HP | extra)
    return finetune(tiny["data"], tiny["root"] / name, tiny["base"], tiny["home"], config, False)


@pytest.mark.parametrize("method", ["dpo", "orpo"])
def test_preference_training_changes_lora_weights_not_the_base_and_prefers_chosen(
    tiny: dict[str, Any], method: str
) -> None:
    from safetensors.torch import load_file

    from training.finetune import load_adapter

    manifest = _run(tiny, method, method)
    assert manifest["method"] == method and manifest["metrics"]["steps"] == 12
    assert manifest["preference_log"] and (tiny["root"] / method / "loss.png").is_file()
    model = load_adapter(tiny["root"] / method, tiny["home"], tiny["base"])
    original = load_file(str(tiny["root"] / "tiny" / "model.safetensors"))
    state = {k.removeprefix("base_model.model."): v for k, v in model.state_dict().items()}
    for name, weight in original.items():
        key = name.replace(".weight", ".base_layer.weight")
        assert torch.equal(state.get(key, state.get(name)), weight), name
    lora_b = [v for k, v in state.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero
    train = _rows(tiny["data"], "train")
    with model.disable_adapter():
        before = sequence_logps(model, train)
    after = sequence_logps(model, train)
    for (bc, br), (ac, ar) in zip(before, after, strict=True):
        assert ac - ar > bc - br + 0.5  # chosen rose relative to rejected, on every pair


def test_dpo_starts_from_an_sft_adapter_which_is_also_its_reference(tiny: dict[str, Any]) -> None:
    from safetensors.torch import load_file

    from training.finetune import FinetuneConfig, finetune
    from training.prepare import prepare

    examples = [[{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]] * 4
    sft_data = tiny["root"] / "sft-data"
    prepare(examples, sft_data, tiny["tokenizer"], tiny["base"].as_dict())
    sft = tiny["root"] / "sft"
    config = FinetuneConfig(max_steps=4, save_steps=4, **HP)
    finetune(sft_data, sft, tiny["base"], tiny["home"], config, False)
    with pytest.raises(TrainingError, match="holds preference pairs; train them with --method dpo"):
        finetune(tiny["data"], tiny["root"] / "x", tiny["base"], tiny["home"], config, False)
    with pytest.raises(TrainingError, match="--method dpo needs preference pairs"):
        _run({**tiny, "data": sft_data}, "dpo", "y")
    manifest = _run(tiny, "dpo", "dpo-from-sft", from_adapter=str(sft))
    assert manifest["from_adapter"]["dir"] == str(sft.resolve())
    start = load_file(str(sft / "adapter" / "adapter_model.safetensors"))
    trained = load_file(
        str(tiny["root"] / "dpo-from-sft" / "adapter" / "adapter_model.safetensors")
    )
    assert sorted(trained) == sorted(start)  # the frozen "ref" copy is not shipped
    assert any(not torch.equal(trained[k], start[k]) for k in start)


def test_a_killed_dpo_run_resumes_from_its_checkpoint(tiny: dict[str, Any]) -> None:
    import shutil

    first = _run(tiny, "dpo", "resume")
    run = tiny["root"] / "resume"
    for name in ("manifest.json", "adapter", "loss.png"):  # as if killed after checkpoint-12
        shutil.rmtree(run / name) if (run / name).is_dir() else (run / name).unlink()
    shutil.rmtree(run / "checkpoints" / "checkpoint-12")
    again = _run(tiny, "dpo", "resume")
    assert again["resumed"] is True and [s for s, _ in again["losses"]] == list(range(1, 13))
    assert again["losses"][-1][1] == pytest.approx(first["losses"][-1][1], rel=1e-4)


def test_evaluate_reports_preference_accuracy_margin_personal_and_forgetting(
    tiny: dict[str, Any], tmp_path: Path
) -> None:
    from training.base import resolve_base
    from training.evaluate import evaluate, table

    # held-out pairs from the user's own store count as personal; file pairs do not
    pairs = [
        Pair([{"role": "user", "content": p}], "yes short answer", "no long answer", src, grp)
        for p, src, grp in [
            ("hello", "compare", "c1"), ("hi", "compare", "c1"), ("say one sentence", "file", "f1"),
            ("what is the capital of france", "ratings", "c2"), ("hello hi", "file", "f2"),
        ] * 2
    ]  # fmt: skip
    data = tmp_path / "own"
    base = resolve_base(str(tiny["root"] / "tiny"), tiny["home"])
    prepare_preferences(pairs, data, tiny["tokenizer"], base.as_dict(), val_fraction=0.4)
    _run({**tiny, "data": data}, "dpo", "eval")
    result = evaluate(tiny["root"] / "eval", tiny["home"], samples=2, new_tokens=4)
    pref = result["preference"]
    assert pref["pairs"] == len(_rows(data, "val"))
    assert pref["adapter"]["accuracy"] == 1.0 and pref["reward_margin"] > 0
    assert pref["adapter"]["logp_margin"] > pref["base"]["logp_margin"]
    own = [r for r in _rows(data, "val") if r["source"] != "file"]
    assert result["personal"]["examples"] == len(own) > 0
    assert result["personal"]["adapter"]["accuracy"] == 1.0
    manifest = json.loads((tiny["root"] / "eval" / "manifest.json").read_text())
    assert manifest["forgetting"] == result["forgetting"] == manifest["evaluation"]["forgetting"]
    shown = table(result)
    assert "pref_accuracy" in shown and "general_ppl" in shown and "held-out pairs" in shown


def test_prepare_preferences_from_the_store_uses_marked_conversations_only(
    home: Path, tmp_path: Path
) -> None:
    from assistant.config import load_config
    from assistant.memory.factory import open_store
    from assistant.memory.preferences import add_pair

    store = open_store(load_config())
    kept = store.create_conversation(strategy="buffer", title="kept")
    private = store.create_conversation(strategy="buffer", title="private")
    for c, word in ((kept, "Short."), (private, "SECRET")):
        add_pair(store, c.id, [{"role": "user", "content": "Say hi"}], word, "A long reply.")
    store.close()
    out = tmp_path / "d"
    refused = assistant("train", "prepare", "--preferences", "--out", str(out), home=home)
    assert (
        refused.returncode != 0 and "no preference pairs in conversations marked" in refused.stderr
    )
    assert assistant("history", "mark", kept.id, home=home).returncode == 0
    done = assistant("train", "prepare", "--preferences", "--out", str(out), home=home)
    assert done.returncode == 0, done.stderr
    rows = _rows(out, "train") + _rows(out, "val")
    assert [(r["chosen"], r["source"], r["group"]) for r in rows] == [
        ("Short.", "compare", kept.id)
    ]
    assert "SECRET" not in "".join(p.read_text() for p in out.glob("*.jsonl"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "preferences" and manifest["counts"]["sources"] == {"compare": 1}


async def test_prefer_after_compare_stores_the_pair_in_the_open_conversation() -> None:
    import dataclasses

    from assistant.backends.scripted import ScriptedBackend
    from assistant.config import load_config
    from assistant.memory.preferences import preference_pairs
    from assistant.memory.store import MemoryStore
    from tests.test_tui_app import settle, type_and_send
    from tui.app import ChatApp

    tuned = ScriptedBackend(["Hello.", "Arr, I be the adapter."])
    base = ScriptedBackend(["I am the base model."])
    store = MemoryStore.in_memory()
    config = dataclasses.replace(load_config(), adapter="pirate", temperature=0.0)
    app = ChatApp(
        config,
        backend=tuned,
        store=store,
        backend_factory=lambda c: base if c.adapter is None else tuned,
    )
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/prefer adapter")  # nothing compared yet: refused
        await settle(app, pilot)
        assert any("compare first" in str(n.message) for n in app._notifications)
        await type_and_send(pilot, "hi")
        await settle(app, pilot)
        await type_and_send(pilot, "/compare Who are you?")
        await settle(app, pilot)
        await type_and_send(pilot, "/prefer adapter")
        await settle(app, pilot)
        notes = [str(n.message) for n in app._notifications]
        assert any(
            "stored: the adapter answer preferred; mark the conversation" in n for n in notes
        )
        cid = app.chat.conversation_id
        assert cid is not None
        pairs = preference_pairs(store, marked_only=False)
        assert [(p.conversation_id, p.chosen, p.rejected, p.source) for p in pairs] == [
            (cid, "Arr, I be the adapter.", "I am the base model.", "compare")
        ]
        assert pairs[0].prompt == [{"role": "user", "content": "Who are you?"}]
        assert preference_pairs(store) == []  # not marked for training: not used
        await type_and_send(pilot, "/prefer base")  # one pair a comparison
        await settle(app, pilot)
        assert len(preference_pairs(store, marked_only=False)) == 1


def test_sft_personal_evaluation_scores_held_out_marked_conversations(tiny: dict[str, Any]) -> None:
    from training.evaluate import evaluate, table
    from training.finetune import FinetuneConfig, finetune
    from training.prepare import prepare

    def chat(q: str, a: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]

    examples = [chat("hello", "hi")] * 6 + [chat("say one sentence", "yes"), chat("hi", "hello")]
    owners = [None] * 6 + ["conv-a", "conv-b"]
    data = tiny["root"] / "sft-own"
    manifest = prepare(
        examples, data, tiny["tokenizer"], tiny["base"].as_dict(), conversations=owners
    )
    val = _rows(data, "val")
    assert manifest["counts"]["personal_val"] == 1  # one of the two conversations held out
    assert sum(1 for r in _rows(data, "train") if r.get("conversation_id")) == 1
    config = FinetuneConfig(max_steps=2, save_steps=2, **HP)
    finetune(data, tiny["root"] / "sft-own-run", tiny["base"], tiny["home"], config, False)
    result = evaluate(tiny["root"] / "sft-own-run", tiny["home"], samples=1, new_tokens=2)
    personal = result["personal"]
    assert personal["kind"] == "replies" and personal["examples"] == 1
    assert [r["conversation_id"] for r in val if r.get("conversation_id")] in (
        ["conv-a"],
        ["conv-b"],
    )
    assert personal["adapter"]["mean_logprob"] != personal["base"]["mean_logprob"]
    assert "your 1 held-out conversations" in table(result)


def test_dpo_trains_on_an_nf4_base_with_qlora(tiny: dict[str, Any]) -> None:
    from training.finetune import load_adapter

    manifest = _run(tiny, "dpo", "qlora", qlora=True)
    assert manifest["hyperparameters"]["qlora"] is True
    model = load_adapter(tiny["root"] / "qlora", tiny["home"], tiny["base"])  # the fp32 base
    train = _rows(tiny["data"], "train")
    with model.disable_adapter():
        before = sequence_logps(model, train)
    after = sequence_logps(model, train)
    assert all(ac - ar > bc - br for (bc, br), (ac, ar) in zip(before, after, strict=True))
