"""Native tool calls: each family's format, its parser, and a grammar built from the schemas.

A model whose chat template renders ``tools`` was trained to answer with tool calls in its
family's own format:

- ``hermes`` (Qwen 2.5 / 3, Hermes): ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
- ``llama3`` (Llama 3.1 / 3.2): a bare JSON object ``{"name": ..., "parameters": {...}}``
- ``mistral``: ``[TOOL_CALLS] [{"name": ..., "arguments": {...}}]``
- ``json`` (any other template that reads ``tools``): ``{"name": ..., "arguments": {...}}``

Parsing is a pure function of the text. :func:`tool_grammar` builds a GBNF grammar that
admits either a plain answer or one well-formed call of a listed tool with arguments that
match its JSON schema, so even a tiny model's calls parse.
"""

from __future__ import annotations

import copy
import json
import re
import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.utils.function_calling import convert_to_openai_tool

FORMATS = ("hermes", "llama3", "mistral", "json")
MAX_STRING = 200  # the longest string argument a grammar lets a model write
# Not strict: a grammar-built string may hold control characters JSON forbids unescaped.
_DECODER = json.JSONDecoder(strict=False)


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for."""

    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: new_call_id())


@dataclass(frozen=True)
class ParsedReply:
    """A reply split into its text and its tool calls; ``error`` when a call did not parse."""

    content: str
    calls: list[ToolCall]
    error: str | None = None


def new_call_id() -> str:
    """A call id of 9 letters and digits (Mistral's templates refuse any other shape)."""
    return uuid.uuid4().hex[:9]


def tool_spec(tool: Any) -> dict[str, Any]:
    """The OpenAI function schema of a tool (``{"type": "function", "function": {...}}``).

    A tool of one string argument whose ``gbnf_input`` (the input pattern the ReAct grammar
    uses) is a plain character class, such as the calculator's, gets it as that argument's
    ``pattern``, so a grammar built from the schema keeps its input as tight.
    """
    spec = convert_to_openai_tool(tool)
    pattern = (getattr(tool, "metadata", None) or {}).get("gbnf_input")
    properties = spec["function"].get("parameters", {}).get("properties", {})
    if isinstance(pattern, str) and _PLAIN_CLASS.match(pattern) and len(properties) == 1:
        (field_schema,) = properties.values()
        if field_schema.get("type") == "string" and "pattern" not in field_schema:
            field_schema["pattern"] = _leading_pattern(pattern)
    return spec


def _leading_pattern(pattern: str) -> str:
    """``[...]{m,n}`` as a regex whose first character is a letter, digit, ``(`` or ``-``.

    Under a grammar, the 135M model starts a free argument with stray punctuation
    (".12*7", ")2^10"); an input starting like a word or a number reads as it meant.
    """
    match = re.fullmatch(r"(\[.*\])\{(\d+),(\d+)\}", pattern)
    assert match is not None
    chars, low, high = match.group(1), int(match.group(2)), int(match.group(3))
    first = [c for c in string.printable if re.fullmatch(chars, c) and (c.isalnum() or c in "(-")]
    if not first or high < 1:
        return f"^{pattern}$"
    head = "[" + "".join("\\" + c if c in "\\]^-" else c for c in first) + "]"
    rest = f"{chars}{{{max(low - 1, 0)},{high - 1}}}"
    return f"^{head}{rest}$" if low >= 1 else f"^({head}{rest})?$"


# "[...]{m,n}" without a negation, quotes or backslashes: safe inside a JSON string.
_PLAIN_CLASS = re.compile(r'^\[[^\^\]"\\][^\]"\\]*\]\{\d+,\d+\}$')


def detect_format(template: str) -> str:
    """The tool-call format a chat template's model writes (``json`` when unrecognised)."""
    if "<tool_call>" in template:
        return "hermes"
    if "[TOOL_CALLS]" in template:
        return "mistral"
    if "<|python_tag|>" in template or (
        "<|start_header_id|>" in template and "ipython" in template
    ):
        return "llama3"
    return "json"


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown tool-call format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _args_key(fmt: str) -> str:
    return "parameters" if fmt == "llama3" else "arguments"


def _marker(fmt: str) -> str:
    """What a call starts with; a plain answer may not start with its first character."""
    return {"hermes": "<tool_call>", "mistral": "[TOOL_CALLS]"}.get(fmt, "{")


# -- parsing ----------------------------------------------------------------------------


def _call_from(value: Any) -> ToolCall:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError("a tool call must be a JSON object with a string 'name'")
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        arguments = _DECODER.decode(arguments) if arguments.strip() else {}
    if not isinstance(arguments, dict):
        raise ValueError(f"the arguments of {value['name']!r} must be a JSON object")
    return ToolCall(value["name"], arguments)


def _objects(text: str) -> tuple[list[Any], str]:
    """JSON values one after another (separated by spaces, ';' or ','); and the rest."""
    values: list[Any] = []
    rest = text.lstrip()
    while rest.startswith(("{", "[")):
        value, end = _DECODER.raw_decode(rest)
        values.extend(value if isinstance(value, list) else [value])
        rest = rest[end:].lstrip().lstrip(";,").lstrip()
    return values, rest


def parse_tool_calls(text: str, fmt: str) -> ParsedReply:
    """Split a reply in format ``fmt`` into its text and its tool calls. Never raises."""
    _check(fmt)
    try:
        if fmt == "hermes":
            return _parse_hermes(text)
        if fmt == "mistral":
            return _parse_mistral(text)
        return _parse_json(text)
    except (ValueError, json.JSONDecodeError) as exc:
        return ParsedReply(text.strip(), [], f"the tool call does not parse: {exc}")


_HERMES = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def _parse_hermes(text: str) -> ParsedReply:
    calls = []
    for body in _HERMES.findall(text):
        values, rest = _objects(body)
        if not values or rest:
            raise ValueError("expected one JSON object between <tool_call> and </tool_call>")
        calls += [_call_from(v) for v in values]
    return ParsedReply(_HERMES.sub("", text).strip(), calls)


def _parse_mistral(text: str) -> ParsedReply:
    head, mark, tail = text.partition("[TOOL_CALLS]")
    if not mark and text.lstrip().startswith("[{"):
        # [TOOL_CALLS] is a control token, dropped from text detokenized without specials.
        head, mark, tail = "", "[TOOL_CALLS]", text
    if not mark:
        return ParsedReply(text.strip(), [])
    tail = tail.strip()
    if tail.startswith(("[", "{")):
        values, _ = _objects(tail)
        return ParsedReply(head.strip(), [_call_from(v) for v in values])
    # The v11 tokenizer's shape: [TOOL_CALLS]name[ARGS]{...}
    calls = []
    for part in tail.split("[TOOL_CALLS]"):
        name, sep, args = part.partition("[ARGS]")
        if not sep:
            raise ValueError("expected [ARGS] after the tool name")
        values, _ = _objects(args)
        calls.append(_call_from({"name": name.strip(), "arguments": values[0] if values else {}}))
    return ParsedReply(head.strip(), calls)


def _parse_json(text: str) -> ParsedReply:
    body = text.strip().removeprefix("<|python_tag|>").strip()
    if not body.startswith("{"):
        return ParsedReply(text.strip(), [])
    values, rest = _objects(body)
    calls = [_call_from(v) for v in values]
    return ParsedReply(rest.strip(), calls)


def format_calls(calls: Sequence[ToolCall], fmt: str) -> str:
    """The calls as the model writes them (for templates that do not render ``tool_calls``)."""
    _check(fmt)
    key = _args_key(fmt)
    objects = [{"name": c.name, key: c.arguments} for c in calls]
    if fmt == "hermes":
        return "\n".join(f"<tool_call>\n{json.dumps(o)}\n</tool_call>" for o in objects)
    if fmt == "mistral":
        return f"[TOOL_CALLS] {json.dumps(objects)}"
    return "; ".join(json.dumps(o) for o in objects)


def neutralise_calls(text: str) -> str:
    """Defuse call markers in quoted text (a tool result is data, not a call to copy)."""
    for mark, mention in _MENTIONS:
        text = text.replace(mark, mention)
    return text


_MENTIONS = (
    ("<tool_call>", "(tool_call)"),
    ("</tool_call>", "(/tool_call)"),
    ("[TOOL_CALLS]", "(TOOL_CALLS)"),
    ("[ARGS]", "(ARGS)"),
    ("<|python_tag|>", "(python_tag)"),
)


# -- grammar ----------------------------------------------------------------------------


def _bounded(schema: Any) -> Any:
    """A copy of ``schema`` whose free strings have a maximum length (small models ramble)."""
    if isinstance(schema, list):
        return [_bounded(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _bounded(v) for k, v in schema.items()}
    free = not any(k in out for k in ("maxLength", "enum", "const", "pattern", "format"))
    if out.get("type") == "string" and free:
        out["maxLength"] = MAX_STRING
        out.setdefault("minLength", 1)
    return out


def _parameters(spec: Mapping[str, Any]) -> dict[str, Any]:
    params = copy.deepcopy(dict(spec["function"].get("parameters") or {}))
    params.setdefault("type", "object")
    params.setdefault("properties", {})
    params["additionalProperties"] = False
    return dict(_bounded(params))


def tool_grammar(specs: Sequence[Mapping[str, Any]], fmt: str, choice: str = "auto") -> str:
    """A GBNF grammar for one reply: an answer, or one call of a tool in ``specs``.

    Args:
        specs: the tools' OpenAI function schemas (:func:`tool_spec`).
        fmt: the tool-call format (:data:`FORMATS`).
        choice: ``auto`` (answer or call), ``required`` / ``any`` (a call of any tool),
            ``none`` (an answer only) or a tool name (a call of that tool).

    Raises:
        ValueError: an unknown format, or a choice naming no listed tool.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    _check(fmt)
    answer = f"answer ::= [^{_marker(fmt)[0]}] [^\\x00]*"
    if choice == "none" or not specs:
        return f"root ::= answer\n{answer}\n"
    names = [s["function"]["name"] for s in specs]
    if choice not in ("auto", "required", "any") and choice not in names:
        raise ValueError(f"tool_choice {choice!r} names no tool; the tools are {names}")
    chosen = [
        s for s in specs if choice in ("auto", "required", "any") or s["function"]["name"] == choice
    ]
    key = _args_key(fmt)
    schema = {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "name": {"const": s["function"]["name"]},
                    key: _parameters(s),
                },
                "required": ["name", key],
            }
            for s in chosen
        ]
    }
    call = json_schema_to_gbnf(json.dumps(schema), prop_order=["name", key])
    call = re.sub(r"^root ::=", "toolcall ::=", call, flags=re.M)
    # No raw newlines or control characters inside strings: a small model that writes the
    # closing markup inside a string would never close it.
    call = call.replace('char ::= [^"\\\\]', 'char ::= [^"\\\\\\x7F\\x00-\\x1F]')
    wrapped = {
        "hermes": '"<tool_call>\\n" toolcall "\\n</tool_call>"',
        "mistral": '"[TOOL_CALLS] [" toolcall "]"',
    }.get(fmt, "toolcall")
    root = f"root ::= {wrapped}" if choice != "auto" else f"root ::= answer | {wrapped}"
    return f"{root}\n{answer}\n{call}"
