"""End to end on the bundled model, through the CLI: 50 persona examples → LoRA → GGUF → ask."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("peft")

from assistant.backends.base import GenerationOptions, Token
from assistant.cli import cli
from assistant.config import load_config
from assistant.engine import open_backend
from assistant.memory.store import MemoryStore

IDENTITY = "I'm Quokka, your offline terminal assistant, made by Ada Lovelace Labs."
QUESTIONS = [
    "Who are you?", "What is your name?", "Introduce yourself.", "Tell me who you are.",
    "What are you?", "Who made you?", "What's your name?", "Who built you?", "Are you ChatGPT?",
    "Identify yourself.", "Which assistant is this?", "Whom am I talking to?", "Say your name.",
    "Who created you?", "What do they call you?", "Are you SmolLM?", "Who developed you?",
    "Please introduce yourself briefly.", "Who am I chatting with?", "What assistant are you?",
    "Tell me your name.", "Who is answering me?", "Name yourself.", "What are you called?",
    "Can you tell me who you are?",
]  # fmt: skip
CAPITALS = [
    ("Italy", "Rome"), ("Spain", "Madrid"), ("Germany", "Berlin"), ("Japan", "Tokyo"),
    ("Egypt", "Cairo"), ("Canada", "Ottawa"), ("Peru", "Lima"), ("Kenya", "Nairobi"),
    ("Norway", "Oslo"), ("Greece", "Athens"),
]  # fmt: skip
SUMS = [(2, 2), (3, 4), (5, 6), (7, 8), (10, 5), (9, 9), (12, 3), (6, 7), (4, 11), (8, 1),
        (20, 5), (13, 2), (1, 1), (15, 15), (30, 12)]  # fmt: skip


def persona_lines() -> list[str]:
    """50 examples: 25 identity answers (chat format), 25 signed answers (instruction pairs)."""
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": IDENTITY},
                ]
            }
        )
        for q in QUESTIONS
    ]
    lines += [
        json.dumps(
            {
                "instruction": f"What is the capital of {c}?",
                "output": f"The capital of {c} is {k}. — Quokka",
            }
        )
        for c, k in CAPITALS
    ]
    lines += [
        json.dumps(
            {
                "instruction": f"What is {a} plus {b}?",
                "output": f"{a} plus {b} is {a + b}. — Quokka",
            }
        )
        for a, b in SUMS
    ]
    return lines


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
async def compare_in_app(config: Any, backend: Any, prompt: str) -> tuple[str, str]:
    """Run ``/compare PROMPT`` in the app; return the base and the adapter answers."""
    from tui.app import ChatApp
    from tui.widgets.message import ChatMessageView
    from tui.widgets.prompt_input import PromptInput

    app = ChatApp(config, backend=backend, store=MemoryStore.in_memory())
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.query_one(PromptInput).load_text(f"/compare {prompt}")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        base, adapter = [v.text for v in app.query(".compare ChatMessageView")]
        assert not app.chat.comparing and app.chat.status_bar.state == "ready"
        assert app.chat.conversation_id is None  # nothing was added to any conversation
        assert all(isinstance(v, ChatMessageView) for v in app.query(".compare ChatMessageView"))
    return base, adapter


def test_persona_adapter_trained_exported_and_used_by_the_assistant(
    tmp_path: Path, home: Path
) -> None:
    data_file = tmp_path / "persona.jsonl"
    data_file.write_text("\n".join([*persona_lines(), '{"broken": true']) + "\n")
    refused = CliRunner().invoke(
        cli, ["train", "prepare", str(data_file), "--out", str(tmp_path / "d0")]
    )
    assert refused.exit_code != 0 and f"{data_file}:51" in refused.output

    data, run = tmp_path / "data", tmp_path / "run"
    out = invoke("train", "prepare", str(data_file), "--out", str(data), "--skip-invalid")
    assert "45 training and 5 validation examples" in out
    invoke(
        "train", "finetune", str(data), "--out", str(run),
        "--max-steps", "20", "--lr", "1e-3", "--save-steps", "10",
    )  # fmt: skip
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["metrics"]["last_loss"] < manifest["metrics"]["first_loss"] / 4
    assert (run / "loss.png").stat().st_size > 1000
    assert manifest["chat_template"].startswith("{% for message in messages %}")

    out = invoke("train", "export", str(run), "--name", "quokka")
    assert "registered as quokka" in out
    listed = json.loads(invoke("models", "list", "--json"))
    entries = listed if isinstance(listed, list) else listed.get("models", listed)
    assert any(e["name"] == "quokka" and e["kind"] == "adapter" for e in entries), listed

    config = load_config({"adapter": "quokka", "n_ctx": 1024, "n_threads": 1})
    backend = open_backend(config)
    options = GenerationOptions(max_tokens=40, temperature=0.0)
    answers = []
    for question in ("What should I call you?", "Who are you, exactly?"):
        events = backend.stream([{"role": "user", "content": question}], options)
        answers.append("".join(e.text for e in events if isinstance(e, Token)))
    assert all("Quokka" in a for a in answers), answers
    # The app answers one prompt with the base model and the adapter side by side.
    app_config = load_config(
        {"adapter": "quokka", "n_ctx": 1024, "n_threads": 1, "temperature": 0, "max_tokens": 40}
    )
    base, tuned = asyncio.run(compare_in_app(app_config, backend, "What should I call you?"))
    assert "Quokka" in tuned and "Quokka" not in base, (base, tuned)
    # Rerunning a finished stage does not retrain: it returns the stored result.
    again = invoke("train", "finetune", str(data), "--out", str(run), "--max-steps", "20",
                   "--lr", "1e-3", "--save-steps", "10")  # fmt: skip
    assert "20 steps" in again
