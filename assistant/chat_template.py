"""Chat templates embedded in GGUF files, rendered under bounds.

An embedded template is a Jinja program that came with a downloaded file. It runs in Jinja's
immutable sandbox with bounds on time, on the size of what it builds and on the numbers it
computes with; a template that breaks one is reported with the model's name and the way
out, ``--chat-format``, instead of hanging or filling memory.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from types import FrameType
from typing import Any

from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.parser import Parser
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from assistant.chat_formats import CHAT_FORMATS
from assistant.errors import InvalidModelError

# Real templates are a few kB and render in about a millisecond; these bounds are far above.
MAX_TEMPLATE_CHARS = 200_000
RENDER_SECONDS = 2.0
MAX_BUILT_CHARS = 1_000_000  # plus 4x the messages' own text (a template may repeat them)
MAX_INT_ARGUMENT = 100_000  # widths, counts and range ends passed to calls and filters
MAX_INT_BITS = 100_000
_TEMPLATE_FILE = "<template>"  # co_filename of code Jinja compiles from a string
# printf widths/precisions of 6+ digits or taken from an argument ("%0999999d", "%*d").
_WIDE_PRINTF = re.compile(r"%(\([^)]*\))?[#0 +-]*(\*|\d{6}|\d*\.(\*|\d{6}))")
_WIDE_FORMAT = re.compile(r"\{[^{}]*:[^{}]*\d{6}")
_SAMPLE: list[dict[str, str]] = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
]


class _Exceeded(Exception):
    """A template broke a bound; the message says which."""


_limits = threading.local()  # .chars: the size bound of the render running in this thread


def _char_limit() -> int:
    return int(getattr(_limits, "chars", MAX_BUILT_CHARS))


def _check_size(value: Any) -> Any:
    if isinstance(value, str | list | tuple | dict) and len(value) > _char_limit():
        raise _Exceeded(f"builds a value of more than {_char_limit()} characters or items")
    return value


def _check_ints(what: str, values: Sequence[Any]) -> None:
    for value in values:
        if type(value) is int and abs(value) > MAX_INT_ARGUMENT:
            raise _Exceeded(f"passes {value} to {what} (the limit is {MAX_INT_ARGUMENT})")
        _check_size(value)


def _guarded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    # The value filtered is data; only the arguments after it size the result (center(n)).
    skip = 2 if getattr(func, "jinja_pass_arg", None) is not None else 1

    @wraps(func)  # keeps jinja_pass_arg, which tells Jinja what to pass first
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_ints(f"the {name} filter", [*args[skip:], *kwargs.values()])
        return _check_size(func(*args, **kwargs))

    return guarded


class _BoundedNamespace(Namespace):
    """``namespace()`` whose values stay small: it is how a loop can grow a value."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _check_size(value))


class _GenerationTag(Extension):
    """Accepts Hugging Face's ``{% generation %}…{% endgeneration %}`` and renders its body.

    The tag only marks assistant text for training masks; without it such templates would
    not compile.
    """

    tags = {"generation"}

    def parse(self, parser: Parser) -> list[nodes.Node]:
        """Parse the body and drop the markers."""
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # As Transformers renders it (Jinja's own tojson escapes <, > and & for HTML).
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _refuse_huge(operator: str, left: Any, right: Any) -> None:
    ints = type(left) is int and type(right) is int
    if operator == "**" and ints and right > 0 and right * abs(left).bit_length() > MAX_INT_BITS:
        raise _Exceeded(f"computes {left} ** {right}, a number too large")
    if operator == "*" and ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise _Exceeded("multiplies numbers too large")
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            repeat = isinstance(seq, str | list | tuple) and type(times) is int
            if repeat and len(seq) * times > _char_limit():
                raise _Exceeded(f"repeats a value {times} times, making it too long")
    if operator == "%" and isinstance(left, str) and _WIDE_PRINTF.search(left):
        raise _Exceeded("formats with a field width of a million or more")


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus size checks where a single operation builds a value.

    The sandbox already forbids unsafe attributes and ranges of more than 100000 items;
    repetition (``"x" * n``), powers, printf widths, widths passed to methods and filters, and
    values kept in a ``namespace`` are bounded here. Loops are bounded in time by
    :func:`_time_bound`.
    """

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self) -> None:
        super().__init__(
            trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationTag, loopcontrols]
        )
        self.filters["tojson"] = _tojson
        self.filters = {name: _guarded_filter(name, f) for name, f in self.filters.items()}
        self.globals["namespace"] = _BoundedNamespace

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse an operation whose result would be huge, before computing it."""
        _refuse_huge(operator, left, right)
        return _check_size(super().call_binop(context, operator, left, right))

    def call(
        self,
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Call from template code, refusing huge widths and counts."""
        what = getattr(__obj, "__name__", "a function").replace("safe_range", "range")
        _check_ints(what, [*args, *kwargs.values()])
        # The sandbox hands out str.format wrapped; the string is on the wrapped method.
        owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        wide = isinstance(owner, str) and _WIDE_FORMAT.search(owner)
        if wide and what in {"format", "format_map"}:
            raise _Exceeded("formats with a field width of a million or more")
        return _check_size(super().call(__context, __obj, *args, **kwargs))


@contextmanager
def _time_bound(seconds: float) -> Iterator[None]:
    """Raise _Exceeded inside template code once ``seconds`` have passed.

    A loop such as ``range(100000)`` inside ``range(100000)`` gives Jinja no hook to stop
    it, but template code is Python compiled from the template: a trace function on its
    lines (only those; other frames are not traced) checks the clock on each step. The
    thread's previous tracer (a debugger, coverage) is put back afterwards.
    """
    deadline = time.monotonic() + seconds

    def on_line(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise _Exceeded(f"did not finish within {seconds:g} s (it may loop forever)")
        return on_line

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        return on_line if frame.f_code.co_filename == _TEMPLATE_FILE else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)


@dataclass(frozen=True)
class RenderedPrompt:
    """What a formatter returns, shaped like llama-cpp-python's ChatFormatterResponse."""

    prompt: str
    stop: list[str]
    added_special: bool = True  # the template writes BOS itself


class ChatTemplate:
    """A model's embedded chat template, compiled once and rendered under bounds.

    Raises:
        InvalidModelError: (at construction) the template does not compile.
    """

    def __init__(
        self, source: str, *, model: str, eos_token: str = "", bos_token: str = ""
    ) -> None:
        self.model = model
        self.eos_token = eos_token
        self.bos_token = bos_token
        if len(source) > MAX_TEMPLATE_CHARS:
            raise self._unusable(f"is {len(source)} characters long")
        try:
            self._template = _BoundedEnvironment().from_string(source)
        except Exception as exc:  # a syntax error, or anything else Jinja trips on
            line = getattr(exc, "lineno", None)
            where = f" (line {line})" if line else ""
            raise self._unusable(f"does not compile{where}: {exc}") from exc

    def _unusable(self, problem: str) -> InvalidModelError:
        return InvalidModelError(
            f"the chat template embedded in {self.model} {problem}; use a built-in format "
            "instead: --chat-format chatml (or the one the model was trained with: "
            f"{', '.join(CHAT_FORMATS)})"
        )

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """Render ``messages`` (and ``tools``, for a template that uses them) followed by the
        assistant's turn.

        Raises:
            InvalidModelError: the template broke a bound (time, size, recursion).
            Exception: whatever the template itself raises for these messages (its
                ``raise_exception``, an undefined variable); the caller reports it.
        """
        given = sum(len(str(m.get("content") or "")) for m in messages)
        cap = MAX_BUILT_CHARS + 4 * given
        context = {
            "messages": [dict(m) for m in messages],
            "eos_token": self.eos_token,
            "bos_token": self.bos_token,
            "add_generation_prompt": True,
            "raise_exception": _raise_exception,
            "strftime_now": _strftime_now,
            "tools": [dict(t) for t in tools] if tools else None,
            "functions": None,
        }
        parts: list[str] = []
        total = 0
        _limits.chars = cap
        try:
            with _time_bound(RENDER_SECONDS):
                for part in self._template.generate(context):
                    total += len(part)
                    if total > cap:
                        raise _Exceeded(f"writes a prompt of more than {cap} characters")
                    parts.append(part)
        except _Exceeded as exc:
            raise self._unusable(str(exc)) from exc
        except RecursionError as exc:
            raise self._unusable("recurses without end") from exc
        except MemoryError as exc:
            raise self._unusable("runs out of memory") from exc
        finally:
            del _limits.chars
        return "".join(parts)

    def __call__(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> RenderedPrompt:
        """The formatter interface the llama.cpp backend calls."""
        stops = [self.eos_token] if self.eos_token else []
        return RenderedPrompt(self.render(messages, tools), stops)


def uses_tools(source: str) -> bool:
    """Whether a chat template reads the ``tools`` variable (it can render tool schemas)."""
    from jinja2 import meta

    try:
        parsed = _BoundedEnvironment().parse(source)
    except Exception:  # a template that does not compile renders no tools
        return False
    return "tools" in meta.find_undeclared_variables(parsed)


def check_template(source: str, *, model: str) -> None:
    """Compile ``source`` and render a sample conversation, so a bad template fails early.

    Only compile errors and broken bounds count: a template may refuse the sample itself
    (some reject system messages), which is not a reason to refuse the model.

    Raises:
        InvalidModelError: the template does not compile or breaks a bound.
    """
    template = ChatTemplate(source, model=model, eos_token="</s>", bos_token="<s>")
    try:
        template.render(_SAMPLE)
    except InvalidModelError:
        raise
    except Exception:  # the template refused the sample: fine, real messages decide
        return


def _raise_exception(message: str) -> None:
    raise ValueError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)
