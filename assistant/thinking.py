"""Reasoning models' ``<think>…</think>`` blocks, separated from the answer as they stream.

:class:`ThinkSplitter` takes streamed text in pieces of any size and says which parts are
reasoning ("thinking") and which the answer, holding back only the few characters that
could be the start of a tag. It handles tags split across pieces, text before the tag,
an unclosed ``<think>`` at the end (a reply cut at ``max_tokens``: all reasoning), later
blocks, and templates that open the block in the prompt (DeepSeek-R1 distills, QwQ: the
output starts mid-thought and only has ``</think>``). When the caller knows the prompt
opened it, ``opened=True`` says so; when it does not, a ``</think>`` with no ``<think>``
before it *moves* what was streamed as the answer so far into the reasoning.

:func:`separate_thinking` applies it to a backend's events: answer text stays
:class:`~assistant.backends.base.Token`, reasoning becomes :class:`Thinking`.
The memory store keeps the reasoning apart from the message's ``content`` (the
``reasoning`` column), so it never reaches a summary or the next turn's prompt.

Example:
    >>> split_thinking("<think>2+2 is 4</think>\\n\\nFour.")
    ('2+2 is 4', 'Four.')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from assistant.backends.base import Done, Token

OPEN = "<think>"
CLOSE = "</think>"
# "moved": the text given as the answer so far was reasoning (a lone </think>).
Kind = Literal["thinking", "answer", "moved"]
Piece = tuple[Kind, str]


@dataclass(frozen=True)
class Thinking:
    """A piece of the model's reasoning (shown folded, stored apart, never in prompts).

    ``moved`` means this text was already streamed as :class:`Token` events of the answer
    and turned out to be reasoning: whoever shows or stores the answer drops it there.
    """

    text: str
    moved: bool = False


def _partial_tag(text: str, tags: tuple[str, ...]) -> int:
    """How many characters at the end of ``text`` could begin one of ``tags``."""
    longest = max(len(t) for t in tags) - 1
    for size in range(min(longest, len(text)), 0, -1):
        tail = text[-size:]
        if any(t.startswith(tail) for t in tags):
            return size
    return 0


class ThinkSplitter:
    """Splits streamed text into reasoning and answer, whatever the chunking.

    Whitespace right after ``<think>`` and after ``</think>`` is dropped, as is
    whitespace before a first ``<think>``; text with no tags comes out unchanged.
    """

    def __init__(self, opened: bool = False) -> None:
        self.in_thinking = opened
        self.thinking = ""  # all reasoning so far
        self.answer = ""  # all answer so far
        self._tagged = opened  # a block was opened: a later lone </think> is plain text
        self._buffer = ""  # text that may be the start of a tag
        self._held = ""  # leading whitespace of the answer, until it is known to be text
        self._strip = opened  # drop whitespace at the start of the next part

    def feed(self, text: str) -> list[Piece]:
        """Take the next piece of the stream; return what can be said of it now."""
        out: list[Piece] = []
        buffer = self._buffer + text
        while buffer:
            if self.in_thinking:  # an opening tag again, before any reasoning, is dropped
                tags = (CLOSE,) if self.thinking else (CLOSE, OPEN)
            else:
                tags = (OPEN,) if self._tagged else (OPEN, CLOSE)
            found = [(buffer.find(t), t) for t in tags if t in buffer]
            if not found:
                keep = _partial_tag(buffer, tags)
                self._emit(out, buffer[: len(buffer) - keep])
                buffer = buffer[len(buffer) - keep :]
                break
            at, tag = min(found)
            self._emit(out, buffer[:at])
            buffer = buffer[at + len(tag) :]
            if tag == OPEN and self.in_thinking:
                if self.thinking:  # text came before it in this piece: it is reasoning
                    self._emit(out, OPEN)
                    continue
            elif tag == OPEN:
                self._held = ""  # whitespace before the block is not an answer
                self.in_thinking = self._tagged = True
            elif self.in_thinking:
                self.in_thinking = False
            else:  # a lone </think>: the prompt opened the block; the answer so far was not
                self._held = ""
                self._tagged = True
                if self.answer:
                    out.append(("moved", self.answer))
                    self.thinking += self.answer
                    self.answer = ""
            self._strip = True
        self._buffer = buffer
        return out

    def close(self) -> list[Piece]:
        """The stream ended: say what was held back (an unclosed block stays reasoning)."""
        out: list[Piece] = []
        rest, self._buffer = self._buffer, ""
        self._emit(out, rest)
        if self._held:
            held, self._held = self._held, ""
            self.answer += held
            out.append(("answer", held))
        return out

    def _emit(self, out: list[Piece], text: str) -> None:
        if self._strip:
            text = text.lstrip()
            if not text:
                return
            self._strip = False
        if not text:
            return
        if self.in_thinking:
            self.thinking += text
            out.append(("thinking", text))
            return
        if not self.answer and not self._tagged and not text.strip():
            self._held += text  # may be the whitespace before a <think>
            return
        text, self._held = self._held + text, ""
        self.answer += text
        out.append(("answer", text))


def split_thinking(text: str, opened: bool = False) -> tuple[str, str]:
    """A whole reply as (reasoning, answer), each stripped of surrounding whitespace."""
    splitter = ThinkSplitter(opened)
    splitter.feed(text)
    splitter.close()
    return splitter.thinking.strip(), splitter.answer.strip()


def template_thinks(template: str) -> bool:
    """Whether a chat template is a reasoning model's: it mentions a think tag, opening or
    closing (DeepSeek-R1 distills' templates only strip ``</think>`` from past replies).
    An empty template says nothing: assume it may."""
    return not template or "think>" in template


def backend_thinks(backend: object) -> bool:
    """Whether ``backend``'s model may write think blocks (True when it cannot say)."""
    reasons = getattr(backend, "reasons", None)
    return bool(reasons()) if reasons is not None else True


def prompt_opens_thinking(prompt: str) -> bool:
    """Whether a rendered prompt leaves a ``<think>`` block open for the reply to continue."""
    last_open = prompt.rfind(OPEN)
    return last_open >= 0 and CLOSE not in prompt[last_open:]


def separate_thinking(events: Iterable[Any], opened: bool = False) -> Iterator[Any]:
    """A backend's events with reasoning as :class:`Thinking` and the answer as Token.

    Other events pass through; what the splitter held back comes out before ``Done``. A
    whole answer that replaces the stream (the agent's ``FinalText``) loses its think
    blocks too; their text becomes reasoning unless it already streamed as such.
    """
    from assistant.memory.reply import FinalText  # the memory package imports this module

    splitter = ThinkSplitter(opened)

    def pieces(parts: list[Piece]) -> Iterator[Any]:
        for kind, text in parts:
            if kind == "answer":
                yield Token(text)
            else:
                yield Thinking(text, moved=kind == "moved")

    for event in events:
        if isinstance(event, Token):
            yield from pieces(splitter.feed(event.text))
            continue
        if isinstance(event, Done):
            yield from pieces(splitter.close())
        elif isinstance(event, FinalText) and (OPEN in event.text or CLOSE in event.text):
            reasoning, answer = split_thinking(event.text)
            if reasoning and not splitter.thinking:
                yield Thinking(reasoning)
            event = FinalText(answer, event.steps)
        yield event
    yield from pieces(splitter.close())
