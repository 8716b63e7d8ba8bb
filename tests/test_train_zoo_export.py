"""Export beyond llama: a Qwen2 tiny base trains and exports with parity; every mapped
architecture writes a GGUF llama.cpp runs like torch; a mis-mapped tensor is refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

import gguf  # noqa: E402

import training.gguf_write as gguf_write  # noqa: E402
from assistant.gguf_info import read_gguf_info  # noqa: E402
from assistant.registry import ModelRegistry  # noqa: E402
from tests.zoo import ZooModel  # noqa: E402
from training.base import load_model, load_tokenizer, resolve_base  # noqa: E402
from training.export import export  # noqa: E402
from training.finetune import FinetuneConfig, finetune  # noqa: E402
from training.gguf_write import special_tokens, write_model_gguf  # noqa: E402
from training.manifest import TrainingError  # noqa: E402
from training.parity import check_parity  # noqa: E402
from training.prepare import prepare  # noqa: E402

torch.set_num_threads(1)
TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    rms_norm_eps=1e-6,
    rope_theta=10000.0,
)
# Per HF model_type: the zoo family whose tokenizer and template the export carries, and
# the config fields the architecture needs at this size.
ARCHS: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("llama3", {"tie_word_embeddings": True}),
    "mistral": ("mistral", {"tie_word_embeddings": True, "sliding_window": None}),
    "qwen3": ("qwen3", {"tie_word_embeddings": True, "head_dim": 16}),
    "gemma2": (
        "gemma2",
        {"head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 512},
    ),
    "phi3": ("phi3", {"tie_word_embeddings": False}),
}


def n_tokens(path: Path) -> int:
    return len(gguf.GGUFReader(str(path), "r").fields["tokenizer.ggml.tokens"].data)


def random_model(model_type: str, vocab: int, **extra: Any) -> Any:
    """A tiny model of ``model_type`` with wide random weights (no near-ties for top-1)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, vocab_size=vocab, **TINY, **extra)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
            else:  # norms and biases: not all ones / zeros, so a wrong mapping shows
                p.add_(torch.randn_like(p) * 0.1)
    return model


def state_of(model: Any) -> dict[str, Any]:
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def qwen(zoo: dict[str, ZooModel], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A Qwen2 tiny base (the zoo's Qwen 2.5 tokenizer and template) as GGUF and a LoRA run."""
    root = tmp_path_factory.mktemp("qwen2")
    home = root / "home"
    template = zoo["qwen2"].path
    model = random_model("qwen2", n_tokens(template), tie_word_embeddings=True)
    path = write_model_gguf(
        state_of(model), model.config, template, root / "tiny-qwen2.gguf", "f32", name="tq"
    )
    ModelRegistry(home).add(path, name="tiny-qwen2")
    base = resolve_base("tiny-qwen2", home)
    tokenizer = load_tokenizer(base, home)
    examples = [
        [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": "Qwen."}]
        for i in range(8)
    ]
    prepare(examples, root / "data", tokenizer, base.as_dict(), max_length=128)
    config = FinetuneConfig(rank=4, alpha=8, max_steps=3, batch_size=4, learning_rate=5e-3)
    finetune(root / "data", root / "run", base, home, config, progress=False)
    return {"run": root / "run", "home": home, "model": model, "base": base, "tok": tokenizer}


def test_the_qwen2_gguf_reads_back_into_transformers_with_the_same_weights(
    qwen: dict[str, Any], zoo: dict[str, ZooModel]
) -> None:
    info = read_gguf_info(qwen["base"].path)
    assert info.architecture == "qwen2"
    assert special_tokens(qwen["base"].path)["chat_template"] == zoo["qwen2"].template
    loaded = load_model(qwen["base"], qwen["home"]).state_dict()
    original = qwen["model"].state_dict()
    assert {k for k in original if k.endswith(".bias")} <= set(loaded)  # q/k/v biases kept
    for name, tensor in original.items():
        assert torch.equal(loaded[name], tensor), name


def test_a_qwen2_lora_trains_and_exports_with_parity(qwen: dict[str, Any]) -> None:
    run, home = qwen["run"], qwen["home"]
    manifest = export(run, "qwen-lora", home, "lora")
    parity = manifest["parity"]
    assert parity["top1"] >= 0.98 and parity["passed"], parity
    info = read_gguf_info(Path(manifest["file"]))
    assert (info.architecture, info.is_lora) == ("qwen2", True)
    entry = ModelRegistry(home).get("qwen-lora")
    assert (entry.kind, entry.base) == ("adapter", "tiny-qwen2")


def test_a_qwen2_merged_export_passes_parity_and_keeps_the_tool_template(
    qwen: dict[str, Any], zoo: dict[str, ZooModel]
) -> None:
    manifest = export(qwen["run"], "qwen-merged", qwen["home"], "merged", "f16")
    assert manifest["parity"]["top1"] >= 0.95, manifest["parity"]
    exported = Path(manifest["file"])
    assert read_gguf_info(exported).architecture == "qwen2"
    tokens = special_tokens(exported)
    assert tokens["chat_template"] == zoo["qwen2"].template and "<tools>" in tokens["chat_template"]


def _swap_gate_and_up(real: Any) -> Any:
    def mismapped(module: str, model_type: str = "llama", n_blocks: int = 256) -> str:
        name = str(real(module, model_type, n_blocks))
        swap = {"blk.0.ffn_gate": "blk.0.ffn_up", "blk.0.ffn_up": "blk.0.ffn_gate"}
        return swap.get(name, name)

    return mismapped


def test_a_mis_mapped_tensor_fails_parity_and_the_export_is_refused(
    qwen: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gate and up projections have the same shape: llama.cpp loads the file, parity must not."""
    run, home = qwen["run"], qwen["home"]
    monkeypatch.setattr(gguf_write, "gguf_name", _swap_gate_and_up(gguf_write.gguf_name))
    with pytest.raises(TrainingError, match="export refused: top-1 agreement"):
        export(run, "qwen-wrong", home, "merged", "f16")
    assert not (home / "exports" / "qwen-wrong").exists()
    assert "qwen-wrong" not in {e.name for e in ModelRegistry(home).list()}
    assert (run / "parity-failed-qwen-wrong.json").is_file()


def test_llamas_q_k_row_order_applied_to_qwen2_is_caught_by_parity(
    qwen: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one layout difference between llama and qwen2 in the exporter, switched on wrongly."""
    wrong = dataclasses.replace(gguf_write.ARCHS["qwen2"], permute_qk=True)
    monkeypatch.setitem(gguf_write.ARCHS, "qwen2", wrong)
    with pytest.raises(TrainingError, match="export refused"):
        export(qwen["run"], "qwen-permuted", qwen["home"], "lora")
    assert not (qwen["home"] / "exports" / "qwen-permuted").exists()


@pytest.mark.parametrize("model_type", list(ARCHS))
def test_each_mapped_architecture_exports_a_model_llama_cpp_runs_like_torch(
    model_type: str, qwen: dict[str, Any], zoo: dict[str, ZooModel], tmp_path: Path
) -> None:
    family, extra = ARCHS[model_type]
    template = zoo[family].path
    model = random_model(model_type, n_tokens(template), **extra)
    out = write_model_gguf(state_of(model), model.config, template, tmp_path / "m.gguf", "f32")
    assert read_gguf_info(out).architecture == zoo[family].arch
    assert special_tokens(out)["chat_template"] == zoo[family].template
    # Parity compares token ids; the zoo's Qwen tokenizer gives ids every zoo vocabulary has.
    report = check_parity(model, qwen["tok"], out, None, threshold=0.98)
    assert report.passed, report.as_dict()


def test_an_architecture_without_a_mapping_is_refused_by_name(tmp_path: Path) -> None:
    from transformers import GPT2Config

    with pytest.raises(
        TrainingError, match="'gpt2' models do not export to GGUF; exportable: llama"
    ):
        write_model_gguf({}, GPT2Config(), tmp_path / "x.gguf", tmp_path / "y.gguf")


def test_q4_k_m_goes_through_llama_cpps_quantizer_and_is_refused_below_the_gate(
    qwen: dict[str, Any],
) -> None:
    """4-bit noise swamps this random tiny model (wide logits): the default gate refuses it."""
    run, home = qwen["run"], qwen["home"]
    with pytest.raises(TrainingError, match=r"export refused: .*fine-tune kept at"):
        export(run, "qwen-q4", home, "merged", "q4_k_m")
    assert not (home / "exports" / "qwen-q4").exists()
    report = json.loads((run / "parity-failed-qwen-q4.json").read_text())
    assert report["top1"] < 0.7 and report["finetune_positions"] >= 5, report
    # With a threshold the user chose, the same file ships: llama.cpp's Q4_K_M.
    manifest = export(run, "qwen-q4-loose", home, "merged", "q4_k_m", threshold=0.3)
    info = read_gguf_info(Path(manifest["file"]))
    assert (info.architecture, info.file_type) == ("qwen2", "Q4_K_M")
    assert not list(Path(manifest["file"]).parent.glob("*.f16.gguf"))  # the f16 step is gone
    assert ModelRegistry(home).get("qwen-q4-loose").kind == "model"


def test_an_export_that_lost_the_fine_tune_is_refused(
    qwen: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What re-quantizing onto the base's grid did: the file is the base again."""
    import training.export as export_module

    run, home = qwen["run"], qwen["home"]
    base_state = state_of(qwen["model"])
    real = gguf_write.write_model_gguf

    def base_instead(state: Any, *args: Any, **kwargs: Any) -> Path:
        return real(base_state, *args, **kwargs)

    monkeypatch.setattr(export_module, "write_model_gguf", base_instead)
    with pytest.raises(TrainingError, match="fine-tune kept at"):
        export(run, "qwen-erased", home, "merged", "f16")

    report = json.loads((run / "parity-failed-qwen-erased.json").read_text())
    assert report["finetune_kept"] < 0.2, report  # the tuned picks are the base's again


def test_the_fine_tune_probe_reads_preference_pairs_on_their_chosen_side(
    qwen: dict[str, Any],
) -> None:
    from training.finetune import load_adapter
    from training.parity import finetune_probe
    from training.prepare import load_split

    model = load_adapter(qwen["run"], qwen["home"], qwen["base"])
    rows = load_split(qwen["run"].parent / "data", "train")
    starts = [next(i for i, label in enumerate(r["labels"]) if label != -100) for r in rows]
    pairs = [
        {"prompt_ids": r["input_ids"][:k], "chosen_ids": r["input_ids"][k:], "rejected_ids": [0]}
        for r, k in zip(rows, starts, strict=True)
    ]
    sft, pref = finetune_probe(model, rows), finetune_probe(model, pairs)
    assert pref.size >= 5 and pref.sequences == sft.sequences
    for positions, k in zip(pref.positions, starts, strict=False):
        assert all(p >= k - 1 for p in positions)  # only where the chosen answer is predicted
    assert finetune_probe(model, [{"text": "no ids"}]).size == 0  # other rows are skipped
