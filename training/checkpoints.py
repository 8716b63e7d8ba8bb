"""Which checkpoint a killed run resumes from: the newest one the Trainer finished writing.

The transformers ``Trainer`` writes a checkpoint in place: the adapter weights, then the
optimizer and scheduler, then the RNG state, and ``trainer_state.json`` last. A kill in
between leaves a folder that ``resume_from_checkpoint=True`` picks anyway (it takes the
highest step) and then fails on ("Can't find a valid checkpoint"), or resumes with a fresh
optimizer from step 0. So a resume checks each file, newest checkpoint first.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

PREFIX = "checkpoint-"
ASIDE = "incomplete"  # where incomplete checkpoints go; the Trainer only sees checkpoint-*
# What reading a damaged file can raise: cut short, not JSON, JSON of the wrong shape.
_DAMAGED = (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError)


def step(folder: Path) -> int:
    """The training step a ``checkpoint-N`` folder was saved at."""
    return int(folder.name.removeprefix(PREFIX))


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds every file the Trainer writes into a LoRA checkpoint, whole."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
        if state["global_step"] != step(folder):
            return False
        if not _whole_safetensors(folder / "adapter_model.safetensors"):
            return False
    except _DAMAGED:
        return False
    # torch.save writes a zip whose directory comes last: a file cut short has none.
    pickles = [folder / "optimizer.pt", folder / "scheduler.pt", *folder.glob("rng_state*.pth")]
    return all(zipfile.is_zipfile(path) for path in pickles)


def _whole_safetensors(path: Path) -> bool:
    """Whether a safetensors file is as long as its header says (a header, then the data)."""
    with path.open("rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(size))
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    return path.stat().st_size == 8 + size + max(ends, default=0)


def resume_point(checkpoints: Path) -> tuple[Path | None, list[Path]]:
    """The newest complete checkpoint (None: start over) and the incomplete ones after it."""
    found = [
        p
        for p in checkpoints.glob(f"{PREFIX}*")
        if p.is_dir() and p.name.removeprefix(PREFIX).isdigit()
    ]
    broken: list[Path] = []
    for folder in sorted(found, key=step, reverse=True):
        if is_complete(folder):
            return folder, broken[::-1]
        broken.append(folder)
    return None, broken[::-1]


def set_aside(broken: list[Path], resume: Path | None) -> str:
    """Move incomplete checkpoints into ``incomplete/``; return the one line that says so.

    Moved rather than deleted: they are the user's files. Out of the way, because the
    resumed run saves the same step names again and the Trainer's rotation only counts
    ``checkpoint-*`` folders.
    """
    aside = broken[0].parent / ASIDE
    aside.mkdir(exist_ok=True)
    for folder in broken:
        target = aside / folder.name
        if target.exists():  # set aside by an earlier kill at the same step: as incomplete
            shutil.rmtree(target)
        folder.rename(target)
    names = ", ".join(folder.name for folder in broken)
    one = len(broken) == 1
    where = aside / broken[0].name if one else aside
    then = f"resuming from {resume.name}" if resume else "starting from step 0"
    return (
        f"{names} {'is' if one else 'are'} incomplete (the run stopped while saving "
        f"{'it' if one else 'them'}); moved {'it' if one else 'them'} to {where}; {then}"
    )
