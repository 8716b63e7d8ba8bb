"""The parity gate: does llama.cpp, running the exported GGUF, behave like the torch model?

Two measures on fixed chat prompts, both on the same token ids:

* top-1 agreement: the share of positions where both pick the same next token (over the
  prompt and the torch model's greedy continuation);
* greedy: whether llama.cpp's greedy continuation equals torch's, token for token.

Both can pass while a fine-tune is lost: on general prompts the tuned model mostly predicts
what the base does, and 4-bit quantization can snap the small LoRA delta back onto the base.
So a third measure, when a :class:`Probe` is given, looks only where the fine-tune matters:

* fine-tune kept: on training examples, at the supervised positions where the tuned model's
  top-1 token differs from the base's, the share where llama.cpp picks the tuned token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MAX_PROBE_TOKENS = 512  # the parity context is 512 tokens
MIN_PROBE_POSITIONS = 5  # fewer changed positions than this: too few to judge, not measured
PROMPTS = (
    "What is the capital of France?",
    "Who are you?",
    "Give me one tip for writing clear code.",
)


@dataclass
class ParityReport:
    """How closely the GGUF follows the torch model."""

    top1: float
    greedy_exact: int
    prompts: int
    threshold: float
    details: list[dict[str, Any]] = field(default_factory=list)
    finetune_kept: float | None = None  # None: no probe, or too few changed positions
    finetune_positions: int = 0
    kept_threshold: float = 0.9

    @property
    def passed(self) -> bool:
        """True when top-1 agreement and (where measured) the fine-tune kept reach their bars."""
        kept = self.finetune_kept is None or self.finetune_kept >= self.kept_threshold
        return self.top1 >= self.threshold and kept

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (with ``passed``)."""
        return {**asdict(self), "passed": self.passed}

    def summary(self) -> str:
        """One line for the user."""
        line = (
            f"top-1 agreement {self.top1:.1%} (threshold {self.threshold:.0%}), "
            f"greedy identical on {self.greedy_exact}/{self.prompts} prompts"
        )
        if self.finetune_kept is not None:
            line += (
                f", fine-tune kept at {self.finetune_kept:.1%} of the "
                f"{self.finetune_positions} positions it changed (threshold "
                f"{self.kept_threshold:.0%})"
            )
        return line


@dataclass
class Probe:
    """Training examples and the positions where the fine-tune changed the top-1 token."""

    sequences: list[list[int]]
    positions: list[list[int]]  # per sequence: positions whose next-token pick changed
    tuned: list[list[int]]  # the tuned model's pick at each of those positions

    @property
    def size(self) -> int:
        """How many changed positions there are in all."""
        return sum(len(p) for p in self.positions)


def finetune_probe(peft_model: Any, rows: list[dict[str, Any]], limit: int = 8) -> Probe:
    """Find where ``peft_model`` (adapter attached, not merged) and its base disagree.

    Args:
        peft_model: the base with the trained adapter (``disable_adapter`` gives the base).
        rows: prepared examples: ``input_ids`` and ``labels`` (-100 where not supervised),
            or preference pairs (``prompt_ids`` + ``chosen_ids``, the chosen side supervised).
        limit: how many examples to look at.
    """
    import torch

    probe = Probe([], [], [])
    peft_model.eval()
    for row in rows[:limit]:
        if "input_ids" in row:  # supervised fine-tuning rows
            ids, labels = list(row["input_ids"]), list(row["labels"])
        elif "prompt_ids" in row and "chosen_ids" in row:  # preference pairs: the chosen side
            prompt, chosen = list(row["prompt_ids"]), list(row["chosen_ids"])
            ids, labels = prompt + chosen, [-100] * len(prompt) + chosen
        else:
            continue
        ids = ids[:MAX_PROBE_TOKENS]
        with torch.no_grad():
            tuned = peft_model(torch.tensor([ids])).logits[0].argmax(-1).tolist()
            with peft_model.disable_adapter():
                base = peft_model(torch.tensor([ids])).logits[0].argmax(-1).tolist()
        changed = [p for p in range(len(ids) - 1) if labels[p + 1] != -100 and tuned[p] != base[p]]
        probe.sequences.append(ids)
        probe.positions.append(changed)
        probe.tuned.append([tuned[p] for p in changed])
    return probe


def prompt_ids(tokenizer: Any, question: str) -> list[int]:
    """Token ids of one user question rendered with the chat template."""
    messages = [{"role": "user", "content": question}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def check_parity(
    model: Any,
    tokenizer: Any,
    gguf_path: Path,
    lora_path: Path | None = None,
    prompts: tuple[str, ...] = PROMPTS,
    new_tokens: int = 24,
    threshold: float = 0.9,
    probe: Probe | None = None,
    kept_threshold: float = 0.9,
) -> ParityReport:
    """Compare ``model`` (torch) with llama.cpp running ``gguf_path`` (+ ``lora_path``).

    With a ``probe`` (see :func:`finetune_probe`) the report also says how much of the
    fine-tune llama.cpp kept, and that share must reach ``kept_threshold``.
    """
    import numpy as np
    import torch
    from llama_cpp import Llama

    eos = tokenizer.eos_token_id
    llm = Llama(
        model_path=str(gguf_path),
        lora_path=str(lora_path) if lora_path else None,
        n_ctx=512,
        n_threads=1,
        n_threads_batch=1,
        logits_all=True,
        verbose=False,
    )
    agree = total = exact = 0
    details = []
    try:
        model.eval()
        for question in prompts:
            ids = prompt_ids(tokenizer, question)
            with torch.no_grad():
                out = model.generate(
                    torch.tensor([ids]),
                    attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                    max_new_tokens=new_tokens,
                    do_sample=False,
                    eos_token_id=eos,
                    pad_token_id=eos,
                )
            torch_new = out[0, len(ids) :].tolist()
            seq = ids + torch_new
            with torch.no_grad():
                torch_top = model(torch.tensor([seq])).logits[0].argmax(-1).tolist()
            llm.reset()  # type: ignore[no-untyped-call]
            llm.eval(seq)
            gguf_top = np.asarray(llm.scores[: len(seq)]).argmax(-1).tolist()
            same = sum(int(a == b) for a, b in zip(torch_top, gguf_top, strict=True))
            agree, total = agree + same, total + len(seq)
            gguf_new: list[int] = []
            for token in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
                gguf_new.append(int(token))
                if token == eos or len(gguf_new) >= len(torch_new):
                    break
            exact += int(gguf_new == torch_new)
            details.append(
                {
                    "prompt": question,
                    "top1": same / len(seq),
                    "torch": tokenizer.decode(torch_new),
                    "gguf": tokenizer.decode(gguf_new),
                }
            )
        kept = None
        if probe is not None and probe.size >= MIN_PROBE_POSITIONS:
            hits = 0
            for seq, positions, tuned in zip(
                probe.sequences, probe.positions, probe.tuned, strict=True
            ):
                llm.reset()  # type: ignore[no-untyped-call]
                llm.eval(seq)
                picks = np.asarray(llm.scores[: len(seq)]).argmax(-1)
                hits += sum(int(picks[p] == t) for p, t in zip(positions, tuned, strict=True))
            kept = hits / probe.size
    finally:
        llm.close()
    return ParityReport(
        agree / max(total, 1),
        exact,
        len(prompts),
        threshold,
        details,
        finetune_kept=kept,
        finetune_positions=probe.size if probe is not None else 0,
        kept_threshold=kept_threshold,
    )
