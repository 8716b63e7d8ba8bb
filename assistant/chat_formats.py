"""Chat formats for GGUF files that carry no chat template of their own, or a broken one.

A GGUF with an embedded template uses it (rendered by :mod:`assistant.chat_template`) unless
a format is chosen. For one without, the user picks one of these names (``--chat-format``);
there is never a silent fallback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from assistant.errors import ChatFormatRequiredError

# Name -> formatter function in llama_cpp.llama_chat_format.
CHAT_FORMATS: dict[str, str] = {
    "chatml": "format_chatml",
    "llama-2": "format_llama2",
    "llama-3": "format_llama3",
    "mistral-instruct": "format_mistral_instruct",
    "gemma": "format_gemma",
    "zephyr": "format_zephyr",
    "alpaca": "format_alpaca",
    "qwen": "format_qwen",
    "openchat": "format_openchat",
    "chatglm3": "format_chatglm3",
}


def check_chat_format(name: str | None, *, has_template: bool, model: str) -> str | None:
    """Validate the choice of chat format for a model.

    Returns the format name to use, or None when the model's own template applies.

    Raises:
        ChatFormatRequiredError: no template in the file and no (valid) format chosen.
    """
    choices = ", ".join(CHAT_FORMATS)
    if name is not None and name not in CHAT_FORMATS:
        raise ChatFormatRequiredError(f"unknown chat format {name!r}; choose one of: {choices}")
    if name is None and not has_template:
        raise ChatFormatRequiredError(
            f"{model} has no chat template; choose its format with --chat-format "
            f"(one of: {choices}), e.g. `assistant models add PATH --chat-format chatml`"
        )
    return name


def formatter_for(name: str) -> Any:
    """Return llama-cpp-python's formatter function for chat format ``name``."""
    from llama_cpp import llama_chat_format

    return getattr(llama_chat_format, CHAT_FORMATS[name])


@contextmanager
def deferred_llama_templates() -> Iterator[None]:
    """While ``llama_cpp.Llama`` loads, keep it from compiling the embedded templates.

    ``Llama()`` compiles every template in the GGUF with its own Jinja environment while
    loading, with no option to skip it: a syntax error then fails the load even when a
    ``--chat-format`` was chosen, and a huge constant (Jinja folds ``2 ** 10 ** 10`` at
    compile time there) never lets the load finish. This project renders prompts with
    :class:`ChatTemplate`, so during the load llama-cpp-python's formatter is swapped for one
    that compiles on first use (only ``create_chat_completion`` would use it).
    """
    from llama_cpp import llama_chat_format

    module: Any = llama_chat_format  # its class attribute is swapped, which mypy forbids
    with _PATCH_LOCK:
        original = module.Jinja2ChatFormatter
        module.Jinja2ChatFormatter = _deferred_class(original)
        try:
            yield
        finally:
            module.Jinja2ChatFormatter = original


_PATCH_LOCK = threading.Lock()


def _deferred_class(base: Any) -> Any:
    class DeferredJinja2ChatFormatter(base):  # type: ignore[misc]
        """Compiles the template on first use instead of at construction."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._deferred: tuple[Any, Any] | None = (args, kwargs)

        def __call__(self, **kwargs: Any) -> Any:
            if self._deferred is not None:
                args, init_kwargs = self._deferred
                self._deferred = None
                base.__init__(self, *args, **init_kwargs)
            return base.__call__(self, **kwargs)

    return DeferredJinja2ChatFormatter
