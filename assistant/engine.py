"""Build the configured backend: the one place that turns a Config into a running model."""

from __future__ import annotations

from assistant.backends.base import Backend
from assistant.backends.llama_local import LlamaCppBackend, SamplingDefaults
from assistant.backends.openai_server import OpenAIServerBackend
from assistant.config import Config
from assistant.errors import ConfigError, ModelNotFoundError
from assistant.registry import ModelEntry, ModelRegistry


def resolve_adapter(registry: ModelRegistry, ref: str, model: ModelEntry) -> ModelEntry:
    """Resolve an adapter name or path for ``model``.

    A path to an unregistered file is checked when the backend loads it.

    Raises:
        ModelNotFoundError: no adapter of that name (the registered ones are listed).
    """
    try:
        entry = registry.resolve(ref)
    except ModelNotFoundError:
        if "/" in ref or ref.endswith(".gguf"):  # a path: its own message says what is wrong
            raise
        known = ", ".join(e.name for e in registry.list() if e.kind == "adapter") or "none"
        raise ModelNotFoundError(
            f"no adapter named {ref!r} (registered adapters: {known}); see `assistant models "
            "list`, `assistant train export RUN --name NAME`, or pass a path to a GGUF LoRA"
        ) from None
    registered = entry.builtin or entry.added_at is not None
    if registered and entry.kind != "adapter":
        raise ConfigError(f"{ref} is a model, not an adapter; use --model {ref}")
    if entry.base and entry.base != model.name:
        raise ConfigError(
            f"adapter {entry.name} was trained for {entry.base}, not {model.name}; "
            f"run with --model {entry.base}"
        )
    return entry


def open_backend(config: Config, registry: ModelRegistry | None = None) -> Backend:
    """Create the backend named by ``config.backend`` (the model loads lazily, on first use).

    Raises:
        ModelNotFoundError, InvalidModelError, ChatFormatRequiredError, ConfigError.
    """
    if config.backend == "server":
        return OpenAIServerBackend(
            config.server_url,
            model=config.server_model,
            api_key=config.server_api_key,
            timeout_s=config.server_timeout_s,
            context_length=config.n_ctx,
            temperature=config.temperature,
            top_p=config.top_p,
            max_tokens=config.max_tokens,
        )
    registry = registry or ModelRegistry(config.home)
    entry = registry.resolve(config.model)
    if entry.kind == "adapter":
        raise ConfigError(
            f"{entry.name} is an adapter; run with --adapter {entry.name} --model {entry.base}"
        )
    adapter = resolve_adapter(registry, config.adapter, entry) if config.adapter else None
    return LlamaCppBackend(
        entry.path,
        name=entry.name + (f"+{adapter.name}" if adapter else ""),
        chat_format=config.chat_format or entry.chat_format,
        lora_path=adapter.path if adapter else None,
        n_ctx=config.n_ctx,
        n_threads=config.n_threads,
        n_threads_batch=config.n_threads_batch,
        n_batch=config.n_batch,
        state_cache_mb=config.state_cache_mb,
        defaults=SamplingDefaults(
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k if config.top_k is not None else SamplingDefaults.top_k,
            max_tokens=config.max_tokens,
            seed=config.seed,
        ),
    )
