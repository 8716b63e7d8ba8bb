"""Benchmark: `training.finetune` vs a plain transformers Trainer, TRL's SFTTrainer, and QLoRA.

- ``plain``: a transformers ``Trainer`` at identical settings: the same LoRA (r16, all linear
  layers, batch 4) on the bundled base for the same steps over the same prepared data.
  ``ratio`` = our seconds per step / plain's (<= 1.0: no overhead), ``memory_ratio`` likewise
  for peak RSS.
- ``trl``: TRL's ``SFTTrainer`` with its defaults (batch 8, gradient checkpointing, lr 2e-5,
  bf16) on the same conversations and LoRA; compared in trained tokens per second
  (``trl_tokens_ratio`` = ours / TRL; >= 1.0: we are not slower). On CPU its default bf16 is
  turned off (bf16 is ~18x slower there, and we train fp32); on CUDA both run bf16.
- ``qlora``: our ``finetune`` on an NF4 base (``qlora_ratio`` = its seconds per step / ours,
  ``qlora_memory_ratio`` its peak RSS / ours; on CUDA also peak GPU memory).
- ``dpo`` / ``orpo``: our ``finetune --method dpo|orpo`` (LoRA r16, batch 4 pairs, no
  gradient checkpointing) on 16 preference pairs, against ``trl-dpo`` / ``trl-orpo``: TRL's
  ``DPOTrainer`` / ``ORPOTrainer`` with their config defaults (batch 8, gradient
  checkpointing; bf16 off on CPU as above) and the same LoRA. Batch sizes differ, so they
  are compared in pairs per second (``dpo_pairs_ratio`` = ours / TRL's; >= 1.0: not slower);
  s/step is printed for each.

Each run is its own process, so peak memory is its own. Runs alternate and the fastest of
``--repeats`` is kept, since other load on a shared machine skews single runs. Prints one
JSON line last.

    .venv/bin/python bench/train.py [--steps 10] [--threads 1] [--variants ours,plain,trl,qlora]
    .venv/bin/python bench/train.py --variants dpo,trl-dpo,orpo,trl-orpo
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


PREFERENCE = ("dpo", "trl-dpo", "orpo", "trl-orpo")


def _examples() -> list[list[dict[str, str]]]:
    pairs = [
        (f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}.") for a in range(8) for b in (3, 9)
    ]
    return [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in pairs]


def _pairs() -> list[dict[str, Any]]:
    """16 preference pairs: the right sum (chosen) over a wrong one (rejected)."""
    return [
        {"prompt": [{"role": "user", "content": f"What is {a} plus {b}?"}]}
        | {"chosen": f"{a} plus {b} is {a + b}.", "rejected": f"{a} plus {b} is {a + b + 1}."}
        for a in range(8)
        for b in (3, 9)
    ]


def _preference(variant: str, work: Path, home: Path, steps: int, tag: str) -> dict[str, float]:
    """Ours (``finetune --method``) or TRL's trainer at its defaults: s/step and pairs/s."""
    import torch

    from training.base import cache_dir, resolve_base
    from training.finetune import LEARNING_RATES, FinetuneConfig, finetune, lora_config

    method = variant.removeprefix("trl-")
    base = resolve_base(None, home)
    config = FinetuneConfig(
        max_steps=steps, save_steps=10_000, method=method, learning_rate=LEARNING_RATES[method]
    )
    if not variant.startswith("trl-"):
        manifest = finetune(
            work / "pairs", work / f"run-{variant}-{tag}", base, home, config, False
        )
        runtime, batch = manifest["metrics"]["runtime_s"], config.batch_size
    else:
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = cache_dir(base, home)
        cuda = torch.cuda.is_available()
        common = {"output_dir": str(work / f"run-{variant}-{tag}"), "max_steps": steps}
        common |= {"save_strategy": "no", "report_to": [], "disable_tqdm": True}
        common |= {"use_cpu": not cuda, "bf16": cuda}  # its default, except on CPU
        rows = [
            r
            | {"chosen": [{"role": "assistant", "content": r["chosen"]}]}
            | {"rejected": [{"role": "assistant", "content": r["rejected"]}]}
            for r in _pairs()
        ]
        kwargs = {
            "model": AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
            "train_dataset": Dataset.from_list(rows),
            "processing_class": AutoTokenizer.from_pretrained(folder),
            "peft_config": lora_config(config),
        }
        if method == "dpo":
            from trl.trainer.dpo_config import DPOConfig
            from trl.trainer.dpo_trainer import DPOTrainer

            args: Any = DPOConfig(**common)
            trainer: Any = DPOTrainer(args=args, **kwargs)
        else:
            from trl.experimental.orpo import ORPOConfig, ORPOTrainer

            args = ORPOConfig(**common)
            trainer = ORPOTrainer(args=args, **kwargs)
        runtime = float(trainer.train().metrics["train_runtime"])
        batch = args.per_device_train_batch_size
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "s_per_step": runtime / steps,
        "pairs_per_s": batch * steps / runtime,
        "tokens_per_s": 0.0,
        "peak_rss_mb": peak_kb / 1024,
        "peak_gpu_mb": 0.0,
    }


def _child(variant: str, work: Path, home: Path, steps: int, tag: str) -> dict[str, float]:
    import torch

    from training.base import cache_dir, resolve_base
    from training.finetune import FinetuneConfig, finetune

    if variant in PREFERENCE:
        return _preference(variant, work, home, steps, tag)
    base = resolve_base(None, home)
    config = FinetuneConfig(max_steps=steps, save_steps=10_000, qlora=variant == "qlora")
    tokens = 0
    if variant in ("ours", "qlora"):
        run = work / f"run-{variant}-{tag}"
        manifest = finetune(work / "data", run, base, home, config, progress=False)
        metrics = manifest["metrics"]
        runtime, done, tokens = metrics["runtime_s"], metrics["steps"], metrics["tokens"]
    elif variant == "trl":
        runtime, done, tokens = _trl(work, cache_dir(base, home), steps, tag, config)
    else:
        from peft import LoraConfig, get_peft_model
        from transformers import (
            AutoModelForCausalLM,
            AutoTokenizer,
            DataCollatorForSeq2Seq,
            Trainer,
            TrainingArguments,
            set_seed,
        )

        from training.prepare import load_split

        set_seed(config.seed)
        folder = cache_dir(base, home)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear")
        model = get_peft_model(model, lora)
        args = TrainingArguments(
            output_dir=str(work / f"run-plain-{tag}"),
            max_steps=steps,
            per_device_train_batch_size=4,
            learning_rate=5e-4,
            seed=config.seed,  # same shuffling, so both see the same batches
            lr_scheduler_type="constant",
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=not torch.cuda.is_available(),
            remove_unused_columns=False,
            disable_tqdm=True,
        )
        rows = [
            {"input_ids": r["input_ids"], "labels": r["labels"]}
            for r in load_split(work / "data", "train")
        ]
        collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
        result = Trainer(model=model, args=args, train_dataset=rows, data_collator=collator).train()
        runtime, done = result.metrics["train_runtime"], steps
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    return {
        "s_per_step": runtime / done,
        "tokens_per_s": tokens / runtime,
        "peak_rss_mb": peak_kb / 1024,
        "peak_gpu_mb": gpu_mb,
    }


def _trl(work: Path, folder: Path, steps: int, tag: str, config: Any) -> tuple[float, int, int]:
    """TRL's SFTTrainer at its defaults on the same conversations: (runtime, steps, tokens)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from training.finetune import lora_config

    cuda = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(work / f"run-trl-{tag}"),
        max_steps=steps,
        seed=config.seed,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=not cuda,
        bf16=cuda,  # its default, except on CPU (see the module docstring)
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
        args=args,
        train_dataset=Dataset.from_list([{"messages": m} for m in _examples()]),
        processing_class=AutoTokenizer.from_pretrained(folder),
        peft_config=lora_config(config),
    )
    counted = [0]
    collate = trainer.data_collator

    def counting(rows: list[dict[str, Any]]) -> Any:
        counted[0] += sum(len(r["input_ids"]) for r in rows)
        return collate(rows)

    trainer.data_collator = counting
    result = trainer.train()
    return float(result.metrics["train_runtime"]), steps, counted[0]


def main() -> None:
    """Run the variants in child processes and print the comparison."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="Alternating runs; best kept.")
    parser.add_argument("--variants", default="ours,plain,trl,qlora", help="Comma-separated.")
    parser.add_argument("--tag", default="0", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        result = _child(args.child, Path(args.work), Path(args.home), args.steps, args.tag)
        print(json.dumps(result))
        return
    from assistant.paths import data_dir
    from training.base import load_tokenizer, resolve_base
    from training.preferences import Pair, prepare_preferences
    from training.prepare import prepare

    asked = [v for v in args.variants.split(",") if v]
    only_pairs = all(v in PREFERENCE for v in asked)  # no SFT baseline needed then
    variants = asked if only_pairs else ["ours", *(v for v in asked if v != "ours")]
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        home = data_dir()
        base = resolve_base(None, home)
        tokenizer = load_tokenizer(base, home)
        prepare(_examples(), work / "data", tokenizer, base.as_dict())
        pairs = [
            Pair(r["prompt"], r["chosen"], r["rejected"], "file", str(i))
            for i, r in enumerate(_pairs())
        ]
        prepare_preferences(pairs, work / "pairs", tokenizer, base.as_dict(), val_fraction=0.0)
        for repeat in range(args.repeats):  # alternate, so load on a shared box hits all
            for variant in variants:
                cmd = [sys.executable, __file__, "--child", variant, "--work", tmp]
                cmd += ["--home", str(home), "--steps", str(args.steps), "--tag", str(repeat)]
                cmd += ["--threads", str(args.threads)]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode:
                    sys.exit(f"{variant} failed:\n{done.stderr[-3000:]}")
                runs[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
    best = {v: min(r, key=lambda x: x["s_per_step"]) for v, r in runs.items()}
    figures: dict[str, Any] = {
        "bench": "train",
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "steps": args.steps,
        "threads": args.threads,
        "repeats": args.repeats,
    }
    for method in ("dpo", "orpo"):
        if method in best and f"trl-{method}" in best:
            mine, trl = best[method], best[f"trl-{method}"]
            figures |= {
                f"{method}_s_per_step": round(mine["s_per_step"], 3),
                f"{method}_pairs_per_s": round(mine["pairs_per_s"], 3),
                f"trl_{method}_s_per_step": round(trl["s_per_step"], 3),
                f"trl_{method}_pairs_per_s": round(trl["pairs_per_s"], 3),
                f"{method}_pairs_ratio": round(mine["pairs_per_s"] / trl["pairs_per_s"], 3),
                f"{method}_peak_rss_mb": round(mine["peak_rss_mb"]),
                f"trl_{method}_peak_rss_mb": round(trl["peak_rss_mb"]),
            }
    if "ours" not in best:
        print(json.dumps(figures))
        return
    ours = best["ours"]
    figures |= {
        "ours_s_per_step": round(ours["s_per_step"], 3),
        "ours_tokens_per_s": round(ours["tokens_per_s"], 1),
        "ours_peak_rss_mb": round(ours["peak_rss_mb"]),
    }
    if "plain" in best:
        plain = best["plain"]
        figures |= {
            "plain_s_per_step": round(plain["s_per_step"], 3),
            "ratio": round(ours["s_per_step"] / plain["s_per_step"], 3),
            "plain_peak_rss_mb": round(plain["peak_rss_mb"]),
            "memory_ratio": round(ours["peak_rss_mb"] / plain["peak_rss_mb"], 3),
        }
    if "trl" in best:
        trl = best["trl"]
        figures |= {
            "trl_tokens_per_s": round(trl["tokens_per_s"], 1),
            "trl_tokens_ratio": round(ours["tokens_per_s"] / trl["tokens_per_s"], 3),
            "trl_peak_rss_mb": round(trl["peak_rss_mb"]),
        }
    if "qlora" in best:
        qlora = best["qlora"]
        figures |= {
            "qlora_s_per_step": round(qlora["s_per_step"], 3),
            "qlora_ratio": round(qlora["s_per_step"] / ours["s_per_step"], 3),
            "qlora_peak_rss_mb": round(qlora["peak_rss_mb"]),
            "qlora_memory_ratio": round(qlora["peak_rss_mb"] / ours["peak_rss_mb"], 3),
        }
        if torch.cuda.is_available():
            figures["qlora_gpu_memory_ratio"] = round(qlora["peak_gpu_mb"] / ours["peak_gpu_mb"], 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
