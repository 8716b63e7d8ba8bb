"""What a user reads on stderr: no library warning that looks like a broken install."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from assistant.logs import NOISY_LOGGERS, quiet_library_noise
from tests.test_cli import assistant

# On CPUs with AVX512-BF16, importing bitsandbytes (peft imports it, transformers imports
# peft for sentence-transformers) warns that the optional `kernels` package is missing.
NOISE = ("kernels-community", "Failed to load CPU gemm_4bit_forward", "pip install kernels")


def test_library_warnings_are_quieted(capsys: pytest.CaptureFixture[str]) -> None:
    """Machine-independent: the logger bitsandbytes warns through lets only errors out."""
    quiet_library_noise()
    for name in NOISY_LOGGERS:
        logging.getLogger(name).warning("Failed to load CPU gemm_4bit_forward (test)")
        assert not logging.getLogger(name).isEnabledFor(logging.WARNING)
        assert logging.getLogger(name).isEnabledFor(logging.ERROR)
    assert "gemm_4bit" not in capsys.readouterr().err


def test_ingest_and_ask_docs_print_no_library_noise(home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "backup.md").write_text("# Backups\n\nThe rotation keeps seven daily copies.\n")
    runs = [
        assistant("ingest", str(notes), home=home),
        assistant("ask", "--docs", "--json", "--max-tokens", "8", "How many copies?", home=home),
    ]
    for result in runs:
        assert result.returncode == 0, result.stderr
        for needle in NOISE:
            assert needle not in result.stderr, result.stderr
    # `ask --docs` searched (the path `search` takes too) and found the note.
    assert json.loads(runs[1].stdout)["sources"][0]["source"].endswith("backup.md")
