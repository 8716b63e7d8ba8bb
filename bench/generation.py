"""Generation speed of the assistant's chat model against raw llama_cpp.Llama, same run.

Figures (last line, one JSON object):
- app_tok_s / raw_tok_s / ratio: decode tokens/s through ``AssistantChatModel.stream`` vs
  ``Llama.create_chat_completion(stream=True)`` on the same loaded model, prompt and sampling
  settings (greedy, so both produce the same tokens); medians of alternating runs.
- ttft_turn1_s / ttft_turn20_s: time to first token at turns 1 and 20 of one conversation.
- ttft_switch_back_s: first token after switching to another conversation and back (KV state
  restored); ttft_switch_back_cold_s: the same without a conversation id (history re-read).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from assistant.backends.base import ChatMessage
from assistant.backends.llama_local import LlamaCppBackend, SamplingDefaults
from assistant.bundled import bundled_model_path
from assistant.chat_model import AssistantChatModel

MAX_TOKENS = 128
RUNS = 5
PROMPT: list[ChatMessage] = [
    {"role": "user", "content": "Write a long, detailed story about a lighthouse keeper."}
]


def decode_rate(stamps: list[float]) -> float:
    """Tokens per second after the first token."""
    if len(stamps) < 2:
        return 0.0
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def run_raw(llama: Any) -> tuple[float, int]:
    stamps: list[float] = []
    for chunk in llama.create_chat_completion(
        messages=PROMPT,
        stream=True,
        max_tokens=MAX_TOKENS,
        temperature=0.0,
        top_p=0.95,
        repeat_penalty=1.1,
        seed=1,
    ):
        if chunk["choices"][0]["delta"].get("content"):
            stamps.append(time.perf_counter())
    return decode_rate(stamps), len(stamps)


def run_app(model: AssistantChatModel) -> tuple[float, int]:
    stamps: list[float] = []
    for chunk in model.stream([("user", PROMPT[0]["content"])]):
        if chunk.content:
            stamps.append(time.perf_counter())
    return decode_rate(stamps), len(stamps)


def first_token_s(
    model: AssistantChatModel, messages: list[ChatMessage], conv: str | None
) -> tuple[float, str]:
    start = time.perf_counter()
    ttft, text = 0.0, ""
    for chunk in model.stream(
        [(m["role"], m["content"]) for m in messages], conversation_id=conv, max_tokens=48
    ):
        if chunk.content and not ttft:
            ttft = time.perf_counter() - start
        text += str(chunk.content)
    return ttft, text


def conversation(
    model: AssistantChatModel, topic: str, turns: int, conv: str | None
) -> tuple[list[float], list[ChatMessage]]:
    history: list[ChatMessage] = [{"role": "system", "content": f"You are an expert on {topic}."}]
    ttfts = []
    for i in range(turns):
        history.append({"role": "user", "content": f"Tell me fact number {i + 1} about {topic}."})
        ttft, reply = first_token_s(model, history, conv)
        ttfts.append(ttft)
        history.append({"role": "assistant", "content": reply})
    return ttfts, history


def main() -> None:
    backend = LlamaCppBackend(
        bundled_model_path(),
        n_ctx=8192,
        defaults=SamplingDefaults(temperature=0.0, max_tokens=MAX_TOKENS, seed=1),
    )
    backend.load()
    llama = backend.llama
    model = AssistantChatModel(backend=backend, temperature=0.0, max_tokens=MAX_TOKENS, seed=1)
    run_raw(llama), run_app(model)  # warm-up
    raw, app = [], []
    for _ in range(RUNS):
        raw.append(run_raw(llama))
        app.append(run_app(model))
    raw_tok_s = statistics.median(r for r, _ in raw)
    app_tok_s = statistics.median(a for a, _ in app)
    print(f"raw runs {raw}\napp runs {app}", file=sys.stderr)

    ttfts, history_a = conversation(model, "astronomy", 20, "conv-a")
    _, history_b = conversation(model, "cooking", 3, "conv-b")
    history_a.append({"role": "user", "content": "And one more fact, please."})
    switch_back, _ = first_token_s(model, history_a, "conv-a")
    # Control: the same switch without conversation ids, so no state is kept.
    first_token_s(model, history_b[:-1], None)
    history_a[-1] = {"role": "user", "content": "And yet another fact, please."}
    cold_back, _ = first_token_s(model, history_a, None)
    figures = {
        "bench": "generation",
        "model": backend.model_name,
        "n_threads": backend.n_threads,
        "n_threads_batch": backend.n_threads_batch,
        "max_tokens": MAX_TOKENS,
        "app_tok_s": round(app_tok_s, 2),
        "raw_tok_s": round(raw_tok_s, 2),
        "ratio": round(app_tok_s / raw_tok_s, 3),
        "ttft_turn1_s": round(ttfts[0], 4),
        "ttft_turn20_s": round(ttfts[19], 4),
        "ttft_turn20_over_turn1": round(ttfts[19] / ttfts[0], 2),
        "history_tokens_turn20": backend.count_prompt_tokens(history_a),
        "ttft_switch_back_s": round(switch_back, 4),
        "ttft_switch_back_cold_s": round(cold_back, 4),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
