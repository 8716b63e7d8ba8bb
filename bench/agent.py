"""Agent evaluation on the bundled model: the routed agent against today's ReAct agent.

Runs every task of bench/agent_tasks_v2.json through each mode on the same loaded model,
with every tool the agent has: the calculator, a fixed clock, document search and memory
recall over fixed texts (keyword ranking), read_file over a temporary folder holding the
task file's files, and web search through a fixed offline backend (so it needs no network).
Tasks with odd ids are the tune half, even ids the held-out half: tune on the first only.

Scores, per half: tool choice (the first tool called is the expected one, or no tool for a
no-tool task) and answer accuracy (the answer contains an accepted answer, not inside a
longer word or number). The routed mode is scored twice from the same run: with the
model's own answer, and with a detected calculation's or clock question's observation when
the model's answer does not state it (what the agent does by default; it only rewrites the
final answer, so one run gives both). Prints the failures, then one JSON line (last).

    .venv/bin/python bench/agent.py [--tasks bench/agent_tasks_v2.json] [--modes baseline,routed]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from assistant.agent import AgentResult, ReActAgent
from assistant.agent.route import Router, detect, direct_answer
from assistant.backends.llama_local import LlamaCppBackend, SamplingDefaults
from assistant.bundled import bundled_model_path
from assistant.memory.search import fts_query
from assistant.tools import (
    WebSearcher,
    make_calculator_tool,
    make_clock_tool,
    make_doc_search_tool,
    make_memory_recall_tool,
    make_read_file_tool,
    make_web_search_tool,
)
from assistant.tools.web_search import SearchResult

# name -> (routing policy or None, constrained). baseline: today's ReAct agent without the
# routing step; routed: the default agent; routed_model: the model routes whenever no
# detector fires (the worked examples' vote skipped); text: baseline without the grammar.
MODES: dict[str, tuple[str | None, bool]] = {
    "baseline": (None, True),
    "routed": ("examples", True),
    "routed_model": ("model", True),
    "text": (None, False),
}


def keyword_search(items: list[dict[str, str]]) -> Any:
    """A fixed search callable over ``items``: SQLite FTS5 with the porter stemmer, terms
    OR-ed and ranked by bm25, as the memory recall and the keyword half of document search
    do."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("CREATE VIRTUAL TABLE items USING fts5(text, tokenize='porter')")
    db.executemany(
        "INSERT INTO items (rowid, text) VALUES (?, ?)", enumerate(t["text"] for t in items)
    )

    def search(query: str, k: int) -> list[dict[str, str]]:
        match = fts_query(query)
        if match is None:
            return []
        sql = "SELECT rowid FROM items WHERE items MATCH ? ORDER BY bm25(items), rowid LIMIT ?"
        return [items[row] for (row,) in db.execute(sql, (match, k))]

    return search


def fixed_web(pages: list[dict[str, str]]) -> Any:
    """A web search backend answering from ``pages`` (title and snippet words), offline."""
    search = keyword_search([{**p, "text": f"{p['title']} {p['snippet']}"} for p in pages])

    def backend(query: str, max_results: int, timeout_s: float) -> list[SearchResult]:
        return [SearchResult(p["title"], p["url"], p["snippet"]) for p in search(query, 2)]

    return backend


def make_tools(data: dict[str, Any], folder: Path) -> list[Any]:
    """Every tool, over the task file's fixed world."""
    now = datetime.fromisoformat(data["now"])
    tools = [
        make_calculator_tool(),
        make_clock_tool(now=lambda: now),
        make_doc_search_tool(keyword_search(data["documents"]), k=2),
        make_memory_recall_tool(keyword_search([{"text": m} for m in data["memories"]]), k=2),
    ]
    if data.get("files"):
        for name, text in data["files"].items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        tools.append(make_read_file_tool([folder]))
    if data.get("web"):
        tools.append(make_web_search_tool(WebSearcher(fixed_web(data["web"]))))
    return tools


def contains(answer: str, accepted: str) -> bool:
    """``accepted`` in ``answer``, case-insensitive, not inside a longer word or number."""
    pattern = rf"(?<![\w.]){re.escape(accepted.lower())}(?![\w]|\.\d)"
    return re.search(pattern, answer.lower()) is not None


def run_mode(
    backend: LlamaCppBackend, data: dict[str, Any], mode: str, max_steps: int
) -> list[dict[str, Any]]:
    """Run all tasks in one mode; one record per task."""
    policy, constrained = MODES[mode]
    with tempfile.TemporaryDirectory() as tmp:
        tools = make_tools(data, Path(tmp))
        names = [t.name for t in tools]
        agent = ReActAgent(
            backend,
            tools,
            max_steps=max_steps,
            constrained=constrained,
            route=policy is not None,
            direct_answers=False,  # the direct answer is applied below, to score both
            approve=lambda name, text: True,
            conversation_id=f"bench-{mode}",  # the routing prompt keeps its own KV state
        )
        if policy is not None:
            agent.router = Router(backend, tools, policy=policy)
        records = []
        for task in data["tasks"]:
            start = time.perf_counter()
            result: AgentResult = agent.ask(task["question"])
            seconds = time.perf_counter() - start
            used = [s for s in result.steps if s.tool]
            first = used[0].tool if used else None
            direct = result.answer
            detected = detect(task["question"], names) if policy else None
            if detected is not None and used and not used[0].error:
                direct = direct_answer(detected, used[0].observation or "", result.answer)
            records.append(
                {
                    "id": task["id"],
                    "half": task["half"],
                    "question": task["question"],
                    "expected_tool": task["tool"],
                    "tool_ok": first == task["tool"],
                    "answer_ok": any(contains(result.answer, a) for a in task["answers"]),
                    "direct_ok": any(contains(direct, a) for a in task["answers"]),
                    "calls": [(s.tool, s.tool_input) for s in used],
                    "answer": result.answer[:100],
                    "direct": direct[:100],
                    "stop": result.stop_reason,
                    "parse_failures": result.parse_failures,
                    "steps": len(result.steps),
                    "seconds": seconds,
                }
            )
    return records


def figures(records: list[dict[str, Any]], routed: bool) -> dict[str, Any]:
    """Accuracies and costs over ``records``."""
    n = max(len(records), 1)
    out: dict[str, Any] = {
        "n": len(records),
        "tool_choice": round(sum(r["tool_ok"] for r in records) / n, 3),
        "answer_accuracy": round(sum(r["answer_ok"] for r in records) / n, 3),
    }
    if routed:
        out["answer_accuracy_direct"] = round(sum(r["direct_ok"] for r in records) / n, 3)
    out["parse_failures"] = sum(r["parse_failures"] for r in records)
    out["mean_steps"] = round(sum(r["steps"] for r in records) / n, 2)
    out["seconds_per_task"] = round(sum(r["seconds"] for r in records) / n, 2)
    return out


def main() -> None:
    """Run the modes and print the failures, then the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--tasks", type=Path, default=Path(__file__).with_name("agent_tasks_v2.json")
    )
    parser.add_argument(
        "--modes", default="baseline,routed,routed_model", help=f"of {', '.join(MODES)}"
    )
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--half", choices=("all", "tune", "heldout"), default="all")
    args = parser.parse_args()
    data = json.loads(args.tasks.read_text())
    all_held_out = data.get("split") == "heldout"
    for i, task in enumerate(data["tasks"], 1):
        task.setdefault("id", i)
        task["half"] = "heldout" if all_held_out or task["id"] % 2 == 0 else "tune"
    if args.half != "all":
        data["tasks"] = [t for t in data["tasks"] if t["half"] == args.half]
    backend = LlamaCppBackend(
        bundled_model_path(),
        name="smollm2-135m",
        n_ctx=2048,
        n_threads=1,
        n_threads_batch=1,
        defaults=SamplingDefaults(temperature=0.0, max_tokens=256, seed=1),
    )
    backend.load()
    report: dict[str, Any] = {
        "bench": "agent",
        "model": "smollm2-135m",
        "tasks": str(args.tasks.name),
        "split": "all held out" if all_held_out else "odd ids tune, even ids held out",
        "web_search": "fixed offline backend",
    }
    halves: dict[str, dict[str, Any]] = {"heldout": {}, "tune": {}}
    for mode in args.modes.split(","):
        records = run_mode(backend, data, mode, args.max_steps)
        routed = MODES[mode][0] is not None
        for r in records:
            ok = r["direct_ok"] if routed else r["answer_ok"]
            if not (r["tool_ok"] and ok):
                half = r["half"]
                shown = {k: r[k] for k in r if k not in ("half", "tool_ok", "answer_ok", "seconds")}
                print(json.dumps({"mode": mode, "half": half, **shown}, ensure_ascii=False))
        for half in ("heldout", "tune"):
            part = [r for r in records if r["half"] == half]
            if part:
                halves[half][mode] = figures(part, routed)
    report.update({half: modes for half, modes in halves.items() if modes})
    print(json.dumps(report))


if __name__ == "__main__":
    main()
