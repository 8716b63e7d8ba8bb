"""Benchmark: `training.finetune` vs a plain transformers Trainer at identical settings.

Both train the same LoRA (r16, all linear layers, fp32, batch 4) on the bundled base for the
same steps over the same prepared data, each in its own process so peak memory is its own.
Prints one JSON line last: seconds per step and peak RSS of each, and their ratios
(ours / plain; <= 1.0 means no overhead). Runs alternate and the fastest of
``--repeats`` is kept, since other load on a shared machine skews single runs.

    .venv/bin/python bench/train.py [--steps 6] [--threads 1]
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _examples() -> list[list[dict[str, str]]]:
    pairs = [
        (f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}.") for a in range(8) for b in (3, 9)
    ]
    return [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in pairs]


def _child(variant: str, work: Path, home: Path, steps: int, tag: str) -> dict[str, float]:
    from training.base import cache_dir, resolve_base
    from training.finetune import FinetuneConfig, finetune

    base = resolve_base(None, home)
    config = FinetuneConfig(max_steps=steps, save_steps=10_000)
    if variant == "ours":
        manifest = finetune(
            work / "data", work / f"run-ours-{tag}", base, home, config, progress=False
        )
        runtime, done = manifest["metrics"]["runtime_s"], manifest["metrics"]["steps"]
    else:
        import torch
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
    return {"s_per_step": runtime / done, "peak_rss_mb": peak_kb / 1024}


def main() -> None:
    """Run both variants in child processes and print the comparison."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="Alternating runs; best kept.")
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
    from training.prepare import prepare

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        home = data_dir()
        base = resolve_base(None, home)
        prepare(_examples(), work / "data", load_tokenizer(base, home), base.as_dict())
        runs: dict[str, list[dict[str, float]]] = {"ours": [], "plain": []}
        for repeat in range(args.repeats):  # alternate, so load on a shared box hits both
            for variant in ("ours", "plain"):
                cmd = [sys.executable, __file__, "--child", variant, "--work", tmp]
                cmd += ["--home", str(home), "--steps", str(args.steps), "--tag", str(repeat)]
                cmd += ["--threads", str(args.threads)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs[variant].append(json.loads(out.strip().splitlines()[-1]))
    ours = min(runs["ours"], key=lambda r: r["s_per_step"])
    plain = min(runs["plain"], key=lambda r: r["s_per_step"])
    print(
        json.dumps(
            {
                "bench": "train",
                "steps": args.steps,
                "threads": args.threads,
                "repeats": args.repeats,
                "ours_s_per_step": round(ours["s_per_step"], 3),
                "plain_s_per_step": round(plain["s_per_step"], 3),
                "ratio": round(ours["s_per_step"] / plain["s_per_step"], 3),
                "ours_peak_rss_mb": round(ours["peak_rss_mb"]),
                "plain_peak_rss_mb": round(plain["peak_rss_mb"]),
                "memory_ratio": round(ours["peak_rss_mb"] / plain["peak_rss_mb"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
