"""Agent evaluation on the bundled model: grammar-constrained ReAct vs unconstrained text ReAct.

Runs every task of bench/agent_tasks.json through both loops on the same loaded model, with
a fixed clock, a fixed in-memory document search and a fixed memory recall, and prints the
failures, then one JSON line of figures (last line).

    .venv/bin/python bench/agent.py [--tasks bench/agent_tasks.json] [--max-steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from assistant.agent import AgentResult, ReActAgent
from assistant.backends.llama_local import LlamaCppBackend, SamplingDefaults
from assistant.bundled import bundled_model_path
from assistant.tools import (
    make_calculator_tool,
    make_clock_tool,
    make_doc_search_tool,
    make_memory_recall_tool,
)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


def keyword_search(items: list[dict[str, str]]) -> Any:
    """A fixed search callable: items ranked by words shared with the query."""

    def search(query: str, k: int) -> list[dict[str, str]]:
        scored = [(len(_words(query) & _words(item["text"])), i) for i, item in enumerate(items)]
        return [items[i] for score, i in sorted(scored, reverse=True)[:k] if score > 0]

    return search


def run_mode(
    backend: LlamaCppBackend, data: dict[str, Any], constrained: bool, max_steps: int
) -> dict[str, Any]:
    """Run all tasks in one mode; return figures and the failures."""
    now = datetime.fromisoformat(data["now"])
    tools = [
        make_calculator_tool(),
        make_clock_tool(now=lambda: now),
        make_doc_search_tool(keyword_search(data["documents"]), k=2),
        make_memory_recall_tool(keyword_search([{"text": m} for m in data["memories"]]), k=2),
    ]
    agent = ReActAgent(backend, tools, max_steps=max_steps, constrained=constrained)
    right_tool = right_answer = failures = steps = 0
    notes: list[dict[str, Any]] = []
    start = time.perf_counter()
    for task in data["tasks"]:
        result: AgentResult = agent.ask(task["question"])
        used = [s.tool for s in result.steps if s.tool]
        first = used[0] if used else None
        tool_ok = first == task["tool"]
        answer_ok = any(a in result.answer.lower() for a in task["answers"])
        right_tool += tool_ok
        right_answer += answer_ok
        failures += result.parse_failures
        steps += len(result.steps)
        if not (tool_ok and answer_ok):
            notes.append(
                {
                    "question": task["question"],
                    "expected_tool": task["tool"],
                    "calls": [(s.tool, s.tool_input) for s in result.steps if s.tool],
                    "answer": result.answer[:80],
                    "stop": result.stop_reason,
                    "parse_failures": result.parse_failures,
                }
            )
    n = len(data["tasks"])
    return {
        "tool_choice_accuracy": round(right_tool / n, 3),
        "answer_accuracy": round(right_answer / n, 3),
        "parse_failures": failures,
        "mean_steps": round(steps / n, 2),
        "seconds_per_task": round((time.perf_counter() - start) / n, 2),
        "failures": notes,
    }


def main() -> None:
    """Run both modes and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=Path, default=Path(__file__).with_name("agent_tasks.json"))
    parser.add_argument("--max-steps", type=int, default=3)
    args = parser.parse_args()
    data = json.loads(args.tasks.read_text())
    backend = LlamaCppBackend(
        bundled_model_path(),
        name="smollm2-135m",
        n_ctx=2048,
        n_threads=1,
        n_threads_batch=1,
        defaults=SamplingDefaults(temperature=0.0, max_tokens=256, seed=1),
    )
    backend.load()
    figures: dict[str, Any] = {
        "bench": "agent",
        "model": "smollm2-135m",
        "tasks": len(data["tasks"]),
    }
    for name, constrained in (("grammar", True), ("text", False)):
        result = run_mode(backend, data, constrained, args.max_steps)
        for note in result.pop("failures"):
            print(json.dumps({"mode": name, **note}))
        figures[name] = result
    figures["time_ratio_grammar_over_text"] = round(
        figures["grammar"]["seconds_per_task"] / max(figures["text"]["seconds_per_task"], 1e-9), 2
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
