"""A folder or a named pipe where a file is expected: one line that says which (issue #18).

Both were called "no file at PATH" (or, for `models add DIR`, a three-line usage error),
which sends the user looking for a file that is right there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_cli import assert_one_line_error, assistant

KINDS = {
    "folder": "is a folder, not a file",
    "fifo": "is not a regular file (a named pipe)",
}


def _make(kind: str, path: Path) -> Path:
    if kind == "folder":
        path.mkdir()
    else:
        os.mkfifo(path)
    return path


@pytest.mark.parametrize("kind", list(KINDS))
def test_models_add_says_what_is_there_instead_of_a_file(
    home: Path, tmp_path: Path, kind: str
) -> None:
    path = _make(kind, tmp_path / "model.gguf")
    result = assistant("models", "add", str(path), home=home)
    assert_one_line_error(result, f"{path} {KINDS[kind]}", "pass the path of a .gguf file")


@pytest.mark.parametrize("kind", list(KINDS))
def test_model_option_says_what_is_there_instead_of_a_file(
    home: Path, tmp_path: Path, kind: str
) -> None:
    path = _make(kind, tmp_path / "model.gguf")
    result = assistant("ask", "--model", str(path), "hi", home=home)
    assert_one_line_error(result, f"{path} {KINDS[kind]}")


@pytest.mark.parametrize("kind", list(KINDS))
def test_train_prepare_says_what_is_there_instead_of_a_file(
    home: Path, tmp_path: Path, kind: str
) -> None:
    path = _make(kind, tmp_path / "examples.jsonl")
    result = assistant("train", "prepare", str(path), "--out", str(tmp_path / "d"), home=home)
    assert_one_line_error(result, f"{path} {KINDS[kind]}", "pass JSONL files")
    assert not (tmp_path / "d").exists()
