"""Read and validate a GGUF file's header without loading the model.

``gguf.GGUFReader`` parses every vocabulary entry into numpy objects (about 6 s for a
49k-token vocabulary here); this reader walks the header once with ``struct`` and keeps only
the scalar metadata, so ``assistant models info`` answers in milliseconds. It also checks that
every tensor's data lies inside the file, which is how a truncated download is caught before
llama.cpp sees it.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from assistant.errors import InvalidModelError, ModelNotFoundError

GGUF_MAGIC = b"GGUF"
_ALIGNMENT_KEY = "general.alignment"

# GGUF metadata value types (gguf spec): id -> struct format for scalars.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
# Arrays of arrays are legal GGUF but never used; deeper nesting than this is a corrupt file
# (and unbounded nesting would exhaust Python's recursion limit).
_MAX_ARRAY_DEPTH = 4


@dataclass(frozen=True)
class GGUFInfo:
    """What ``assistant models info`` shows about a GGUF file."""

    path: Path
    version: int
    architecture: str
    name: str | None
    parameters: int
    file_type: str
    tensor_types: dict[str, int]
    context_length: int | None
    chat_template: str | None
    size_bytes: int
    is_lora: bool
    metadata: dict[str, Any] = field(repr=False)

    @property
    def has_chat_template(self) -> bool:
        """Whether the file embeds a chat template."""
        return bool(self.chat_template)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the template itself is left out, its presence kept)."""
        return {
            "path": str(self.path),
            "gguf_version": self.version,
            "architecture": self.architecture,
            "name": self.name,
            "parameters": self.parameters,
            "quantization": self.file_type,
            "tensor_types": self.tensor_types,
            "context_length": self.context_length,
            "chat_template": self.has_chat_template,
            "size_bytes": self.size_bytes,
            "adapter": self.is_lora,
        }


class _Cursor:
    """Sequential little-endian reads over a buffer; raises on reads past the end."""

    def __init__(self, buf: mmap.mmap | bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise EOFError
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.take("<Q")
        if self.pos + length > len(self.buf):
            raise EOFError
        raw = self.buf[self.pos : self.pos + length]
        self.pos += length
        return bytes(raw).decode("utf-8", errors="replace")

    def skip_value(self, vtype: int) -> None:
        if vtype in _SCALARS:
            self.pos += struct.calcsize(_SCALARS[vtype])
        elif vtype == _STRING:
            length = self.take("<Q")  # read first: take() moves pos
            self.pos += length
        else:
            raise ValueError(f"unknown metadata type {vtype}")
        if self.pos > len(self.buf):
            raise EOFError

    def value(self, vtype: int, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            if depth >= _MAX_ARRAY_DEPTH:
                raise ValueError(f"arrays nested more than {_MAX_ARRAY_DEPTH} deep")
            item_type = self.take("<I")
            count = self.take("<Q")
            if item_type in _SCALARS and item_type != _STRING and count > 64:
                # Large numeric arrays (token types, scores) are skipped, not decoded.
                self.pos += count * struct.calcsize(_SCALARS[item_type])
                if self.pos > len(self.buf):
                    raise EOFError
                return f"<array of {count}>"
            if count > 64:
                for _ in range(count):
                    self.skip_value(item_type)
                return f"<array of {count}>"
            return [self.value(item_type, depth + 1) for _ in range(count)]
        raise ValueError(f"unknown metadata type {vtype}")


def _tensor_bytes(shape: list[int], type_id: int) -> tuple[int, str]:
    try:
        qtype = GGMLQuantizationType(type_id)
        block, type_size = GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError) as exc:
        raise ValueError(f"unknown tensor type {type_id}") from exc
    n_elements = 1
    for dim in shape:
        n_elements *= dim
    return n_elements * type_size // block, qtype.name


def _file_type_name(metadata: dict[str, Any], tensor_types: dict[str, int]) -> str:
    file_type = metadata.get("general.file_type")
    if isinstance(file_type, int):
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_")
        except ValueError:
            pass
    # No or unknown file_type: name the type holding most tensors.
    return max(tensor_types, key=lambda k: tensor_types[k]) if tensor_types else "unknown"


def read_gguf_info(path: str | Path) -> GGUFInfo:
    """Read and check the header of the GGUF file at ``path``.

    Raises:
        ModelNotFoundError: nothing (or a directory) at ``path``.
        InvalidModelError: not a GGUF file, or truncated/corrupt.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        what = "a directory" if path.is_dir() else "no file"
        raise ModelNotFoundError(
            f"{what} at {path}; pass the path of a .gguf file "
            "or a name from `assistant models list`"
        )
    try:
        return _read(path)
    except OSError as exc:
        raise InvalidModelError(
            f"cannot read {path} ({exc.strerror or exc}); check its permissions"
        ) from exc


def _read(path: Path) -> GGUFInfo:
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(4)
        if head != GGUF_MAGIC:
            raise InvalidModelError(
                f"{path} is not a GGUF file (it starts with {head!r}, not b'GGUF'); "
                "convert it with llama.cpp's convert_hf_to_gguf.py or choose a .gguf file"
            )
        try:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(path, buf, size)
        except (EOFError, ValueError, OverflowError, struct.error) as exc:
            detail = "it ends inside its header" if isinstance(exc, EOFError) else str(exc)
            raise InvalidModelError(
                f"{path} is a corrupt or truncated GGUF file ({detail}); download or copy it again"
            ) from exc


def _parse(path: Path, buf: mmap.mmap, size: int) -> GGUFInfo:
    cur = _Cursor(buf)
    cur.pos = 4
    version = cur.take("<I")
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}")
    n_tensors = cur.take("<Q")
    n_kv = cur.take("<Q")
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise ValueError("implausible tensor or key count")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        metadata[key] = cur.value(cur.take("<I"))
    tensors: list[tuple[str, list[int], int, int]] = []
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.take("<I")
        if n_dims > 8:
            raise ValueError(f"tensor {name!r} has {n_dims} dimensions")
        shape = [cur.take("<Q") for _ in range(n_dims)]
        tensors.append((name, shape, cur.take("<I"), cur.take("<Q")))
    alignment = metadata.get(_ALIGNMENT_KEY, 32)
    # llama.cpp accepts only a power of two; anything else would also break the arithmetic.
    if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"invalid {_ALIGNMENT_KEY} {alignment!r}")
    data_start = -(-cur.pos // alignment) * alignment
    parameters = 0
    tensor_types: dict[str, int] = {}
    for name, shape, type_id, offset in tensors:
        n_bytes, type_name = _tensor_bytes(shape, type_id)
        end = data_start + offset + n_bytes
        if end > size:
            raise ValueError(
                f"tensor {name!r} ends at byte {end} but the file has {size} bytes (truncated)"
            )
        count = 1
        for dim in shape:
            count *= dim
        parameters += count
        tensor_types[type_name] = tensor_types.get(type_name, 0) + 1
    # Values of the wrong type are treated as absent: they come from the file, not from us.
    arch = _typed(metadata, "general.architecture", str) or "unknown"
    ctx = _typed(metadata, f"{arch}.context_length", int)
    template = metadata.get("tokenizer.chat_template")
    return GGUFInfo(
        path=path,
        version=version,
        architecture=arch,
        name=_typed(metadata, "general.name", str),
        parameters=parameters,
        file_type=_file_type_name(metadata, tensor_types),
        tensor_types=tensor_types,
        context_length=ctx if ctx is not None and ctx > 0 else None,
        chat_template=template if isinstance(template, str) else None,
        size_bytes=size,
        is_lora=metadata.get("general.type") == "adapter",
        metadata=metadata,
    )


def _typed(metadata: dict[str, Any], key: str, kind: type[Any]) -> Any:
    """``metadata[key]`` if it has type ``kind`` (bool is not an int here), else None."""
    value = metadata.get(key)
    return value if type(value) is kind else None
