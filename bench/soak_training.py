"""The training soak: kill -9 ``training.finetune`` on a tiny llama, checkpointing each step.

The writer logs ``S n`` at the end of each step and ``C n`` once checkpoint-n is written
(the Trainer calls ``on_save`` after the last file), and ``END`` with the manifest. After
each kill the parent finds the checkpoint a rerun must resume from (the newest complete
one, as ``training.checkpoints`` decides, from the files alone) and holds the next run to
it: its first step is the one after. No logged checkpoint may be lost (the resume point is
never older than the last ``C``), a run never fails instead of resuming, and a run that
gets through has the full step count with each step's loss once. Then a new run starts.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from soak_zygote import Figures, Log, run_killed, run_to_end, tail

from training.checkpoints import resume_point, step

HP = {"rank": 2, "alpha": 4, "batch_size": 2, "save_steps": 1}


class TrainingSoak:
    """Kill a fine-tuning run at random moments; each rerun must resume."""

    name = "training"

    def __init__(self, work: Path, steps: int = 8) -> None:
        self.root = work
        self.logs = work / "logs"
        self.steps = steps
        # How long a fresh run takes to its first step and to its end (measured on each
        # whole run): most kills land after the start-up, where steps, checkpoints and
        # results are written, the rest anywhere.
        self.startup_s, self.whole_s = 1.0, 3.0

    def setup(self) -> None:
        """(child) A tiny llama in an HF folder and a prepared data directory for it."""
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        from training.base import resolve_base
        from training.manifest import write_manifest

        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=32,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=64,
        )
        LlamaForCausalLM(config).save_pretrained(self.root / "tiny")
        base = resolve_base(str(self.root / "tiny"), self.root / "home")
        data = self.root / "data"
        data.mkdir()
        rows = [{"input_ids": [1, 5 + i, 9, 2], "labels": [-100, -100, 9, 2]} for i in range(8)]
        (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        write_manifest(
            data,
            {"stage": "prepare", "key": "soak", "base": base.as_dict(), "data_hash": "0"}
            | {"chat_template": "", "eos_token": "</s>"},
        )

    def write(self, run: Path, log: Log) -> None:
        """(child) Run (or resume) ``finetune`` into ``run``, logging steps and checkpoints."""
        from transformers import TrainerCallback

        from training.base import resolve_base
        from training.finetune import FinetuneConfig, finetune

        class Logger(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                log.write("S", state.global_step, f"{time.monotonic():.3f}")

            def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                log.write("C", state.global_step)

        home = self.root / "home"
        manifest = finetune(
            self.root / "data",
            run,
            resolve_base(str(self.root / "tiny"), home),
            home,
            FinetuneConfig(max_steps=self.steps, **HP),  # type: ignore[arg-type]
            progress=False,
            callbacks=[Logger()],
            notify=lambda line: log.write("N", line.replace("\n", " ")),
        )
        log.write("END", manifest["metrics"]["steps"])

    def resume_step(self, run: Path) -> int:
        """The step a rerun of ``run`` must start after (0: from the beginning)."""
        resume, _ = resume_point(run / "checkpoints")
        return step(resume) if resume else 0

    def soak(self, figures: Figures, kills: int, rng: random.Random) -> None:
        """Kill runs ``kills`` times at random moments; each rerun must resume."""
        self.logs.mkdir(parents=True, exist_ok=True)
        if run_to_end(self.setup) != 0:
            raise RuntimeError("the training soak could not build its tiny model")
        runs_done = 0
        run = self.root / "run-0"
        expected, pending, saved = 0, 0, 0  # resume step, kills not yet judged, last "C"
        while figures.kills < kills and figures.runs < 4 * kills:
            log, out = self._log(figures.runs)
            after = self.startup_s if rng.random() < 0.7 else 0.0
            delay = rng.uniform(after, 1.1 * self.whole_s)
            started = time.monotonic()
            code = run_killed(lambda: self.write(run, log), delay, out)  # noqa: B023
            if code == 0 and expected == 0 and not pending:  # a whole run, start to end
                self._measure(log, started)
            figures.runs += 1
            pending = self._judge(figures, log, expected, pending)
            saved = max([saved, *(int(f[1]) for f in log.lines() if f[0] == "C")])
            if code is None:
                figures.kills += 1
                pending += 1
                expected = self.resume_step(run)
                figures.checked += len({f[1] for f in log.lines() if f[0] == "C"})
                if expected < saved:
                    figures.lost += 1
                    figures.problem(
                        f"kill {figures.kills}: checkpoint-{saved} was complete, "
                        f"a rerun would resume from step {expected}"
                    )
                continue
            if code != 0:
                figures.failed_runs += 1
                figures.problem(
                    f"training run {figures.runs} ({run.name}) exited with status {code} "
                    f"instead of resuming: {tail(out)}"
                )
            else:
                self._finished(figures, run)
            runs_done += 1
            run = self.root / f"run-{runs_done}"  # a failed run dir stays as the user saw it
            expected, pending, saved = 0, 0, 0
        log, out = self._log(figures.runs)
        code = run_to_end(lambda: self.write(run, log), output=out)
        figures.runs += 1
        pending = self._judge(figures, log, expected, pending)
        if code != 0:
            figures.failed_runs += 1
            figures.problem(f"the last training run exited with status {code}: {tail(out)}")
        else:
            self._finished(figures, run)
        notes = [f for path in self.logs.glob("*.log") for f in Log(path).lines() if f[0] == "N"]
        figures.extra = {
            "finished_runs": runs_done + 1,
            "unjudged_kills": pending,
            # kills that landed while a checkpoint was written (a rerun set it aside)
            "incomplete_set_aside": len(notes),
        }

    def _measure(self, log: Log, started: float) -> None:
        """Time the phases of a whole run from its log."""
        steps = [float(f[2]) for f in log.lines() if f[0] == "S"]
        if steps:
            self.startup_s = steps[0] - started
            self.whole_s = time.monotonic() - started

    def _log(self, run: int) -> tuple[Log, Path]:
        return Log(self.logs / f"{run:04d}.log"), self.logs / f"{run:04d}.out"

    def _judge(self, figures: Figures, log: Log, expected: int, pending: int) -> int:
        """Count pending kills as resumed (or not) once a run shows where it started."""
        lines = log.lines()
        steps = [int(f[1]) for f in lines if f[0] == "S"]
        if not pending or not (steps or any(f[0] == "END" for f in lines)):
            return pending
        first = steps[0] if steps else self.steps + 1
        if first == expected + 1:
            figures.resumed += pending
        else:
            figures.not_resumed += pending
            figures.problem(
                f"training run {figures.runs} started at step {first}, "
                f"not {expected + 1} (after checkpoint-{expected})"
            )
        return 0

    def _finished(self, figures: Figures, run: Path) -> None:
        """A run that got through: the full step count, each step's loss once, an adapter."""
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        steps = manifest["metrics"]["steps"]
        logged = [int(s) for s, _ in manifest["losses"]]
        whole = (run / "adapter" / "adapter_model.safetensors").is_file()
        if steps != self.steps or logged != list(range(1, self.steps + 1)) or not whole:
            figures.corrupt += 1
            figures.problem(
                f"{run.name} finished with {steps} steps, losses of steps "
                f"{logged}, adapter {'saved' if whole else 'missing'}"
            )
