"""Inference backends: in-process llama.cpp, an OpenAI-compatible server, a scripted fake."""

from assistant.backends.base import (
    Backend,
    ChatMessage,
    Done,
    Event,
    GenerationOptions,
    Timings,
    Token,
    Usage,
)

__all__ = [
    "Backend",
    "ChatMessage",
    "Done",
    "Event",
    "GenerationOptions",
    "Timings",
    "Token",
    "Usage",
]
