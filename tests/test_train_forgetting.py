"""The forgetting probe: general text and knowledge, base vs adapter, in the manifest and export."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from tests.tiny_preferences import tiny_chat_model  # noqa: E402
from training.forgetting import KNOWLEDGE, THRESHOLDS, answered, general_text, judge  # noqa: E402
from training.manifest import TrainingError, read_manifest, write_manifest  # noqa: E402

torch.set_num_threads(1)


def test_general_text_is_pythons_own_licence_prose() -> None:
    text, source = general_text()
    assert source["path"] == str(Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt")
    assert text.startswith("A. HISTORY OF THE SOFTWARE")
    assert "Python was created in the early 1990s by Guido van Rossum" in text
    assert source["characters"] == len(text) > 5000
    assert len(KNOWLEDGE) == 20


@pytest.mark.parametrize(
    ("reply", "answers", "hit"),
    [
        ("The capital of France is Paris.", ("paris",), True),
        ("PARIS", ("paris",), True),
        ("Parisian food is great", ("paris",), False),  # a whole word, not a prefix
        ("2 + 2 = 4", ("4", "four"), True),
        ("It is 14.", ("4", "four"), False),
        ("Plants take in carbon dioxide.", ("carbon dioxide", "co2"), True),
        ("I don't know.", ("honey",), False),
    ],
)
def test_knowledge_answers_match_whole_words(reply: str, answers: tuple, hit: bool) -> None:
    assert answered(reply, answers) is hit


def _result(base: tuple[float, float], adapter: tuple[float, float]) -> dict[str, Any]:
    return {
        "base": {"text_perplexity": base[0], "knowledge": base[1]},
        "adapter": {"text_perplexity": adapter[0], "knowledge": adapter[1]},
    }


def test_judge_flags_only_changes_beyond_the_thresholds() -> None:
    assert THRESHOLDS == {"perplexity_ratio": 1.10, "knowledge_drop": 0.10}
    assert not judge(_result((20.0, 0.6), (21.9, 0.5)))["worse"]  # x1.095, -2 of 20
    assert not judge(_result((20.0, 0.6), (15.0, 0.9)))["worse"]  # better is fine
    ppl = judge(_result((20.0, 0.6), (22.4, 0.6)))
    assert ppl["worse"] and ppl["reasons"] == ["general-text perplexity x1.12"]
    known = judge(_result((20.0, 0.6), (20.0, 0.45)))
    assert known["worse"] and known["reasons"] == ["general knowledge 60% → 45%"]
    assert known["change"]["knowledge_drop"] == pytest.approx(0.15)


@pytest.fixture
def run(tmp_path: Path) -> dict[str, Any]:
    """A finished 2-step SFT run of a tiny chat llama."""
    from training.base import load_tokenizer, resolve_base
    from training.finetune import FinetuneConfig, finetune
    from training.prepare import prepare

    tiny_chat_model(tmp_path)
    home = tmp_path / "home"
    base = resolve_base(str(tmp_path / "tiny"), home)
    examples = [[{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]] * 4
    prepare(examples, tmp_path / "data", load_tokenizer(base, home), base.as_dict())
    config = FinetuneConfig(rank=2, alpha=4, max_steps=2, batch_size=2, save_steps=2)
    finetune(tmp_path / "data", tmp_path / "run", base, home, config, False)
    return {"dir": tmp_path / "run", "home": home}


def test_the_probe_lands_in_the_manifest_and_the_evaluate_table(run: dict[str, Any]) -> None:
    from training.evaluate import evaluate, table
    from training.forgetting import probe_run

    result = evaluate(run["dir"], run["home"], samples=1, new_tokens=2)
    probe = read_manifest(run["dir"], "finetune")["forgetting"]
    assert probe == result["forgetting"] == probe_run(run["dir"], run["home"])
    for side in ("base", "adapter"):
        assert probe[side]["text_perplexity"] > 1.0 and 0.0 <= probe[side]["knowledge"] <= 1.0
        assert len(probe[f"{side}_answered"]) == 20
    ratio = probe["adapter"]["text_perplexity"] / probe["base"]["text_perplexity"]
    assert probe["change"]["perplexity_ratio"] == pytest.approx(ratio)
    assert probe["source"]["path"].endswith("LICENSE.txt")
    shown = table(result)
    assert "forgetting probe" in shown and "general_ppl" in shown and "knowledge" in shown


def _with_probe(run: dict[str, Any], adapter_ppl: float) -> None:
    """Give the run a probe whose adapter perplexity is ``adapter_ppl`` (base: 10)."""
    result = _result((10.0, 0.5), (adapter_ppl, 0.5))
    manifest = read_manifest(run["dir"], "finetune")
    write_manifest(run["dir"], manifest | {"forgetting": result | judge(result)})


def test_export_warns_and_strict_refuses_when_the_probe_got_worse(run: dict[str, Any]) -> None:
    from training.export import export

    _with_probe(run, 13.0)
    with pytest.raises(TrainingError, match=r"refused under --strict: forgetting probe.*x1\.30"):
        export(run["dir"], "me", run["home"], strict=True)
    said: list[str] = []
    # without --strict it warns and goes on (to the next check: this tiny base is no GGUF)
    with pytest.raises(TrainingError, match="GGUF export needs a GGUF base"):
        export(run["dir"], "me", run["home"], notify=said.append)
    assert len(said) == 1 and said[0].startswith("warning: forgetting probe") and "x1.30" in said[0]
    _with_probe(run, 10.5)
    said.clear()
    with pytest.raises(TrainingError, match="GGUF export needs a GGUF base"):
        export(run["dir"], "me", run["home"], strict=True, notify=said.append)
    assert said == []


def test_export_cli_has_strict(run: dict[str, Any], home: Path) -> None:
    from tests.test_cli import assistant

    _with_probe(run, 13.0)
    done = assistant("train", "export", str(run["dir"]), "--name", "me", "--strict", home=home)
    assert done.returncode != 0
    assert "export refused under --strict: forgetting probe" in done.stderr
    assert json.loads((run["dir"] / "manifest.json").read_text())["forgetting"]["worse"] is True
