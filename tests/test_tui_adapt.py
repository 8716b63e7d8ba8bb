"""/adapt in the app: search tuned to the ingested documents in the background, on the real
index (MiniLM, chromadb and SQLite on disk) and a real (short) training run.

The chat stays usable meanwhile; the status bar shows the steps and the re-embedding; an
ingest waits until the index is switched; the app serves the new embeddings afterwards.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from assistant.backends.scripted import ScriptedBackend
from assistant.rag.index import open_index
from assistant.rag.reembed import active
from tests.test_embed_adapt import CORPUS
from tests.test_tui_app import make_app, settle, shown
from tests.test_tui_sources import _notifications, _send
from tui.app import ChatApp
from tui.widgets.prompt_input import PromptInput
from tui.widgets.status_bar import StatusBar


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tui-adapt") / "documents"
    open_index(folder).ingest(CORPUS)
    return folder


async def _enter(app: ChatApp, pilot: Pilot[Any], text: str) -> None:
    """Send ``text`` as if pasted: at once, so it arrives while the adaptation runs."""
    prompt = app.query_one(PromptInput)
    prompt.focus()
    prompt.load_text(text)
    await pilot.press("enter")
    await pilot.pause()


async def test_adapt_runs_in_the_background_and_the_app_serves_what_it_switched_to(
    ingested: Path, home: Path, tmp_path: Path
) -> None:
    shutil.copytree(ingested, home / "documents")
    app, _ = make_app(ScriptedBackend(["Still here."]))
    backgrounds: list[str] = []
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        bar = app.query_one(StatusBar)
        bar.watch_background = lambda text: backgrounds.append(text)  # type: ignore[attr-defined]
        await _enter(app, pilot, "/adapt 4")
        said = _notifications(app)
        assert any("adapting search to your documents in the background" in n for n in said)
        # While it runs: an ingest is refused (nothing lost: the path stays to send again),
        # a second /adapt too, and the chat answers.
        await _enter(app, pilot, f"/ingest {tmp_path}")
        assert any("/ingest again when it has finished" in n for n in _notifications(app))
        await _enter(app, pilot, "/adapt")
        # (Its own progress notifications may arrive in between: any of them, not the last.)
        assert "search is being adapted already; wait for it to finish" in _notifications(app)
        await _enter(app, pilot, "Are you there?")
        await settle(app, pilot)
        assert shown(app)[-2:] == [("user", "Are you there?"), ("assistant", "Still here.")]
        assert bar.background == ""  # cleared when it ended
        assert any(b.startswith("adapting search: step ") for b in backgrounds)
        last = _notifications(app)[-1]
        index = app.services.index  # opened again after a switch
        if "search adapted to your documents" in last:
            assert "held-out nDCG@10" in last
            assert any(b.startswith("re-embedding for adapted search: ") for b in backgrounds)
            assert index.store.name == active(home / "documents").collection != "documents"
        else:  # judged worse beyond noise: nothing switched, and it says so with both scores
            assert last.startswith("not switched:")
            assert index.store.name == "documents"
        assert index.search("how do I descale the kettle", k=3)
        # Once finished, an ingest is taken again.
        (tmp_path / "tea.md").write_text("# Tea\n\nSteep green tea for two minutes.\n")
        await _send(app, pilot, f"/ingest {tmp_path / 'tea.md'}")
        assert _notifications(app)[-1].startswith("Indexed 1 file")


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("soon", "usage: /adapt [SECONDS]"),
        ("-5", "usage: /adapt [SECONDS]"),
        ("60 more", "usage: /adapt [SECONDS]"),
        ("", "No documents yet: /ingest PATH first"),
    ],
)
async def test_adapt_refuses_bad_arguments_and_an_empty_index(argument: str, expected: str) -> None:
    app, _ = make_app(ScriptedBackend())
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await _send(app, pilot, f"/adapt {argument}".strip())
        assert _notifications(app)[-1].startswith(expected)
        assert app.query_one(StatusBar).background == ""


async def test_adapt_says_why_when_there_are_too_few_chunks(home: Path, tmp_path: Path) -> None:
    (tmp_path / "one.md").write_text("# One\n\nA single short note.\n")
    open_index(home / "documents").ingest([str(tmp_path / "one.md")])
    app, _ = make_app(ScriptedBackend())
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        await _send(app, pilot, "/adapt")
        assert _notifications(app)[-1].startswith("adapting search failed: only 1 chunks")
        assert app.query_one(StatusBar).background == ""


async def test_adapt_revert_goes_back_to_the_unadapted_model(ingested: Path, home: Path) -> None:
    from assistant.rag.embeddings import resolve_model_path
    from assistant.rag.reembed import Embeddings, reembed

    documents = home / "documents"
    shutil.copytree(ingested, documents)
    model = str(resolve_model_path(None))
    reembed(documents, open_index(documents).catalog, Embeddings("documents-x", model, "x"))
    app, _ = make_app(ScriptedBackend())
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(app, pilot)
        assert app.services.index.store.name == "documents-x"
        await _send(app, pilot, "/adapt revert")
        assert _notifications(app)[-1] == "search serves all-minilm-l6-v2"
        assert app.services.index.store.name == "documents" == active(documents).collection
