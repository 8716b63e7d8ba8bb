"""The app on the real bundled model: an answer, stored, and a budget counted by its tokenizer."""

from __future__ import annotations

from assistant.backends.llama_local import LlamaCppBackend
from assistant.config import load_config
from assistant.memory.store import MemoryStore
from tests.test_tui_app import settle, shown, type_and_send
from tui.app import ChatApp
from tui.widgets.context_bar import ContextBar
from tui.widgets.status_bar import StatusBar


async def test_real_model_answers_and_the_budget_uses_its_tokenizer(
    smol: LlamaCppBackend,
) -> None:
    store = MemoryStore.in_memory()
    app = ChatApp(load_config(), backend=smol, store=store)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "What is the capital of France?")
        await settle(app, pilot)
        role, text = shown(app)[-1]
        assert role == "assistant" and text.strip()
        cid = app.chat.conversation_id
        assert cid is not None
        assert store.messages(cid)[-1].content == text
        budget = app.query_one(ContextBar).budget
        history = [
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": text},
        ]
        assert budget is not None and budget.history == smol.count_prompt_tokens(history)
        assert budget.context == smol.context_length
        assert app.query_one(StatusBar).tokens_per_s
