"""The vector store on a real `chroma run` server on loopback, chosen by configuration."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import load_config
from assistant.errors import ConfigError
from assistant.rag import index_for
from tests.fixtures_rag.build import DOCS

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """Start `chroma run` on a free loopback port; stop it afterwards."""
    port = _free_port()
    chroma = Path(sys.executable).parent / "chroma"
    process = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("chroma run did not start") from None
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_ingest_and_search_through_a_chroma_server(
    chroma_server: str, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(DOCS / "kettle.md", folder / "kettle.md")
    monkeypatch.setenv("ASSISTANT_RAG_CHROMA_SERVER", chroma_server)
    index = index_for(load_config())
    assert type(index.store.client).__name__ == "Client"  # the HTTP client, not Persistent
    index.ingest([str(folder)])
    assert index.store.count() == 3
    assert not (home / "documents" / "chroma").exists()  # vectors live on the server
    top = index.search("descaling with vinegar", k=1)[0]
    assert top.heading == "Kettle manual > Descaling"


def test_unreachable_chroma_server_says_how_to_start_it(home: Path) -> None:
    config = load_config({"rag_chroma_server": f"127.0.0.1:{_free_port()}"})
    with pytest.raises(ConfigError, match="chroma run --path DIR"):
        index_for(config)
