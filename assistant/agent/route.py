"""Routing: which tool the agent's first step calls, decided before the ReAct loop.

Asked to choose among six tools inside a ReAct step, the 135M model copies its worked
examples more than it reads the question: it answered "1234 + 5678 = 901" without the
calculator and called the clock for "What is the opposite of hot?". So the first step is
decided apart, in three stages:

1. Detectors (:mod:`assistant.agent.detect`): an arithmetic expression goes to the
   calculator, extracted and normalised ("2^10" is ``2**10``, "15% of 80" ``15/100*80``); a
   question about today's date or the time goes to the clock.
2. Worked examples: the question's nearest examples (words shared, weighted by rarity)
   name the tool when they agree; when no example shares a word with the question,
   nothing speaks for a tool, so ``none``.
3. The model: when the nearest examples disagree, the model names one of their tools (or
   ``none``) under a grammar admitting nothing else, after the three nearest examples as
   turns (the closest last, where a small model looks).

A detected route is *authoritative*: its observation is the answer, so the loop may answer
from it when the model's own answer does not state it (:func:`direct_answer`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.tools import BaseTool

from assistant.agent.detect import answer_from, arithmetic_expression, clock_question, normalise
from assistant.agent.steps import TOOL_NAME
from assistant.backends.base import Backend, ChatMessage, GenerationOptions, Token

NONE = "none"
ROUTE_SYSTEM = "Choose the tool for the question, or none."
POLICIES = ("examples", "model")


def _wordset(text: str) -> frozenset[str]:
    """The words of ``text``, as a set."""
    return frozenset(text.split())


@dataclass(frozen=True)
class Route:
    """The first step: ``tool`` None answers directly; ``tool_input`` None lets the model
    write the input. ``source``: arithmetic, clock, file or named (a detector), examples or model;
    ``kind``: what a clock question asks for (time, day, date, year or month)."""

    tool: str | None
    tool_input: str | None = None
    source: str = "model"
    kind: str = ""

    @property
    def authoritative(self) -> bool:
        """Whether the tool's observation answers the question by itself."""
        return self.source in ("arithmetic", "clock")


def detect(question: str, names: Sequence[str]) -> Route | None:
    """The detectors' route for ``question``, if one recognises it and its tool is here."""
    if "calculator" in names:
        expression = arithmetic_expression(question)
        if expression is not None:
            return Route("calculator", expression, "arithmetic")
    if "clock" in names:
        asked = clock_question(question)
        if asked is not None:
            return Route("clock", asked[0], "clock", asked[1])
    if "read_file" in names:
        name = text_file_name(question)
        if name is not None:
            return Route("read_file", name, "file")
    named = [tool for tool, cue in _SOURCES if tool in names and cue.search(question)]
    if len(named) == 1:
        return Route(named[0], tool_input(named[0], question), "named")
    return None


def direct_answer(route: Route, observation: str, answer: str) -> str:
    """``answer`` if it states what a detected route's observation says, else the observation
    (:func:`assistant.agent.detect.answer_from`); a route not detected keeps the answer."""
    if not route.authoritative or route.tool is None:
        return answer
    return answer_from(route.tool, route.kind, observation, answer)


# Where the user says to look: "according to my notes", "search the web", "do you remember".
_SOURCES = (
    (
        "search_documents",
        re.compile(
            r"\b(?:my|our)\s+(?:notes?|documents?|docs|files|papers)\b|\baccording\s+to\s+my\b",
            re.I,
        ),
    ),
    ("web_search", re.compile(r"\b(?:the\s+)?(?:web|internet)\b|\bonline\b", re.I)),
    (
        "recall_memory",
        re.compile(
            r"\bdo\s+you\s+(?:remember|recall)\b|\bremember\s+(?!that\b)\w+|"
            r"\bi\s+(?:told|said\s+to)\s+you\b|\babout\s+me\b",
            re.I,
        ),
    ),
)


# --- worked examples --------------------------------------------------------------------

# (question, tool) worked examples for the built-in tools; none of them is a bench task.
# No-tool examples first: on a tie, the model is shown the no-tool ones closest.
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("What is the capital of Italy?", NONE),
    ("What is the opposite of big?", NONE),
    ("What colour are bananas?", NONE),
    ("How many wheels does a bicycle have?", NONE),
    ("Who wrote Romeo and Juliet?", NONE),
    ("What do cows drink?", NONE),
    ("Which animal barks?", NONE),
    ("What is the boiling point of water?", NONE),
    ("What language do people speak in Brazil?", NONE),
    ("What is the largest ocean on Earth?", NONE),
    ("Translate 'thank you' into French.", NONE),
    ("Say hello.", NONE),
    ("What is 12+30?", "calculator"),
    ("If a ticket costs 14 euros, how much do 6 tickets cost?", "calculator"),
    ("Split a bill of 96 between 4 people: how much each?", "calculator"),
    ("What is the average of 10, 20 and 60?", "calculator"),
    ("What day is it today?", "clock"),
    ("What is the time now in London?", "clock"),
    ("Is it morning or evening right now?", "clock"),
    ("What does my lease say about pets?", "search_documents"),
    ("Find the invoice total in my documents.", "search_documents"),
    ("According to my notes, where is the spare key?", "search_documents"),
    ("What did the report in my files conclude?", "search_documents"),
    ("Check my notes for the gym opening hours.", "search_documents"),
    ("What is on the shopping list in my notes?", "search_documents"),
    ("Per my documents, who is the contact person?", "search_documents"),
    ("What do my files say about the budget?", "search_documents"),
    ("Look in my notes for the train times.", "search_documents"),
    ("Check my documents: what is the account number?", "search_documents"),
    ("What is my sister's name?", "recall_memory"),
    ("Where do I work?", "recall_memory"),
    ("Do you remember my cat's name?", "recall_memory"),
    ("What is my favourite food?", "recall_memory"),
    ("What did I tell you about my trip?", "recall_memory"),
    ("How old am I?", "recall_memory"),
    ("When is my mother's birthday?", "recall_memory"),
    ("What's my brother called?", "recall_memory"),
    ("Which sport do I like?", "recall_memory"),
    ("What do you know about me?", "recall_memory"),
    ("Where was I born?", "recall_memory"),
    ("Read notes.txt and summarise it.", "read_file"),
    ("What is in the file plan.md?", "read_file"),
    ("Open budget.csv and tell me the first line.", "read_file"),
    ("Which settings are in app.toml?", "read_file"),
    ("Search the web for today's news about the election.", "web_search"),
    ("Look up online the price of a train ticket to Madrid.", "web_search"),
    ("Who won the latest football world cup? Search the internet.", "web_search"),
)
# Extensions of files read_file shows as text (a file named with one routes to read_file).
TEXT_EXTENSIONS = _wordset(
    "txt md markdown rst csv tsv ini toml json jsonl yaml yml cfg conf log xml html htm py js "
    "ts sh sql tex env"
)
_STOP = _wordset(
    "a an the is are was were be of to in on at for and or what what's whats which who whom "
    "how do does "
    "did it this that with from by as can could would you please tell me"
)
_FILE = re.compile(r"\b[\w./-]*\w\.[A-Za-z][A-Za-z0-9]{0,4}\b")
_QUERY_STOP = _STOP | _wordset(
    "my i me am i'm im what's whats when where much many have your according note notes "
    "document documents file files say says said check find look search remember remind "
    "recall tell know give show there any"
)


def _features(question: str) -> set[str]:
    """Words (plural and possessive s dropped), ``<num>`` for a number, ``<file>`` for a
    file name."""
    text = normalise(question).lower()
    features = {"<file>"} if _FILE.search(text) else set()
    for word in re.findall(r"[^\W_]+(?:'[^\W_]+)?", _FILE.sub(" ", text)):
        word = word.removesuffix("'s")
        if word.isdigit():
            features.add("<num>")
        elif word not in _STOP:
            features.add(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return features


def _scored(
    question: str, tools: Sequence[BaseTool] | Sequence[str]
) -> list[tuple[float, str, str]]:
    """(likeness, example, tool) for every example of a registered tool, in bank order.

    Examples come from :data:`EXAMPLES`, plus one for each tool they do not cover (the
    first line of its description). Likeness is the weight of the words shared with the
    question, a word weighing its inverse frequency in the examples: "notes" or "file" say
    more about the tool than "my". (Dividing by all words, Jaccard, favoured short
    examples: on the tune half, 18 of 21 nearest examples had the right tool against 20.)
    """
    names = [t if isinstance(t, str) else t.name for t in tools]
    pool = [(q, t) for q, t in EXAMPLES if t in names or t == NONE]
    known = {t for _, t in EXAMPLES}
    for tool in tools:
        if not isinstance(tool, str) and tool.name not in known:
            pool.append(((tool.description or tool.name).strip().splitlines()[0], tool.name))
    features = [_features(q) for q, _ in pool]
    frequency: dict[str, int] = {}
    for found in features:
        for feature in found:
            frequency[feature] = frequency.get(feature, 0) + 1
    weight = {f: math.log((1 + len(pool)) / (1 + n)) + 1.0 for f, n in frequency.items()}
    wanted = _features(question)
    return [
        (sum(weight[f] for f in wanted & found), q, t)
        for found, (q, t) in zip(features, pool, strict=True)
    ]


def select_examples(
    question: str, tools: Sequence[BaseTool] | Sequence[str], k: int = 3
) -> list[tuple[str, str]]:
    """The ``k`` examples most like ``question``, the closest last (ties: bank order)."""
    scored = _scored(question, tools)
    order = sorted(range(len(scored)), key=lambda i: (-scored[i][0], i))[:k]
    return [scored[i][1:] for i in reversed(order)]


def nearest_tools(question: str, tools: Sequence[BaseTool] | Sequence[str]) -> list[str]:
    """The tools (or ``none``) of the examples most like ``question``: one when they agree,
    several on a tie, none when no example shares a word with it."""
    scored = _scored(question, tools)
    best = max((s for s, _, _ in scored), default=0.0)
    if best <= 0:
        return []
    return list(dict.fromkeys(t for s, _, t in scored if s == best))


# --- the routing step -------------------------------------------------------------------


def route_grammar(names: Sequence[str], *, none: bool = True) -> str:
    """``root ::= "none" | "calculator" | ...``: a GBNF grammar admitting one of ``names``
    (and ``none``, unless told not to).

    Raises:
        ValueError: a tool name that is not a plain identifier, or nothing to admit.
    """
    for name in names:
        if not TOOL_NAME.match(name):
            raise ValueError(f"tool name {name!r} must be letters, digits, _ or -")
    choices = list(dict.fromkeys([NONE, *names] if none else names))
    if not choices:
        raise ValueError("a routing grammar needs at least one name")
    return "root ::= " + " | ".join(f'"{n}"' for n in choices) + "\n"


def route_messages(question: str, tools: Sequence[BaseTool], k: int = 3) -> list[ChatMessage]:
    """The routing prompt: one line of instructions, examples as turns, then the question.

    The tools' descriptions are left out: with them the bundled model chose worse (on the
    tune half of bench/agent_tasks_v2.json, 18 of 21 questions routed by the model against
    20 of 21 without), as it did with more examples (17 of 21 with 6).
    """
    messages: list[ChatMessage] = [{"role": "system", "content": ROUTE_SYSTEM}]
    for example, tool in select_examples(question, tools, k):
        messages += [
            {"role": "user", "content": example},
            {"role": "assistant", "content": tool},
        ]
    return [*messages, {"role": "user", "content": question}]


def search_query(question: str) -> str:
    """Keywords of ``question`` for a search tool (at most 80 characters)."""
    words = re.findall(r"[^\W_]+(?:[.'-][^\W_]+)*", normalise(question).lower())
    kept = [w for w in words if w not in _QUERY_STOP] or words
    return " ".join(kept)[:80].strip() or question.strip()[:80]


def file_name(question: str) -> str | None:
    """The first file name in ``question`` ("todo.txt", "notes/recipe.md"), if any."""
    match = _FILE.search(question)
    return match.group(0) if match else None


def text_file_name(question: str) -> str | None:
    """The first name of a text file in ``question`` (one read_file can show), if any.

    Only known text extensions count: "python.org" or "e.g." are not files, and a PDF is
    for the document search.
    """
    for match in _FILE.finditer(question):
        if match.group(0).rsplit(".", 1)[1].lower() in TEXT_EXTENSIONS:
            return match.group(0)
    return None


def tool_input(tool: str, question: str) -> str | None:
    """The input for a routed tool when it follows from the question, else None."""
    if tool in ("search_documents", "recall_memory", "web_search"):
        return search_query(question)
    if tool == "read_file":
        return file_name(question)
    return None


class Router:
    """Decides the first step: a detector, else the nearest examples, else the model.

    ``policy="model"`` skips the examples' vote: the model chooses whenever no detector
    fires (for comparison; it chose worse on bench/agent.py).
    """

    def __init__(
        self,
        backend: Backend,
        tools: Sequence[BaseTool],
        *,
        examples: int = 3,
        policy: str = "examples",
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown routing policy {policy!r}; choose {' or '.join(POLICIES)}")
        self.backend = backend
        self.tools = list(tools)
        self.names = [t.name for t in tools]
        self.examples = examples
        self.policy = policy
        self.grammar = route_grammar(self.names)

    def route(self, question: str, conversation_id: str | None = None) -> Route:
        """The route for ``question`` (the user's own words, without recalled facts)."""
        detected = detect(question, self.names)
        if detected is not None:
            return detected
        if self.policy == "model":
            return self.choose(question, conversation_id)
        nearest = nearest_tools(question, self.tools)
        if len(nearest) <= 1:  # no example like it: nothing speaks for a tool
            return self._route(nearest[0] if nearest else NONE, question, "examples")
        if set(nearest) == {"search_documents", "recall_memory"}:
            # A question about the user's documents names them ("my notes", a detector's
            # case); "my ..." without them asks what the user told (the model chose the
            # documents for "Who is my partner?").
            return self._route("recall_memory", question, "examples")
        return self.choose(question, conversation_id, among=nearest)

    def choose(
        self,
        question: str,
        conversation_id: str | None = None,
        among: Sequence[str] = (),
    ) -> Route:
        """Let the model name a tool or ``none`` (only one of ``among`` when given)."""
        grammar = self.grammar
        if among:
            grammar = route_grammar([n for n in among if n != NONE], none=NONE in among)
        options = GenerationOptions(
            max_tokens=8,
            temperature=0.0,
            grammar=grammar,
            conversation_id=f"{conversation_id}:route" if conversation_id else None,
        )
        messages = route_messages(question, self.tools, self.examples)
        text = "".join(
            e.text for e in self.backend.stream(messages, options) if isinstance(e, Token)
        )
        return self._route(text.strip(), question, "model")

    def _route(self, name: str, question: str, source: str) -> Route:
        if name not in self.names:
            return Route(None, source=source)
        return Route(name, tool_input(name, question), source)
