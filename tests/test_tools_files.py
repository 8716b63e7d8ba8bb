"""read_file stays inside the allowed folders, however the path is spelled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.tools.files import PathNotAllowed, confine, make_read_file_tool


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    allowed = tmp_path / "notes"
    (allowed / "sub").mkdir(parents=True)
    (allowed / "todo.txt").write_text("buy milk\n")
    (allowed / "sub" / "deep.md").write_text("# deep\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    os.symlink(secret, allowed / "link_out.txt")
    os.symlink(tmp_path, allowed / "dir_out")
    os.symlink(allowed / "todo.txt", allowed / "link_in.txt")
    return allowed, secret


def test_reads_files_inside_the_folder(tree: tuple[Path, Path]) -> None:
    allowed, _ = tree
    read = make_read_file_tool([allowed])
    assert read.invoke({"path": "todo.txt"}) == "buy milk\n"
    assert read.invoke({"path": "sub/deep.md"}) == "# deep\n"
    assert read.invoke({"path": "./sub/deep.md"}) == "# deep\n"
    assert read.invoke({"path": "link_in.txt"}) == "buy milk\n"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../secret.txt", "'..' is not allowed"),
        ("sub/../../secret.txt", "'..' is not allowed"),
        ("link_out.txt", "no such file"),
        ("dir_out/secret.txt", "no such file"),
        ("~/secret.txt", "absolute paths"),
        ("", "relative to an allowed folder"),
        ("missing.txt", "no such file"),
        ("sub", "no such file"),
        ("todo.txt\x00.png", "relative to an allowed folder"),
    ],
)
def test_refuses_paths_that_escape_or_do_not_exist(
    tree: tuple[Path, Path], name: str, message: str
) -> None:
    allowed, _ = tree
    with pytest.raises(PathNotAllowed, match=message):
        confine(name, [allowed])
    answer = make_read_file_tool([allowed]).invoke({"path": name})
    assert answer.startswith("error: ")
    assert "hunter2" not in answer


def test_refuses_absolute_paths_even_inside_the_folder(tree: tuple[Path, Path]) -> None:
    allowed, secret = tree
    for name in (str(secret), str(allowed / "todo.txt")):
        with pytest.raises(PathNotAllowed, match="absolute paths"):
            confine(name, [allowed])


def test_binary_files_and_long_files(tree: tuple[Path, Path]) -> None:
    allowed, _ = tree
    (allowed / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    (allowed / "long.txt").write_text("a" * 50)
    read = make_read_file_tool([allowed], max_chars=10)
    assert read.invoke({"path": "blob.bin"}) == "error: blob.bin is not a text file"
    assert read.invoke({"path": "long.txt"}) == "a" * 10 + "\n[... cut at 10 characters]"


def test_no_folders_means_nothing_to_read() -> None:
    assert (
        make_read_file_tool([]).invoke({"path": "x"}) == "error: no folders are open to read_file"
    )
