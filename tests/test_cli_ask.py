"""``ask`` as users of simonw/llm expect: stdin before the prompt, files, options, a log."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.test_cli import GREEDY, assert_one_line_error, assistant


def _messages(home: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(home / "memory.db") as db:
        return db.execute(
            "SELECT conversation_id, role, content FROM messages ORDER BY conversation_id, seq"
        ).fetchall()


def test_piped_text_and_files_go_before_the_prompt_and_the_turn_is_logged(
    home: Path, tmp_path: Path
) -> None:
    note = tmp_path / "note.md"
    note.write_text("The spare key is under the blue pot.\n")
    first = assistant(
        "ask", "--json", *GREEDY, "-o", "top_p", "0.9", "-f", str(note), "Summarise this.",
        home=home, stdin="Kettle: descale monthly.\n",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    cid = json.loads(first.stdout)["conversation_id"]
    (conversation, role, content), reply = _messages(home)
    assert (conversation, role) == (cid, "user")
    assert content == (
        "Kettle: descale monthly.\n\nnote.md:\n```\nThe spare key is under the blue pot.\n```"
        "\n\nSummarise this."
    )
    assert reply[1] == "assistant" and reply[2] == json.loads(first.stdout)["answer"]
    # -c continues the latest conversation: its earlier turn is in the prompt.
    again = assistant("ask", "--json", *GREEDY, "-c", "And in one word?", home=home)
    data = json.loads(again.stdout)
    assert data["conversation_id"] == cid
    assert [m[1] for m in _messages(home)] == ["user", "assistant", "user", "assistant"]
    assert data["usage"]["prompt_tokens"] > json.loads(first.stdout)["usage"]["prompt_tokens"]


def test_no_log_stores_nothing(home: Path) -> None:
    result = assistant("ask", "--json", *GREEDY, "--no-log", "Say hi.", home=home)
    assert result.returncode == 0, result.stderr
    assert "conversation_id" not in json.loads(result.stdout)
    assert not (home / "memory.db").exists()


def test_bad_ask_options_are_one_line_errors(home: Path, tmp_path: Path) -> None:
    assert_one_line_error(assistant("ask", "-o", "warmth", "3", "hi", home=home), "warmth")
    assert_one_line_error(
        assistant("ask", "-o", "seed", "many", "hi", home=home), "seed", "must be int"
    )
    assert_one_line_error(
        assistant("ask", "-f", str(tmp_path), "hi", home=home), "a folder, not a text file"
    )
    assert_one_line_error(assistant("ask", "-c", "hi", home=home), "no conversation to continue")
