"""The parity gate: does llama.cpp, running the exported GGUF, behave like the torch model?

Two measures on fixed chat prompts, both on the same token ids:

* top-1 agreement: the share of positions where both pick the same next token (over the
  prompt and the torch model's greedy continuation);
* greedy: whether llama.cpp's greedy continuation equals torch's, token for token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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

    @property
    def passed(self) -> bool:
        """True when top-1 agreement reaches the threshold."""
        return self.top1 >= self.threshold

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (with ``passed``)."""
        return {**asdict(self), "passed": self.passed}

    def summary(self) -> str:
        """One line for the user."""
        return (
            f"top-1 agreement {self.top1:.1%} (threshold {self.threshold:.0%}), "
            f"greedy identical on {self.greedy_exact}/{self.prompts} prompts"
        )


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
) -> ParityReport:
    """Compare ``model`` (torch) with llama.cpp running ``gguf_path`` (+ ``lora_path``)."""
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
    finally:
        llm.close()
    return ParityReport(agree / max(total, 1), exact, len(prompts), threshold, details)
