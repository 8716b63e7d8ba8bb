"""The memory soak: kill -9 a process streaming replies through ``ChatSession.send``.

The writer streams scripted replies into a real SQLite file and logs what each commit made
durable: ``U n`` once turn n's message is stored (a send yields nothing before that commit),
``F n`` for its "remember that" fact, ``R n`` once the reply is complete. A turn killed
before any reply was stored is sent again, the way a user would, and must not be stored
twice. After each kill a check opens the store as the next run would (which marks the dead
writer's reply interrupted) and holds it to the log.
"""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path
from typing import Any

from soak_zygote import Figures, Log, check, integrity_problems, run_killed, run_to_end, tail

CONVERSATION = "soak"
VOCAB = (
    *("lighthouse", "kettle", "garden", "bicycle", "river", "lantern", "harbour", "meadow"),
    *("copper", "violin", "orchard", "glacier", "pepper", "saddle", "thunder", "walnut"),
    *("beacon", "canyon", "ferry", "quartz"),
)
_TURN = re.compile(r"^(?:question|remember that soak fact) (\d+)")


def user_text(turn: int) -> str:
    """What the user sends in ``turn`` (every fifth asks to remember a fact)."""
    word = VOCAB[turn % len(VOCAB)]
    if turn % 5 == 4:
        return f"remember that soak fact {turn} is {word}"
    return f"question {turn}: tell me about the {word}"


def fact_text(turn: int) -> str:
    """The fact ``user_text(turn)`` asks to remember."""
    return f"soak fact {turn} is {VOCAB[turn % len(VOCAB)]}"


def reply_text(turn: int) -> str:
    """The scripted model's whole answer to ``turn``."""
    return f"answer {turn}: " + " ".join(f"r{turn}w{k}" for k in range(12 + turn % 17))


def next_turn(messages: list[Any]) -> int:
    """The turn to send next: the last one again if it got no reply at all, else the next."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        return 0
    last = messages[users[-1]]
    match = _TURN.match(last.content)
    turn = int(match.group(1)) if match else 0
    after = messages[users[-1] + 1 :]
    unanswered = not after or (not after[0].content and after[0].status == "interrupted")
    return turn if unanswered else turn + 1


class MemorySoak:
    """Kill a process that streams replies into the memory store."""

    name = "memory"

    def __init__(self, work: Path, delay_s: float = 0.004) -> None:
        self.db = work / "memory.db"
        self.log = Log(work / "memory.log")
        self.out = work / "writer.out"  # what the writers printed (a traceback, if any)
        self.delay_s = delay_s
        self.seen_lost: set[str] = set()

    def write(self, turns: int = 10_000) -> None:
        """(child) Send turns until killed, logging what each commit made durable."""
        from assistant.backends.scripted import ScriptedBackend
        from assistant.memory.facts import MemoryNotFoundError
        from assistant.memory.reply import FactStored
        from assistant.memory.session import ChatSession
        from assistant.memory.store import MemoryStore

        store = MemoryStore.open(self.db)
        try:
            store.conversation(CONVERSATION)
        except MemoryNotFoundError:
            store.create_conversation(strategy="window:4", conversation_id=CONVERSATION)
        first = next_turn(store.messages(CONVERSATION))
        replies = [reply_text(t) for t in range(first, first + turns)]
        backend = ScriptedBackend(replies, delay_s=self.delay_s)
        session = ChatSession(store, backend, CONVERSATION, flush_interval_s=0.02, flush_tokens=4)
        for turn in range(first, first + turns):
            stored = False
            for event in session.send(user_text(turn)):
                if not stored:  # nothing is yielded before the message is committed
                    self.log.write("U", turn)
                    stored = True
                if isinstance(event, FactStored):
                    self.log.write("F", turn)
            self.log.write("R", turn)
        store.close()

    def inspect(self) -> dict[str, Any]:
        """(child) Open the store as the next run would, and hold it to the log."""
        from assistant.memory.store import MemoryStore

        found: dict[str, Any] = {"corrupt": [], "lost": [], "checked": 0, "facts_missing": []}
        try:
            store = MemoryStore.open(self.db)  # marks the killed writer's reply interrupted
        except sqlite3.DatabaseError as exc:
            found["corrupt"].append(f"cannot open: {exc}")
            return found
        found["corrupt"] += integrity_problems(self.db, "messages_fts")
        convs = [c.id for c in store.conversations()]
        messages = store.messages(CONVERSATION) if CONVERSATION in convs else []
        facts = {f.content for f in store.facts()}
        users: dict[int, int] = {}
        replies: dict[int, Any] = {}
        turn: int | None = None
        for m in messages:
            if m.role == "user":
                match = _TURN.match(m.content)
                turn = int(match.group(1)) if match else -1
                users[turn] = users.get(turn, 0) + 1
                if m.content != user_text(turn):
                    found["corrupt"].append(f"message {m.id} reads {m.content!r}")
            elif turn is None or not reply_text(turn).startswith(m.content):
                found["corrupt"].append(f"reply {m.id} is not a prefix of its script")
            elif m.status not in ("complete", "interrupted"):
                found["corrupt"].append(f"reply {m.id} still {m.status} after open")
            else:
                replies[turn] = m
        found["corrupt"] += [f"turn {t} stored {n} times" for t, n in users.items() if n > 1]
        found["facts_missing"] = [
            t for t in users if user_text(t).startswith("remember") and fact_text(t) not in facts
        ]
        promised = {(f[0], int(f[1])) for f in self.log.lines()}
        for kind, n in sorted(promised):
            reply = replies.get(n)
            kept = {
                "U": n in users,
                "F": fact_text(n) in facts,
                "R": reply is not None
                and reply.content == reply_text(n)
                and reply.status == "complete",
            }[kind]
            if not kept:
                found["lost"].append(f"{kind} {n}")
        found["checked"] = len(promised)
        found["messages"] = len(messages)
        found["interrupted"] = sum(m.status == "interrupted" for m in messages)
        store.close()
        return found

    def soak(self, figures: Figures, kills: int, rng: random.Random) -> None:
        """Kill the writer ``kills`` times at random moments, checking after each."""
        facts_missing: set[int] = set()
        while figures.kills < kills and figures.runs < 3 * kills:
            code = run_killed(self.write, rng.uniform(0.0, 0.7), self.out)
            self._count(figures, code)
            facts_missing |= set(self._check(figures)["facts_missing"])
        code = run_to_end(lambda: self.write(turns=3), output=self.out)
        self._count(figures, code)
        found = self._check(figures)
        facts_missing |= set(found["facts_missing"])
        figures.extra = {
            "messages": found["messages"],
            "interrupted_replies": found["interrupted"],
            # "remember that" turns stored without their fact: a kill between the message's
            # commit and the fact's, and the resend answers the stored message, fact-less
            "facts_missing": sorted(facts_missing),
        }

    def _count(self, figures: Figures, code: int | None) -> None:
        figures.runs += 1
        if code is None:
            figures.kills += 1
        elif code != 0:
            figures.failed_runs += 1
            figures.problem(
                f"memory writer run {figures.runs} exited with status {code}: {tail(self.out)}"
            )

    def _check(self, figures: Figures) -> dict[str, Any]:
        found = check(self.inspect)
        figures.checked = max(figures.checked, found["checked"])
        new = set(found["lost"]) - self.seen_lost
        self.seen_lost |= new
        figures.lost += len(new)
        for item in sorted(new):
            figures.problem(f"memory: committed {item} missing after kill {figures.kills}")
        if found["corrupt"]:
            figures.corrupt += 1
            figures.problem(f"memory after kill {figures.kills}: {found['corrupt'][:3]}")
        return found
