"""finetune killed after its last step, while writing its results: the rerun finishes it.

Found by the kill -9 soak (bench/soak.py): 8 of 20 kills landed after the adapter was saved
and before manifest.json, and every rerun then refused with "RUN is not empty (adapter)".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

HP = {"rank": 2, "alpha": 4, "max_steps": 2, "batch_size": 2, "save_steps": 1}


class _Kill(Exception):
    """Stands in for kill -9."""


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, Any]:
    """A tiny llama (HF directory) and a data directory prepared for it."""
    from tests.tiny_training import tiny_prepared_run

    return {**tiny_prepared_run(tmp_path, examples=4), "run": tmp_path / "run"}


def _finetune(tiny: dict[str, Any]) -> dict[str, Any]:
    from training.finetune import FinetuneConfig, finetune

    config = FinetuneConfig(**HP)  # type: ignore[arg-type]
    return finetune(tiny["data"], tiny["run"], tiny["base"], tiny["home"], config, False)


def test_a_run_killed_while_writing_its_results_finishes_when_run_again(
    tiny: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.finetune

    def killed(*args: object) -> None:
        raise _Kill

    with monkeypatch.context() as patch:
        patch.setattr(training.finetune, "plot_losses", killed)  # the adapter is saved first
        with pytest.raises(_Kill):
            _finetune(tiny)
    run = tiny["run"]
    (run / ".manifest.k1ll3d.json").write_text('{"cut sh')  # write_manifest's temp, cut short
    assert (run / "adapter").is_dir() and not (run / "manifest.json").exists()
    manifest = _finetune(tiny)
    assert manifest["metrics"]["steps"] == 2 and manifest["resumed"] is True
    assert [int(step) for step, _ in manifest["losses"]] == [1, 2]
    assert (run / "loss.png").is_file() and not list(run.glob(".manifest.*"))


def test_leftover_results_of_another_run_are_still_refused(tiny: dict[str, Any]) -> None:
    from training.manifest import TrainingError

    run = tiny["run"]
    (run / "adapter").mkdir(parents=True)
    (run / ".run-key").write_text("some other run")
    with pytest.raises(TrainingError, match=r"is not empty \(adapter\)"):
        _finetune(tiny)
