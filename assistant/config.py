"""Configuration, built once at the edge: TOML file, then environment, then flags.

The result is a frozen :class:`Config` that is passed in to whatever needs it. Nothing here
runs at import time.

File: ``$ASSISTANT_HOME/config.toml`` (flat keys, named like the fields below).
Environment: ``ASSISTANT_<FIELD>`` in upper case, e.g. ``ASSISTANT_N_THREADS=2``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.paths import data_dir


@dataclass(frozen=True)
class McpServerConfig:
    """One MCP server from ``[mcp_servers.NAME]`` in config.toml: a command started over
    stdio (``command``, ``args``, ``env``) or a streamable HTTP ``url``. Its tools need the
    user's approval unless ``trusted``. ``timeout_s`` bounds its start, ``call_timeout_s``
    each call."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    url: str | None = None
    trusted: bool = False
    timeout_s: float = 20.0
    call_timeout_s: float = 60.0


@dataclass(frozen=True)
class Config:
    """Every setting of the assistant, with its default."""

    home: Path = field(default_factory=data_dir)
    # Which model: a registry name or a path to a .gguf file.
    model: str = "smollm2-135m"
    # Chat format for GGUFs without an embedded template (e.g. "chatml", "llama-3").
    chat_format: str | None = None
    # LoRA adapter name (from the registry) or path to a GGUF LoRA file.
    adapter: str | None = None
    system_prompt: str | None = None
    # "local" runs llama.cpp in-process; "server" talks to an OpenAI-compatible server.
    backend: str = "local"
    # Local (llama.cpp) settings. None means: chosen from the model and the machine.
    n_ctx: int | None = None
    n_threads: int | None = None
    n_threads_batch: int | None = None
    n_batch: int = 512
    # Conversations whose KV state is kept in RAM for instant switching back.
    state_cache_mb: int = 1024
    # Generation.
    temperature: float = 0.2
    top_p: float = 0.95
    # None: the backend's default (40 in llama.cpp).
    top_k: int | None = None
    max_tokens: int = 512
    seed: int | None = None
    # Server backend.
    server_url: str = "http://127.0.0.1:8080/v1"
    server_model: str | None = None
    server_api_key: str | None = None
    server_timeout_s: float = 120.0
    # -- memory (issue 4) --
    # buffer, window:K, summary or summary_buffer[:TOKENS] (see assistant/memory/strategies.py).
    memory_strategy: str = "summary_buffer"
    # Most tokens of a running summary written by the model.
    memory_summary_tokens: int = 256
    # Facts recalled into each prompt (0 turns recall off).
    memory_recall_facts: int = 3
    # -- agent and tools (issue 5) --
    # Most tool calls per question before the agent must answer.
    agent_max_steps: int = 5
    # Folders the read_file tool may open, separated by the OS path separator (":").
    agent_read_dirs: str | None = None
    # Offer the web_search tool (ddgs). Off by default: the assistant works offline.
    web_search: bool = False
    # A SearxNG-style JSON endpoint to search instead of ddgs (e.g. http://127.0.0.1:8888/search).
    web_search_url: str | None = None
    web_search_timeout_s: float = 10.0
    # MCP servers whose tools the agent gets (a [mcp_servers.NAME] table each; issue 16).
    mcp_servers: tuple[McpServerConfig, ...] = ()
    # -- documents / RAG (issue 6) --
    # Embedding model directory; None means the bundled all-MiniLM-L6-v2.
    rag_embedding_model: str | None = None
    # "HOST:PORT" of a `chroma run` server; None keeps vectors on disk under home.
    rag_chroma_server: str | None = None
    # Answers from documents refuse when no chunk is at least this similar (cosine).
    rag_min_similarity: float = 0.3
    rag_top_k: int = 5
    # A local cross-encoder directory to rerank hits with; None: no reranking.
    rag_reranker_model: str | None = None
    # Add [n] after answer sentences the model left uncited, from the source that supports
    # them (embedding similarity); citations the model wrote are kept as they are.
    rag_attribute_citations: bool = True
    # How documents answers are written: "extractive" quotes the source sentence that best
    # answers, "guided" lets the model choose which of the best three to quote, "generative"
    # lets it write the answer from them; "auto": extractive under 1B parameters (measured
    # on the 135M model in bench/docqa.py), generative above.
    rag_answer_mode: str = "auto"
    # -- training (issue 7) --
    # torch threads for training; None means one per two cores.
    train_threads: int | None = None
    # -- app (issue 3) --
    # Keys of the chat app, "id=key[,key]; ...": send, newline, stop, new, sidebar,
    # clear, sources_panel, focus_prompt, quit. E.g. "send=ctrl+s; newline=enter".
    keybindings: str | None = None

    def replace(self, **changes: Any) -> Config:
        """Return a copy with ``changes`` applied (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def config_file(self) -> Path:
        """The TOML file this configuration reads."""
        return self.home / "config.toml"


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_BACKENDS = ("local", "server")


def _field_type(name: str) -> type:
    """Return the concrete type of a field (``int | None`` gives ``int``)."""
    hint = typing.get_type_hints(Config)[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return typing.cast(type, args[0])
    return typing.cast(type, hint)


def _coerce(name: str, value: Any, source: str) -> Any:
    """Convert ``value`` to the type of field ``name``; raise ConfigError if impossible."""
    if name not in _FIELDS:
        valid = ", ".join(sorted(_FIELDS))
        raise ConfigError(f"unknown setting {name!r} in {source}; valid settings: {valid}")
    kind = _field_type(name)
    blank = isinstance(value, str) and value.strip().lower() in ("", "none", "null")
    if blank and _FIELDS[name].default is None:
        return None
    try:
        if kind is Path:
            return Path(str(value)).expanduser()
        if kind is bool:
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() in ("1", "true", "yes", "on")
        if kind is int and isinstance(value, float):
            raise ValueError("not a whole number")
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"setting {name!r} in {source} must be {kind.__name__}, got {value!r}"
        ) from exc


def _validate(config: Config) -> Config:
    if config.backend not in _BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(_BACKENDS)}, got {config.backend!r}")
    for name in ("n_ctx", "n_threads", "n_threads_batch", "n_batch", "max_tokens"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ConfigError(f"setting {name!r} must be at least 1, got {value}")
    if not 0.0 <= config.temperature <= 5.0:
        raise ConfigError(f"temperature must be between 0 and 5, got {config.temperature}")
    modes = ("auto", "extractive", "guided", "generative")  # rag.answer.ANSWER_MODES
    if config.rag_answer_mode not in modes:
        raise ConfigError(
            f"rag_answer_mode must be one of {', '.join(modes)}, got {config.rag_answer_mode!r}"
        )
    return config


_MCP_KEYS = {"command", "args", "env", "url", "trusted", "timeout_s", "call_timeout_s"}


def _mcp_servers(tables: Any, source: str) -> tuple[McpServerConfig, ...]:
    """Parse ``[mcp_servers.NAME]`` tables; raise ConfigError naming what is wrong."""
    if not isinstance(tables, dict):
        raise ConfigError(f"mcp_servers in {source} must be tables: [mcp_servers.NAME]")
    servers = []
    for name, table in tables.items():
        where = f"[mcp_servers.{name}] in {source}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table with command or url")
        unknown = set(table) - _MCP_KEYS
        if unknown:
            valid = ", ".join(sorted(_MCP_KEYS))
            raise ConfigError(f"unknown key {sorted(unknown)[0]!r} in {where}; valid: {valid}")
        command, url = table.get("command"), table.get("url")
        if (command is None) == (url is None):
            raise ConfigError(f"{where} needs either command (stdio) or url (HTTP), not both")
        args, env = table.get("args", []), table.get("env", {})
        timeouts = {k: table.get(k, d) for k, d in (("timeout_s", 20.0), ("call_timeout_s", 60.0))}
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ConfigError(f"args in {where} must be a list of strings")
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise ConfigError(f"env in {where} must be a table of strings")
        if not isinstance(table.get("trusted", False), bool):
            raise ConfigError(f"trusted in {where} must be true or false")
        for key, value in timeouts.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{key} in {where} must be a positive number of seconds")
        for key, value in (("command", command), ("url", url)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{key} in {where} must be a non-empty string")
        servers.append(
            McpServerConfig(
                name=str(name),
                command=command,
                args=tuple(args),
                env=tuple(sorted(env.items())),
                url=url,
                trusted=bool(table.get("trusted", False)),
                timeout_s=float(timeouts["timeout_s"]),
                call_timeout_s=float(timeouts["call_timeout_s"]),
            )
        )
    return tuple(servers)


def load_config(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the configuration from the TOML file, the environment and ``flags``.

    Later sources win. Flags whose value is None are treated as not given.

    Raises:
        ConfigError: an unknown key, a value of the wrong type or an unreadable file.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    home = Path(env["ASSISTANT_HOME"]).expanduser() if env.get("ASSISTANT_HOME") else data_dir()
    if flags and flags.get("home") is not None:
        home = Path(flags["home"]).expanduser()
    path = home / "config.toml"
    if path.exists():
        try:
            with path.open("rb") as fh:
                loaded = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}; fix or delete the file") from exc
        if "mcp_servers" in loaded:
            values["mcp_servers"] = _mcp_servers(loaded.pop("mcp_servers"), str(path))
        for key, value in loaded.items():
            values[key] = _coerce(key, value, str(path))
    for name in _FIELDS:
        env_key = f"ASSISTANT_{name.upper()}"
        if name not in ("home", "mcp_servers") and env_key in env:
            values[name] = _coerce(name, env[env_key], f"${env_key}")
    for key, value in (flags or {}).items():
        if value is not None:
            values[key] = _coerce(key, value, f"--{key.replace('_', '-')}")
    values["home"] = home
    return _validate(Config(**values))
