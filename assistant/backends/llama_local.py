"""In-process llama.cpp backend over one shared, lazily loaded ``llama_cpp.Llama``.

Prompts are rendered with the GGUF's own chat template (or an explicitly chosen format),
tokenized with the model's tokenizer, and fed to ``Llama.generate`` so that the KV cache is
reused for the shared prefix of consecutive calls. When a call names another conversation
than the one in the context, the current KV state is saved (only then, not after every call)
and the other conversation's state is restored if it was kept, so switching back does not
re-evaluate the whole history.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import io
import json
import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.backends.base import (
    ChatMessage,
    Done,
    Event,
    GenerationOptions,
    Timings,
    Token,
    Usage,
    throughput,
)
from assistant.chat_formats import check_chat_format, deferred_llama_templates, formatter_for
from assistant.chat_template import ChatTemplate, check_template
from assistant.errors import (
    AssistantError,
    ContextOverflowError,
    InvalidModelError,
    UnsupportedArchitectureError,
)
from assistant.gguf_info import GGUFInfo, read_gguf_info

DEFAULT_MAX_CTX = 8192
LOG = logging.getLogger("assistant.llama_cpp")
_log_callback: Any = None


def route_llama_logs(llama_cpp: Any) -> None:
    """Send llama.cpp's own log lines to the ``assistant.llama_cpp`` logger (debug level).

    ``Llama(verbose=False)`` silences them by pointing file descriptors 1 and 2 at
    /dev/null while a model loads, which also blanks whatever a full-screen app draws
    meanwhile (and keys typed then seem lost). Loading with ``verbose=True`` after this
    keeps the terminal untouched and the logs available to whoever wants them.
    """
    global _log_callback
    if _log_callback is not None:
        return

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def callback(level: int, text: bytes, user_data: Any) -> None:
        LOG.debug("%s", text.decode("utf-8", "replace").rstrip())

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _log_callback = callback  # ctypes must keep the callback alive


def open_llama(llama_cpp: Any, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(**kwargs)``, quiet, without redirecting the process's stdout/stderr."""
    route_llama_logs(llama_cpp)
    # verbose=True only while loading: its Python-side prints go to a buffer that is logged.
    said = io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
        llama = llama_cpp.Llama(verbose=True, **kwargs)
    llama.verbose = False  # no per-call prints ("prefix-match hit", timings)
    LOG.debug("%s", said.getvalue())
    return llama


def default_threads(cpus: int | None = None) -> tuple[int, int]:
    """Pick (generation threads, batch threads) for this machine.

    Token-by-token decoding is memory-bound and collapses when two spinning OpenMP threads
    fight other work on a 2-core machine, so decoding gets one thread per two cores; prompt
    evaluation (compute-bound, short) gets every core, with ``OMP_WAIT_POLICY=PASSIVE``.
    """
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // 2), max(1, cpus)


@dataclass(frozen=True)
class SamplingDefaults:
    """Defaults applied where a call leaves a setting unset."""

    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 40  # llama.cpp's own default
    max_tokens: int = 512
    seed: int | None = None
    repeat_penalty: float = 1.1


class _StopScanner:
    """Holds back text that may be the start of a stop string; cuts at the first stop."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add text; return (text safe to emit, whether a stop string was reached)."""
        self.pending += text
        hits = [(self.pending.index(s), s) for s in self.stops if s in self.pending]
        if hits:
            cut = min(hits)[0]
            out, self.pending = self.pending[:cut], ""
            return out, True
        keep = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(stop[:n]):
                    keep = max(keep, n)
                    break
        cut = len(self.pending) - keep
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


class LlamaCppBackend:
    """Chat with a GGUF model in-process. Thread-safe: one generation at a time."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        name: str | None = None,
        chat_format: str | None = None,
        lora_path: str | Path | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        n_batch: int = 512,
        state_cache_mb: int = 1024,
        defaults: SamplingDefaults | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.info: GGUFInfo = read_gguf_info(self.model_path)
        self._chat_format = check_chat_format(
            chat_format, has_template=self.info.has_chat_template, model=str(self.model_path)
        )
        if self._chat_format is None:  # fail before loading weights, not at the first prompt
            check_template(self.info.chat_template or "", model=str(self.model_path))
        self.lora_path = Path(lora_path) if lora_path else None
        if self.lora_path is not None:
            lora_info = read_gguf_info(self.lora_path)
            if not lora_info.is_lora:
                raise InvalidModelError(
                    f"{self.lora_path} is a model, not a LoRA adapter; pass it as --model instead"
                )
        self._name = name or self.model_path.stem
        trained = self.info.context_length or 4096
        self.n_ctx = n_ctx or min(trained, DEFAULT_MAX_CTX)
        auto_gen, auto_batch = default_threads()
        self.n_threads = n_threads or auto_gen
        self.n_threads_batch = n_threads_batch or auto_batch
        self.n_batch = n_batch
        self.defaults = defaults or SamplingDefaults()
        self.state_cache_bytes = state_cache_mb * 1024 * 1024
        self._llama: Any = None
        self._formatter: Any = None
        self._vocab: Any = None
        self._markers: tuple[str, ...] = ()
        self._lock = threading.RLock()
        self._active_conversation: str | None = None
        self._states: OrderedDict[str, Any] = OrderedDict()

    # -- properties ------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The registry name (or file stem) of the model."""
        return self._name

    @property
    def context_length(self) -> int:
        """The context window the model is run with."""
        return self.n_ctx

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory."""
        return self._llama is not None

    @property
    def llama(self) -> Any:
        """The shared ``llama_cpp.Llama`` (loaded on first use)."""
        self.load()
        return self._llama

    # -- loading ---------------------------------------------------------------------

    def load(self) -> None:
        """Load the weights if not loaded yet (idempotent, thread-safe)."""
        with self._lock:
            if self._llama is not None:
                return
            # Must be set before the OpenMP runtime starts (i.e. before llama_cpp loads).
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            import llama_cpp

            try:
                with deferred_llama_templates():
                    llama = open_llama(
                        llama_cpp,
                        model_path=str(self.model_path),
                        n_ctx=self.n_ctx,
                        n_batch=self.n_batch,
                        n_threads=self.n_threads,
                        n_threads_batch=self.n_threads_batch,
                        lora_path=str(self.lora_path) if self.lora_path else None,
                        chat_format=self._chat_format,
                    )
            except (ValueError, RuntimeError, OSError) as exc:
                what = f"{self.model_path}" + (
                    f" with adapter {self.lora_path}" if self.lora_path else ""
                )
                raise UnsupportedArchitectureError(
                    f"llama.cpp {llama_cpp.__version__} could not load {what} "
                    f"(architecture {self.info.architecture!r}: {exc}); the architecture may be "
                    "unsupported by this llama-cpp-python, or the adapter does not match the "
                    "base model. Upgrade llama-cpp-python or pick another model."
                ) from exc
            self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
            self._markers = _control_texts(llama, self._vocab)
            self._formatter = self._make_formatter(llama)
            self._llama = llama

    def _make_formatter(self, llama: Any) -> Any:
        if self._chat_format is not None:
            return formatter_for(self._chat_format)
        return ChatTemplate(
            self.info.chat_template or "",
            model=str(self.model_path),
            eos_token=_token_text(llama, llama.token_eos()),
            bos_token=_token_text(llama, llama.token_bos()),
        )

    def close(self) -> None:
        """Free the model and every kept state."""
        with self._lock:
            if self._llama is not None:
                self._llama.close()
            self._llama = None
            self._states.clear()
            self._active_conversation = None

    # -- tokens ----------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Count the tokens of ``text`` with the model's own tokenizer."""
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    @property
    def tool_template(self) -> str | None:
        """The embedded chat template if it renders tools (native tool calling), else None."""
        source = self.info.chat_template
        if self._chat_format is not None or not source:
            return None
        from assistant.chat_template import uses_tools

        return source if uses_tools(source) else None

    def render_prompt(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> tuple[list[int], list[str]]:
        """Render messages (and tools, when given) with the chat template; return (prompt
        tokens, stop strings)."""
        llama = self.llama
        extra = {"tools": list(tools)} if tools else {}
        # The prompt is tokenized with special tokens on (the template's markers must be),
        # so a message quoting a marker ("<|im_end|>" in a tool result or a document) would
        # end its turn and forge another: markers inside contents are defused first.
        shown = [defuse_markers(m, self._markers) for m in messages]
        try:
            result = self._formatter(messages=shown, **extra)
        except AssistantError:  # a bound broken (ChatTemplate): its message says what to do
            raise
        except Exception as exc:  # the Jinja template raised (e.g. roles out of order)
            raise AssistantError(
                f"the model's chat template rejected these messages: {exc}"
            ) from exc
        tokens = llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        stop = (
            result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        )
        return list(tokens), [s for s in stop if s]

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Count the tokens of the full rendered prompt."""
        return len(self.render_prompt(messages)[0])

    def reasons(self) -> bool:
        """Whether the model may write ``<think>`` blocks: False when its own chat template
        never mentions a think tag (SmolLM2, Llama 3), so a ``</think>`` it happens to write is
        answer text, not a sign that the answer so far was reasoning."""
        from assistant.thinking import template_thinks

        return self._chat_format is not None or template_thinks(self.info.chat_template or "")

    def opens_thinking(self, messages: Sequence[ChatMessage]) -> bool:
        """Whether the template leaves a ``<think>`` block open at the end of the prompt
        (DeepSeek-R1 distills, QwQ), so the reply starts mid-thought."""
        if "<think>" not in (self.info.chat_template or "") or self._chat_format is not None:
            return False
        from assistant.thinking import prompt_opens_thinking

        self.llama  # noqa: B018 - loads the model and its formatter
        try:
            prompt = self._formatter(messages=[dict(m) for m in messages]).prompt
        except Exception:  # the turn's own render reports a broken template
            return False
        return prompt_opens_thinking(prompt)

    # -- conversation states ---------------------------------------------------------

    def _switch_to(self, conversation_id: str | None) -> None:
        """Save the live KV state if another conversation is asked for; restore a kept one."""
        if conversation_id == self._active_conversation:
            return
        llama = self._llama
        if self._active_conversation is not None and llama.n_tokens > 0:
            state = llama.save_state()
            self._states[self._active_conversation] = state
            self._states.move_to_end(self._active_conversation)
            self._evict()
        kept = self._states.pop(conversation_id, None) if conversation_id else None
        if kept is not None:
            llama.load_state(kept)
        self._active_conversation = conversation_id

    def _evict(self) -> None:
        total = sum(_state_bytes(s) for s in self._states.values())
        while self._states and total > self.state_cache_bytes:
            _, dropped = self._states.popitem(last=False)
            total -= _state_bytes(dropped)

    def forget_conversation(self, conversation_id: str) -> None:
        """Drop a kept KV state (e.g. when the conversation is deleted)."""
        with self._lock:
            self._states.pop(conversation_id, None)
            if self._active_conversation == conversation_id:
                self._active_conversation = None

    # -- generation ------------------------------------------------------------------

    def stream(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Generator[Event, None, None]:
        """Generate a reply to ``messages``; see :class:`~assistant.backends.base.Backend`.

        Raises:
            ContextOverflowError: the prompt leaves no room for a reply.
            AssistantError: an invalid grammar or JSON schema.
        """
        with self._lock:
            start = time.perf_counter()
            llama = self.llama
            tokens, template_stops = self.render_prompt(messages, options.tools)
            room = self.n_ctx - len(tokens)
            if room < 1:
                raise ContextOverflowError(
                    f"the prompt has {len(tokens)} tokens but {self._name}'s context window "
                    f"holds {self.n_ctx}; shorten the message, start a new conversation or "
                    f"raise n_ctx (the model was trained with {self.info.context_length})"
                )
            grammar = _compile_grammar(options, self._vocab)
            self._switch_to(options.conversation_id)
            cached = min(_common_prefix(llama.input_ids[: llama.n_tokens], tokens), len(tokens) - 1)
            max_new = min(options.max_tokens or self.defaults.max_tokens, room)
            seed = options.seed if options.seed is not None else self.defaults.seed
            llama.set_seed(seed if seed is not None else random.randrange(2**31))
            temperature = options.temperature
            if temperature is None:
                temperature = self.defaults.temperature
            generator = llama.generate(
                tokens,
                temp=temperature,
                top_p=options.top_p if options.top_p is not None else self.defaults.top_p,
                top_k=options.top_k if options.top_k is not None else self.defaults.top_k,
                repeat_penalty=self.defaults.repeat_penalty,
                grammar=grammar,
            )
            yield from self._decode(
                generator, tokens, template_stops, options, max_new, cached, start
            )

    def _decode(
        self,
        generator: Any,
        prompt: list[int],
        template_stops: list[str],
        options: GenerationOptions,
        max_new: int,
        cached: int,
        start: float,
    ) -> Generator[Event, None, None]:
        import llama_cpp

        llama = self._llama
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        scanner = _StopScanner([*template_stops, *options.stop])
        n_new, ttft, finish = 0, 0.0, "length"
        logprobs: list[float] = []
        entropies: list[float] = []
        try:
            for token in generator:
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    finish = "stop"
                    break
                n_new += 1
                logprob, entropy = _token_confidence(llama, token)
                logprobs.append(logprob)
                entropies.append(entropy)
                text, stopped = scanner.feed(decoder.decode(llama.detokenize([token])))
                if text:
                    if not ttft:
                        ttft = time.perf_counter() - start
                    yield Token(text)
                if stopped:
                    finish = "stop"
                    break
                if n_new >= max_new:
                    break
        finally:
            generator.close()
        tail = scanner.flush() + decoder.decode(b"", final=True)
        if tail:
            ttft = ttft or time.perf_counter() - start
            yield Token(tail)
        total = time.perf_counter() - start
        yield Done(
            finish_reason=finish,
            usage=Usage(len(prompt), n_new, cached),
            timings=Timings(ttft or total, total, throughput(n_new, ttft or total, total)),
            extra={"logprobs": logprobs, "entropies": entropies},
        )


def _control_texts(llama: Any, vocab: Any) -> tuple[str, ...]:
    """The texts of the model's control and user-defined tokens ("<|im_end|>", ...),
    longest first."""
    import llama_cpp

    wanted = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
    texts = set()
    for token in range(llama.n_vocab()):
        if llama_cpp.llama_vocab_get_attr(vocab, token) & wanted:
            text = _token_text(llama, token)
            if len(text) >= 3 and not text.isspace():
                texts.add(text)
    return tuple(sorted(texts, key=len, reverse=True))


def defuse_markers(message: ChatMessage, markers: Sequence[str]) -> dict[str, Any]:
    """``message`` (as a dict) with each marker in its content broken by a zero-width space
    after its first character, so it is tokenized as text, never as the marker.

    Only user and tool messages: what the user, documents and tool results bring in. The
    system prompt and the model's own turns (which may hold its tool calls) are kept."""
    out = dict(message)
    content = out.get("content")
    if out.get("role") not in ("user", "tool"):
        return out
    if isinstance(content, str) and markers and any(m in content for m in markers):
        for marker in markers:
            content = content.replace(marker, f"{marker[0]}\u200b{marker[1:]}")
        out["content"] = content
    return out


def _token_confidence(llama: Any, token: int) -> tuple[float, float]:
    """Log-probability of the token just sampled, and the entropy it was drawn from.

    Read from the logits of the last decoded position (the ones the sampler used), under
    the model's own distribution: temperature, top-p and penalties are not applied.
    """
    import llama_cpp
    import numpy as np

    from assistant.confidence import token_stats

    pointer = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    logits = np.ctypeslib.as_array(pointer, shape=(llama.n_vocab(),))
    return token_stats(logits, token)


def _token_text(llama: Any, token: int) -> str:
    if token == -1:
        return ""
    return str(llama.detokenize([token], special=True).decode("utf-8", errors="replace"))


def _common_prefix(a: Any, b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _state_bytes(state: Any) -> int:
    return int(state.llama_state_size) + int(getattr(state.scores, "nbytes", 0))


def _compile_grammar(options: GenerationOptions, vocab: Any) -> Any:
    """Build a LlamaGrammar, checking it first: llama.cpp crashes on a grammar it cannot parse."""
    if options.grammar is None and options.json_schema is None:
        return None
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    try:
        text = options.grammar
        if text is None:
            text = json_schema_to_gbnf(json.dumps(options.json_schema))
    except (ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise AssistantError(f"invalid JSON schema: {exc}") from exc
    grammar = LlamaGrammar.from_string(text, verbose=False)
    probe = llama_cpp.llama_sampler_init_grammar(
        vocab, text.encode("utf-8"), grammar._root.encode("utf-8")
    )
    if not probe:
        raise AssistantError(
            "invalid grammar: llama.cpp could not parse it (check the GBNF syntax and that "
            f"it defines a rule named {grammar._root!r})"
        )
    llama_cpp.llama_sampler_free(probe)
    return grammar
