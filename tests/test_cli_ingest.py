"""`assistant ingest` and `assistant sources` as a user meets them: quiet re-runs, missing
paths, duplicates, extensionless text, a progress bar on a terminal, removing sources
(kill -9 safe) and files gone from disk. Real MiniLM, chromadb and SQLite on disk."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from assistant.cli import cli
from assistant.rag.index import DocumentIndex, open_index
from assistant.rag.loaders import sniff_text
from tests.test_cli import assert_one_line_error, assistant

NOTES = {
    "kettle.md": "# Kettle\n\nDescale the kettle monthly with white vinegar.\n",
    "bike.txt": "Oil the bike chain every week and check the tyre pressure.\n",
    "garden.rst": "Garden\n======\n\nWater the tomato plants at dawn.\n",
    "lighthouse.txt": "The lighthouse on Skerry Point is repainted every June.\n",
}


def _folder(path: Path, files: dict[str, str | bytes]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = path / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return path


def _run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _index(home: Path) -> DocumentIndex:
    return open_index(home / "documents")


def _listed(home: Path) -> dict[str, str]:
    return {s["path"]: s["status"] for s in json.loads(_run("sources", "--json").stdout)}


# -- ingest ---------------------------------------------------------------------------------


def test_a_second_ingest_of_unchanged_files_prints_one_summary_line(tmp_path: Path) -> None:
    notes = _folder(tmp_path / "notes", dict(NOTES))
    first = _run("ingest", str(notes))
    assert first.exit_code == 0, first.output
    assert first.output.count("] indexed ") == 4  # not a terminal: a line a file
    again = _run("ingest", str(notes))
    assert again.exit_code == 0, again.output
    [line] = again.output.splitlines()
    assert line.startswith("indexed 0 files, 4 unchanged in ")


def test_a_missing_path_is_a_one_line_error_and_nothing_is_ingested(
    tmp_path: Path, home: Path
) -> None:
    notes = _folder(tmp_path / "notes", {"kettle.md": NOTES["kettle.md"]})
    result = assistant("ingest", str(notes), str(tmp_path / "typo"), home=home)
    assert_one_line_error(result, "no such file or folder", str(tmp_path / "typo"))
    assert "nothing was ingested" in result.stderr
    assert _listed(home) == {}  # the good path waits for a corrected command
    glob = _run("ingest", str(tmp_path / "none-*.md"))
    assert glob.exit_code == 1 and "no such file or folder" in glob.output
    assert _listed(home) == {}
    assert _run("ingest", str(notes)).exit_code == 0
    assert _listed(home) == {str(notes / "kettle.md"): "indexed"}


def test_the_same_content_in_two_folders_is_indexed_once(tmp_path: Path, home: Path) -> None:
    notes = _folder(tmp_path / "notes", dict(NOTES))
    backup = _folder(tmp_path / "backup", {"kettle.md": NOTES["kettle.md"], "new.txt": "Fresh."})
    result = _run("ingest", str(notes), str(backup))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("indexed 5 files (5 chunks), 0 unchanged, 1 duplicate in ")
    assert lines[1] == f"duplicate: {backup}/kettle.md (same content as {notes}/kettle.md)"
    index = _index(home)
    assert index.store.count() == index.catalog.chunk_count() == 5
    hits = index.search("descale the kettle with vinegar", k=5)
    assert [h.source for h in hits if "vinegar" in h.text] == [f"{notes}/kettle.md"]

    # Later runs too: a copy ingested on its own is recognised, and stays unchanged.
    later = _folder(tmp_path / "later", {"bike copy.txt": NOTES["bike.txt"]})
    report = json.loads(_run("ingest", str(later), "--json").stdout)
    assert report["duplicates"] == [
        {"path": f"{later}/bike copy.txt", "same_as": f"{notes}/bike.txt"}
    ]
    again = _run("ingest", str(notes), str(backup), str(later))
    assert len(again.output.splitlines()) == 1
    assert again.output.startswith("indexed 0 files, 7 unchanged in ")


def test_removing_the_original_indexes_its_duplicate(tmp_path: Path, home: Path) -> None:
    notes = _folder(tmp_path / "notes", {"kettle.md": NOTES["kettle.md"]})
    backup = _folder(tmp_path / "backup", {"kettle.md": NOTES["kettle.md"]})
    _run("ingest", str(notes), str(backup))
    result = _run("sources", "remove", str(notes / "kettle.md"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"removed {notes}/kettle.md",
        f"indexed {backup}/kettle.md (it had the content of a removed file)",
    ]
    assert _listed(home) == {str(backup / "kettle.md"): "indexed"}
    [hit] = _index(home).search("descale kettle vinegar", k=1)
    assert hit.source == str(backup / "kettle.md")


def test_a_duplicate_is_indexed_when_its_original_changes(tmp_path: Path, home: Path) -> None:
    """The copy's folder sorts first, so resync meets it before the changed original."""
    copy = _folder(tmp_path / "a-copy", {"kettle.md": NOTES["kettle.md"]})
    notes = _folder(tmp_path / "notes", {"kettle.md": NOTES["kettle.md"]})
    _run("ingest", str(notes), str(copy))
    assert _listed(home)[str(copy / "kettle.md")] == "duplicate"
    (notes / "kettle.md").write_text("# Kettle\n\nThe kettle was replaced by a samovar.\n")
    report = json.loads(_run("resync", "--json").stdout)
    assert sorted(s["path"] for s in report["indexed"]) == [
        str(copy / "kettle.md"),
        str(notes / "kettle.md"),
    ]
    assert _listed(home) == {
        str(copy / "kettle.md"): "indexed",
        str(notes / "kettle.md"): "indexed",
    }
    [hit] = _index(home).search("descale the kettle with vinegar", k=1, mode="keyword")
    assert hit.source == str(copy / "kettle.md")


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"# Project\n\nRead me first.\n", ""),
        ("Café crème, 東京 ☕\n".encode(), ""),
        ("é".encode() * 4095 + b"\xc3", ""),  # a character cut by the sample's end
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary file (no extension, contains NUL bytes)"),
        (b"caf\xe9 cr\xe8me\n", "binary file (no extension, not UTF-8 text at offset 3)"),
    ],
    ids=["ascii", "utf8", "cut-utf8", "elf", "latin1"],
)
def test_sniff_text_tells_text_from_binary(tmp_path: Path, head: bytes, reason: str) -> None:
    path = tmp_path / "file"
    path.write_bytes(head)
    assert sniff_text(path) == reason


def test_extensionless_text_files_are_ingested_and_binaries_skipped(
    tmp_path: Path, home: Path
) -> None:
    folder = _folder(
        tmp_path / "project",
        {
            "README": "This tool converts recipes into shopping lists.\n",
            "LICENSE": "Permission is hereby granted, free of charge, to any person.\n",
            "Makefile": "test:\n\tpytest -q\n",
            "hello": b"\x7fELF\x02\x01\x01\x00" + bytes(64),
            "notes": b"caf\xe9\n",
        },
    )
    report = json.loads(_run("ingest", str(folder), "--json").stdout)
    assert sorted(Path(s["path"]).name for s in report["indexed"]) == [
        "LICENSE",
        "Makefile",
        "README",
    ]
    assert {Path(s["path"]).name: s["reason"] for s in report["skipped"]} == {
        "hello": "binary file (no extension, contains NUL bytes)",
        "notes": "binary file (no extension, not UTF-8 text at offset 3)",
    }
    [hit] = _index(home).search("shopping lists from recipes", k=1)
    assert hit.source == str(folder / "README")


def _run_in_terminal(args: list[str], home: Path) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return all it wrote."""
    env = {**os.environ, "ASSISTANT_HOME": str(home), "TERM": "xterm", "COLUMNS": "100"}
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant", *args],
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    process.wait(timeout=10)
    os.close(master)
    assert process.returncode == 0, b"".join(chunks)
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_a_progress_bar_and_a_pipe_gets_lines(tmp_path: Path, home: Path) -> None:
    notes = _folder(tmp_path / "notes", dict(NOTES))
    shown = _run_in_terminal(["ingest", str(notes)], home)
    assert "indexing  [####" in shown and "4/4" in shown
    assert "] indexed " not in shown  # no line a file on a terminal
    assert "indexed 4 files (4 chunks), 0 unchanged in " in shown
    piped = assistant("ingest", str(notes), home=home)
    assert piped.returncode == 0 and "[####" not in piped.stderr
    assert piped.stdout.startswith("indexed 0 files, 4 unchanged in ")


# -- sources ---------------------------------------------------------------------------------


def test_sources_remove_by_path_id_and_folder_clears_vectors_and_keywords(
    tmp_path: Path, home: Path
) -> None:
    notes = _folder(tmp_path / "notes", dict(NOTES))
    old = _folder(tmp_path / "notes" / "old", {"a.txt": "Alpha archive.", "b.txt": "Beta box."})
    _run("ingest", str(notes))
    index = _index(home)
    assert index.store.count() == index.catalog.chunk_count() == 6
    ids = {Path(s["path"]).name: s["id"] for s in json.loads(_run("sources", "--json").stdout)}

    bad = _run("sources", "remove", str(notes / "kettle.md"), "no-such-thing")
    assert bad.exit_code == 1 and "no ingested source is no-such-thing" in bad.output
    assert index.store.count() == 6  # one bad argument: nothing removed

    result = _run("sources", "remove", str(notes / "kettle.md"), str(ids["bike.txt"]), str(old))
    assert result.exit_code == 0, result.output
    assert sorted(Path(line.split()[-1]).name for line in result.stdout.splitlines()) == [
        "a.txt", "b.txt", "bike.txt", "kettle.md",
    ]  # fmt: skip
    assert sorted(Path(p).name for p in _listed(home)) == ["garden.rst", "lighthouse.txt"]
    index = _index(home)
    assert index.store.count() == index.catalog.chunk_count() == 2
    for mode in ("keyword", "dense"):
        sources = {Path(h.source).name for h in index.search("kettle vinegar bike chain", 5, mode)}
        assert sources <= {"garden.rst", "lighthouse.txt"}, mode
    assert _run("sources", "remove").exit_code == 2  # says what to give


def test_listing_marks_files_gone_from_disk_and_prune_drops_them(
    tmp_path: Path, home: Path
) -> None:
    notes = _folder(tmp_path / "notes", dict(NOTES))
    _run("ingest", str(notes))
    (notes / "bike.txt").unlink()
    (notes / "garden.rst").unlink()
    listing = _run("sources").stdout.splitlines()
    gone = [line for line in listing if "missing" in line]
    assert len(gone) == 2 and all("no longer on disk" in line for line in gone)
    assert gone[0].endswith(f"missing   {notes}/bike.txt  no longer on disk")
    assert listing[-1] == (
        "2 listed files are no longer on disk; `assistant sources prune` drops them"
    )
    data = {Path(s["path"]).name: s["exists"] for s in json.loads(_run("sources", "--json").stdout)}
    assert data == {
        "bike.txt": False, "garden.rst": False, "kettle.md": True, "lighthouse.txt": True,
    }  # fmt: skip

    removed = _run("sources", "remove", "--missing", str(notes / "kettle.md"))
    assert sorted(Path(x.split()[-1]).name for x in removed.stdout.splitlines()) == [
        "bike.txt", "garden.rst", "kettle.md",
    ]  # fmt: skip
    (notes / "lighthouse.txt").unlink()
    assert _run("sources", "prune").stdout == f"removed {notes}/lighthouse.txt\n"
    assert _run("sources", "prune").stdout == "nothing to remove: every listed file is on disk\n"
    assert _listed(home) == {}
    index = _index(home)
    assert index.store.count() == index.catalog.chunk_count() == 0


_KILL = """
import os, signal, sys
from pathlib import Path
from assistant.rag.index import open_index

index = open_index(Path(sys.argv[1]))
owner = index.store if sys.argv[3] == "store" else index.catalog
target = getattr(owner, sys.argv[2])

def killed(*args, **kwargs):
    if sys.argv[4] == "after":
        target(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

setattr(owner, sys.argv[2], killed)
if sys.argv[6] == "remove":
    index.remove(sys.argv[5])
else:  # the file became unreadable: its old chunks go as it is marked failed
    Path(sys.argv[5]).write_bytes(b"\\x00\\x01binary now")
    index.ingest([sys.argv[5]])
"""


@pytest.mark.parametrize(
    ("method", "owner", "when", "action"),
    [
        ("delete_path", "store", "before", "remove"),  # catalog forgot it, vectors still there
        ("delete_path", "store", "after", "remove"),  # vectors gone too, the queue not cleared
        ("removal_done", "catalog", "before", "remove"),
        ("delete_path", "store", "before", "fail"),  # now binary: marked failed, vectors left
    ],
    ids=["before-vectors", "after-vectors", "before-queue-cleared", "failed-before-vectors"],
)
def test_a_removal_killed_midway_is_never_half_visible(
    tmp_path: Path, home: Path, method: str, owner: str, when: str, action: str
) -> None:
    """The catalog's commit is the removal's commit: killed at any later point, the file
    is gone from the listing (or listed as failed) and from every search after the restart."""
    notes = _folder(tmp_path / "notes", dict(NOTES))
    _run("ingest", str(notes))
    target = str(notes / "kettle.md")
    script = tmp_path / "kill.py"
    script.write_text(_KILL)
    killed = subprocess.run(
        [sys.executable, str(script), str(home / "documents"), method, owner, when, target, action],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    # After the restart: gone from the listing, from keyword and from dense search.
    assert _listed(home).get(target) == (None if action == "remove" else "failed")
    index = _index(home)
    assert index.store.count() == index.catalog.chunk_count() == 3
    assert index.catalog.pending_removals() == []
    for mode in ("keyword", "dense", "hybrid"):
        assert all(h.source != target for h in index.search("descale kettle vinegar", 5, mode))
