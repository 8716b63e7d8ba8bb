"""Chat formats for GGUF files that carry no chat template of their own.

A GGUF with an embedded template always uses it. For one without, the user picks one of
these names (``--chat-format``); there is never a silent fallback.
"""

from __future__ import annotations

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
