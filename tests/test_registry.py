from pathlib import Path

import pytest

from assistant.bundled import BUNDLED_NAME
from assistant.errors import ChatFormatRequiredError, ConfigError, ModelNotFoundError
from assistant.registry import ModelRegistry, default_name
from tests.conftest import write_gguf


def test_bundled_model_is_always_listed(home: Path, smol_path: Path) -> None:
    entries = ModelRegistry(home).list()
    assert entries[0].name == BUNDLED_NAME
    assert entries[0].path == smol_path
    assert entries[0].builtin


def test_add_get_remove_roundtrip(home: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(home)
    path = write_gguf(tmp_path / "My Model.Q4_K_M.gguf", template="{{ messages }}")
    entry, info = registry.add(path)
    assert entry.name == "my-model.q4_k_m"
    assert info.has_chat_template
    assert registry.get("my-model.q4_k_m").path == path.resolve()
    # Persisted: a fresh registry object over the same home sees it.
    assert [e.name for e in ModelRegistry(home).list()] == [BUNDLED_NAME, "my-model.q4_k_m"]
    removed = registry.remove("my-model.q4_k_m")
    assert removed.path == path.resolve()
    assert path.exists(), "remove must never delete the file"
    assert [e.name for e in registry.list()] == [BUNDLED_NAME]


def test_model_without_template_needs_a_chat_format(home: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(home)
    path = write_gguf(tmp_path / "plain.gguf")
    with pytest.raises(ChatFormatRequiredError, match=r"--chat-format.*chatml"):
        registry.add(path)
    entry, _ = registry.add(path, chat_format="chatml")
    assert registry.get(entry.name).chat_format == "chatml"


def test_unknown_chat_format_lists_choices(home: Path, tmp_path: Path) -> None:
    with pytest.raises(ChatFormatRequiredError, match=r"unknown chat format 'chatmlx'.*llama-3"):
        ModelRegistry(home).add(write_gguf(tmp_path / "p.gguf"), chat_format="chatmlx")


def test_duplicate_and_bad_names(home: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(home)
    path = write_gguf(tmp_path / "m.gguf", template="x")
    registry.add(path, name="m1")
    with pytest.raises(ConfigError, match="already registered"):
        registry.add(path, name="m1")
    with pytest.raises(ConfigError, match="already registered"):
        registry.add(path, name=BUNDLED_NAME)
    with pytest.raises(ConfigError, match="invalid model name"):
        registry.add(path, name="../evil")


def test_bundled_cannot_be_removed(home: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be removed"):
        ModelRegistry(home).remove(BUNDLED_NAME)


def test_unknown_name_lists_known_ones(home: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=f"no model named 'nope'.*{BUNDLED_NAME}"):
        ModelRegistry(home).get("nope")


def test_resolve_accepts_unregistered_paths(home: Path, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "loose.gguf")
    entry = ModelRegistry(home).resolve(str(path))
    assert entry.path == path.resolve()
    with pytest.raises(ModelNotFoundError, match="no file at"):
        ModelRegistry(home).resolve(str(tmp_path / "missing.gguf"))


def test_corrupt_registry_file_is_reported(home: Path) -> None:
    home.mkdir()
    (home / "models.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"models\.json is unreadable"):
        ModelRegistry(home).list()


def test_default_name() -> None:
    assert (
        default_name(Path("/x/Qwen2.5 0.5B-Instruct.Q4_K_M.gguf")) == "qwen2.5-0.5b-instruct.q4_k_m"
    )
