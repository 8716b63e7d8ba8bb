from pathlib import Path

import pytest

from assistant.errors import InvalidModelError, ModelNotFoundError
from assistant.gguf_info import read_gguf_info
from tests.conftest import write_gguf


def test_bundled_model_metadata(smol_path: Path) -> None:
    info = read_gguf_info(smol_path)
    assert info.architecture == "llama"
    assert info.parameters == 134_515_008
    assert info.file_type == "Q4_1"
    assert info.context_length == 8192
    assert info.has_chat_template
    assert "<|im_start|>" in (info.chat_template or "")
    assert info.tensor_types == {"Q4_1": 210, "Q8_0": 1, "F32": 61}
    assert not info.is_lora


def test_crafted_file_without_template(tmp_path: Path) -> None:
    info = read_gguf_info(write_gguf(tmp_path / "t.gguf", arch="qwen2"))
    assert info.architecture == "qwen2"
    assert info.parameters == 32
    assert info.context_length == 128
    assert not info.has_chat_template


def test_truncated_file_is_reported(smol_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(smol_path.read_bytes()[:40_000_000])
    with pytest.raises(InvalidModelError, match="truncated"):
        read_gguf_info(cut)


def test_file_cut_inside_header(smol_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(smol_path.read_bytes()[:5000])
    with pytest.raises(InvalidModelError, match="ends inside its header"):
        read_gguf_info(cut)


def test_corrupt_metadata_type(tmp_path: Path) -> None:
    good = write_gguf(tmp_path / "g.gguf").read_bytes()
    # Overwrite the type of the first key/value pair with an invalid type id.
    key_len = int.from_bytes(good[24:32], "little")
    type_at = 32 + key_len
    bad = good[:type_at] + (99).to_bytes(4, "little") + good[type_at + 4 :]
    (tmp_path / "bad.gguf").write_bytes(bad)
    with pytest.raises(InvalidModelError, match="corrupt"):
        read_gguf_info(tmp_path / "bad.gguf")


def test_not_gguf(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(InvalidModelError, match="not a GGUF file"):
        read_gguf_info(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no file at"):
        read_gguf_info(tmp_path / "nope.gguf")
    with pytest.raises(ModelNotFoundError, match="a directory at"):
        read_gguf_info(tmp_path)
