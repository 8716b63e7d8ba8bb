"""The app's agent steps, risky-tool approval, documents mode, sources panel and ingest."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from assistant.agent import mark_risky
from assistant.backends.scripted import ScriptedBackend
from assistant.config import load_config
from assistant.memory.store import MemoryStore
from assistant.rag.index import Hit
from assistant.tools import make_calculator_tool
from tests.test_tui_app import settle, shown, type_and_send, wait_until
from tui.app import ChatApp
from tui.screens.confirm import ConfirmScreen
from tui.widgets.agent_step import AgentStepView
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.status_bar import StatusBar


def _delete_tool(calls: list[str]) -> BaseTool:
    def delete_file(path: str) -> str:
        calls.append(path)
        return f"deleted {path}"

    tool = StructuredTool.from_function(delete_file, name="delete_file", description="Delete.")
    return mark_risky(tool)


async def test_agent_steps_show_as_collapsible_blocks_and_are_stored() -> None:
    # Arithmetic is routed to the calculator before the model writes a step; the model only
    # writes the final answer.
    backend = ScriptedBackend(["Final Answer: 391"])
    store = MemoryStore.in_memory()
    app = ChatApp(load_config(), backend=backend, store=store, tools=[make_calculator_tool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/tools")
        assert app.query_one(StatusBar).mode == "agent"
        await type_and_send(pilot, "What is 17*23?")
        await settle(app, pilot)
        assert shown(app)[-1] == ("assistant", "391")
        [step] = list(app.query(AgentStepView))
        assert (step.tool, step.tool_input, step.observation) == ("calculator", "17*23", "391")
        assert step.collapsed
        stored = store.messages(app.chat.conversation_id)[-1]  # type: ignore[arg-type]
        assert stored.content == "391" and stored.steps and stored.steps[0]["tool"] == "calculator"
        # Shown again from the store after switching away and back.
        cid = app.chat.conversation_id
        app.chat.show_conversation(None)
        app.chat.show_conversation(cid)
        await pilot.pause()
        assert [s.tool for s in app.query(AgentStepView)] == ["calculator"]


async def test_risky_tool_asks_in_a_modal_and_refusal_stops_it() -> None:
    calls: list[str] = []
    backend = ScriptedBackend(
        ["Action: delete_file\nAction Input: notes.txt", "Final Answer: I did not delete it."]
    )
    app = ChatApp(
        load_config(), backend=backend, store=MemoryStore.in_memory(), tools=[_delete_tool(calls)]
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/tools")
        await type_and_send(pilot, "delete notes.txt")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "delete_file" in app.screen.question  # type: ignore[attr-defined]
        await pilot.press("n")
        await settle(app, pilot)
        assert calls == []
        [step] = list(app.query(AgentStepView))
        assert step.observation == "the user did not allow running delete_file"


async def test_risky_tool_runs_when_approved() -> None:
    calls: list[str] = []
    backend = ScriptedBackend(
        ["Action: delete_file\nAction Input: notes.txt", "Final Answer: Deleted."]
    )
    app = ChatApp(
        load_config(), backend=backend, store=MemoryStore.in_memory(), tools=[_delete_tool(calls)]
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/tools")
        await type_and_send(pilot, "delete notes.txt")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await settle(app, pilot)
        assert calls == ["notes.txt"]
        assert shown(app)[-1] == ("assistant", "Deleted.")


def _hits(tmp: Path) -> list[Hit]:
    doc = tmp / "kettle.md"
    doc.write_text("# Kettle\n\nDescale monthly.\nUse vinegar.\n")
    return [
        Hit(str(doc), None, 3, 4, "Kettle", 0.9, "Descale monthly. Use vinegar.", 0.8),
        Hit(str(tmp / "bike.txt"), None, 1, 2, "", 0.5, "Oil the chain.", 0.6),
    ]


async def test_documents_mode_answers_with_numbered_sources(tmp_path: Path) -> None:
    hits = _hits(tmp_path)
    queries: list[str] = []

    def search(query: str) -> list[Hit]:
        queries.append(query)
        return hits

    backend = ScriptedBackend(["Descale it monthly [1]."])
    app = ChatApp(load_config(), backend=backend, store=MemoryStore.in_memory(), doc_search=search)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/documents")
        await type_and_send(pilot, "How do I clean the kettle?")
        await settle(app, pilot)
        assert queries == ["How do I clean the kettle?"]
        assert shown(app)[-1] == ("assistant", "Descale it monthly [1].")
        prompt = backend.calls[0][0][-1]["content"]
        assert "[1] " + hits[0].location() in prompt and "[2] " in prompt
        panel = app.query_one(SourcesPanel)
        assert panel.display and panel.hits == hits and panel.cited == [1]
        chunk = str(app.query_one("#chunk").render())
        assert "Descale monthly. Use vinegar." in chunk
        assert app.query_one(StatusBar).mode == "documents"
        panel.show(2)
        assert "Oil the chain." in str(app.query_one("#chunk").render())


async def test_documents_mode_says_when_nothing_is_relevant() -> None:
    low = [Hit("/x.txt", None, 1, 1, "", 0.1, "unrelated", 0.05)]
    backend = ScriptedBackend()
    app = ChatApp(
        load_config(), backend=backend, store=MemoryStore.in_memory(), doc_search=lambda q: low
    )
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/documents")
        await type_and_send(pilot, "What is love?")
        await settle(app, pilot)
        assert shown(app)[-1] == ("assistant", "I found nothing about that in your documents.")
        assert backend.calls == []


async def test_opening_a_source_builds_the_editor_command(tmp_path: Path, monkeypatch: Any) -> None:
    """Headless apps cannot suspend: the app says which command to run instead."""
    hits = _hits(tmp_path)
    monkeypatch.setenv("EDITOR", "myeditor")
    app = ChatApp(load_config(), backend=ScriptedBackend(), store=MemoryStore.in_memory())
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        app.chat.turns.show_sources(hits, [1])
        await pilot.pause()
        app.query_one("#source-list").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert any(f"myeditor +3 {hits[0].source}" in str(n.message) for n in app._notifications)


async def test_ingest_runs_in_a_worker_with_progress(tmp_path: Path) -> None:
    seen: list[str] = []

    def ingest(paths: list[str], progress: Any) -> Any:
        for n, name in enumerate(["a.md", "b.md"], 1):
            progress(SimpleNamespace(status=SimpleNamespace(path=f"/d/{name}"), done=n, total=2))
            seen.append(name)
        return SimpleNamespace(
            indexed=[1, 2], chunks=7, unchanged=[], duplicates=[], skipped=[], failed=[]
        )

    app = ChatApp(
        load_config(), backend=ScriptedBackend(), store=MemoryStore.in_memory(), ingest=ingest
    )
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, f"/ingest {tmp_path}")
        await settle(app, pilot)
        assert seen == ["a.md", "b.md"]
        assert any("Indexed 2 files (7 chunks)" in str(n.message) for n in app._notifications)
        await type_and_send(pilot, "/ingest /no/such/place")
        await pilot.pause()
        assert any("no file or folder" in str(n.message) for n in app._notifications)
