"""The few error classes the core raises; each message says what to do next.

The CLI turns them into a one-line message and a non-zero exit, the TUI into a
notification that keeps the user's text.
"""


class AssistantError(Exception):
    """Base class: a problem the user can act on (never a bug)."""

    exit_code = 1


class ConfigError(AssistantError):
    """The configuration file, an environment variable or a flag is invalid."""

    exit_code = 2


class ModelNotFoundError(AssistantError):
    """No registered model has that name and no file exists at that path."""


class InvalidModelError(AssistantError):
    """The file is not a usable GGUF (not GGUF at all, truncated or corrupt)."""


class UnsupportedArchitectureError(AssistantError):
    """llama.cpp cannot run the model's architecture."""


class ChatFormatRequiredError(AssistantError):
    """The GGUF has no chat template and no chat format was chosen."""


class ContextOverflowError(AssistantError):
    """The prompt does not fit the model's context window."""


class BackendUnavailableError(AssistantError):
    """The configured inference server cannot be reached or answered badly."""


class DocumentNotFoundError(AssistantError):
    """A path given to ingest, or a source given to remove, names nothing."""
