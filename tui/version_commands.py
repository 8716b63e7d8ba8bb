"""Versions of the shown conversation: /regen (Ctrl+R), /edit, /versions (Alt+Left/Right),
/copy, /good and /bad.

Regenerate and edit go through the conversation's session
(:meth:`~assistant.memory.session.ChatSession.regenerate`, ``edit``), in the turn worker
of :mod:`tui.workers`, so they stream, stop and fail like a sent message; every earlier
version stays in the store. Each reply's label shows ``version N/M`` when it has other
versions, and its rating.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from textual.app import App
from textual.notifications import SeverityLevel
from textual.screen import Screen

from tui import workers
from tui.live import LiveReply, TurnOutcome
from tui.screens.edit_text import EditTextScreen
from tui.widgets.message import ChatMessageView

if TYPE_CHECKING:
    from assistant.memory.records import Message
    from assistant.memory.session import ChatSession
    from assistant.memory.store import MemoryStore
    from assistant.memory.versions import Version
    from assistant.responders import Responder
    from assistant.services import Services
    from tui.turns import Turns
    from tui.widgets.transcript import Transcript

RATED = {1: "rated good", -1: "rated bad"}
# What /versions and the version keys browse: the last reply or your last message.
WHICH = {"reply": "assistant", "message": "user"}
T = TypeVar("T")
Start = Callable[["ChatSession", "Responder"], Iterator[Any]]


class VersionHost(Protocol):
    """What the version commands need of the chat screen."""

    ready: bool  # the model is loaded
    turns: Turns

    @property
    def services(self) -> Services:
        """The backend, the store and the responders."""

    @property
    def conversation_id(self) -> str | None:
        """The shown conversation (None: a new one, not stored yet)."""

    @property
    def live(self) -> LiveReply | None:
        """The reply being written, if any (perhaps in another conversation)."""

    @property
    def store(self) -> MemoryStore | None:
        """The memory store; None while it is opening."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Show a notification."""

    def ask(self, modal: Screen[T], callback: Callable[[T | None], None]) -> None:
        """Show a modal; ``callback`` gets what it dismisses with."""

    def add_note(self, markdown: str) -> object:
        """Show a note in the chat."""

    def show_conversation(self, conversation_id: str | None) -> None:
        """Show a stored conversation (None: a new one)."""

    @property
    def app(self) -> App[Any]:
        """The app (its clipboard)."""

    @property
    def comparing(self) -> bool:
        """/compare is writing its two answers."""

    @property
    def mode(self) -> str:
        """How the shown conversation is answered."""

    @property
    def transcript(self) -> Transcript:
        """The shown conversation's messages."""

    def start(
        self, group: str, work: Callable[..., None], *args: Any, exclusive: bool = True
    ) -> None:
        """Run ``work(*args)`` in a thread worker."""


class _Report:
    """The turn's report (the chat screen's :class:`~tui.turns.Turns`), marking the
    versions once the reply is stored."""

    def __init__(self, turns: Turns, after: Callable[[], None]) -> None:
        self.turns = turns
        self.after = after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.turns, name)

    def finish_live(self, live: LiveReply, outcome: TurnOutcome) -> None:
        """The turn ended: as any turn, then the labels."""
        self.turns.finish_live(live, outcome)
        self.after()


class VersionCommands:
    """One method a command, named after it; each returns whether it was accepted."""

    def __init__(self, host: VersionHost) -> None:
        self.host = host

    # -- checks ------------------------------------------------------------------------

    def _idle(self) -> bool:
        """The model is loaded and nothing is being written (else say so)."""
        host = self.host
        if host.store is None or not host.ready:
            host.notify("the model is still loading", severity="warning")
            return False
        if host.live is not None or host.comparing:
            host.notify("a reply is being written; press Esc to stop it", severity="warning")
            return False
        return True

    def _messages(self) -> list[Message]:
        store, cid = self.host.store, self.host.conversation_id
        return store.messages(cid) if store is not None and cid is not None else []

    def _last(self, role: str) -> Message | None:
        found = [m for m in self._messages() if m.role == role]
        return found[-1] if found else None

    # -- regenerate and edit -----------------------------------------------------------

    def regen(self, argument: str) -> bool:
        """Write the last reply again (Ctrl+R); the old one stays as a version."""
        if not self._idle():
            return False
        messages = self._messages()
        users = [i for i, m in enumerate(messages) if m.role == "user"]
        if not users:
            self.host.notify("nothing to regenerate: say something first", severity="warning")
            return False
        question = messages[users[-1]]

        def start(session: ChatSession, responder: Responder) -> Iterator[Any]:
            return session.regenerate(responder)

        self._start(question.content, messages[: users[-1]], start)
        return True

    def edit(self, argument: str) -> bool:
        """Edit the last message you sent and send it again (``/edit TEXT`` directly);
        the old message and its reply stay as a version."""
        if not self._idle():
            return False
        question = self._last("user")
        if question is None:
            self.host.notify("nothing to edit: say something first", severity="warning")
            return False
        if argument:
            self._resend(question.id, argument)
            return True

        def edited(text: str | None) -> None:
            if text and self._idle():
                self._resend(question.id, text)

        self.host.ask(EditTextScreen("Edit your message, then resend it", question.content), edited)
        return True

    def _resend(self, message_id: int, text: str) -> None:
        messages = self._messages()
        position = next(m.seq for m in messages if m.id == message_id)
        keep = [m for m in messages if m.seq < position]

        def start(session: ChatSession, responder: Responder) -> Iterator[Any]:
            return session.edit(message_id, text, responder)

        self._start(text, keep, start)

    def _start(self, prompt: str, keep: list[Message], start: Start) -> None:
        """Show ``keep`` and the new turn, and write its reply in the turn worker."""
        host, turns = self.host, self.host.turns
        cid = host.conversation_id
        assert cid is not None
        live = LiveReply(cid, prompt, mode=host.mode, model=host.services.backend.model_name)
        turns.live = live
        widgets = turns.widgets
        widgets.transcript.show(keep, None)
        self.mark_views()
        widgets.transcript.start_turn(live)
        widgets.status.state = "writing…"
        widgets.sidebar.live = cid
        report = _Report(turns, self.mark_views)
        host.start(
            "generate", workers.run_turn, turns.ui, report, host.services, live,
            turns.measure_budget, start,
        )  # fmt: skip

    # -- versions ----------------------------------------------------------------------

    def versions(self, argument: str) -> bool:
        """List the versions of the last reply and of your last message; ``/versions N``
        shows reply version N, ``/versions message N`` your message's version N (with the
        turn that followed it)."""
        which, _, number = argument.rpartition(" ")
        which = which.strip() or "reply"
        if which not in WHICH:
            self.host.notify("usage: /versions [N] or /versions message N", severity="warning")
            return False
        store, target = self.host.store, self._last(WHICH[which])
        if store is None or target is None:
            self.host.notify("no reply yet", severity="warning")
            return False
        found = store.versions(target.id)
        if number:
            if not number.isdigit() or not 1 <= int(number) <= len(found):
                usage = "/versions N" if which == "reply" else "/versions message N"
                self.host.notify(f"usage: {usage}, N from 1 to {len(found)}", severity="warning")
                return False
            return self._switch(found[int(number) - 1].message.id)
        lines = self._listing("the last reply", found)
        question = self._last("user")
        if question is not None and len(asked := store.versions(question.id)) > 1:
            lines += ["", *self._listing("your last message", asked)]
        lines += [
            "",
            "`/versions N` (Alt+Left / Alt+Right) shows reply version N, `/versions message N`"
            " (Alt+Up / Alt+Down) your message's; Ctrl+R writes another reply.",
        ]
        self.host.add_note("\n".join(lines))
        return True

    @staticmethod
    def _listing(what: str, found: list[Version]) -> list[str]:
        lines = [f"**Versions of {what}** ({len(found)})", ""]
        for v in found:
            text = " ".join(v.message.content.split())
            marks = ", ".join(filter(None, ("shown" if v.active else "", RATED.get(v.rating))))
            shown = text[:80] + ("…" if len(text) > 80 else "")
            lines.append(f"{v.number}. {shown}" + (f" **({marks})**" if marks else ""))
        return lines

    def step(self, delta: int, which: str = "reply") -> bool:
        """Show the previous (-1) or next (+1) version of the last reply (``which``
        "message": of your last message, with the turn that followed it)."""
        store, target = self.host.store, self._last(WHICH[which])
        if store is None or target is None:
            self.host.notify("no reply yet", severity="warning")
            return False
        found = store.versions(target.id)
        if len(found) < 2:
            more = "Ctrl+R writes another" if which == "reply" else "/edit makes another"
            self.host.notify(f"this {which} has no other versions; {more}")
            return False
        mine = next(v for v in found if v.active)
        index = mine.number - 1 + delta
        if not 0 <= index < len(found):
            self.host.notify(f"this is version {mine.number}/{mine.total}")
            return False
        return self._switch(found[index].message.id)

    def _switch(self, message_id: int) -> bool:
        store, cid = self.host.store, self.host.conversation_id
        if store is None or cid is None or not self._idle():
            return False
        from assistant.errors import AssistantError

        try:
            store.activate_version(message_id)
        except AssistantError as exc:  # e.g. another process is answering in it
            self.host.notify(str(exc), severity="error", markup=False)
            return False
        self.host.show_conversation(cid)
        number, total = next(
            (v.number, v.total) for v in store.versions(message_id) if v.message.id == message_id
        )
        self.host.notify(f"version {number}/{total}")
        return True

    def mark_views(self) -> None:
        """Label each shown message with ``version N/M`` and each reply with its rating."""
        store, cid = self.host.store, self.host.conversation_id
        if store is None or cid is None:
            return
        counts, ratings = store.version_counts(cid), store.ratings_of(cid)
        views = self._views()
        if self.host.live is None:  # the views of the turn just written get their ids
            for role in WHICH.values():
                mine = [v for v in views if v.role == role]
                stored = self._last(role)
                if mine and mine[-1].message_id is None and stored is not None:
                    mine[-1].message_id = stored.id
        for view in views:
            if view.message_id is None:
                continue
            base = str(view.border_title or "").split(" · ")[0]  # the role label
            marks = []
            if view.message_id in counts:
                marks.append("version {}/{}".format(*counts[view.message_id]))
            if ratings.get(view.message_id):
                marks.append(RATED[ratings[view.message_id]])
            view.border_title = " · ".join([base, *marks])

    def _views(self) -> list[ChatMessageView]:
        """The transcript's message views (not those of a comparison)."""
        transcript = self.host.transcript
        return [v for v in transcript.query(ChatMessageView) if v.parent is transcript]

    # -- copy and rate -----------------------------------------------------------------

    def copy(self, argument: str) -> bool:
        """Copy the last reply to the clipboard (``/copy N``: message N, from the top)."""
        messages = [m for m in self._messages() if m.role in ("user", "assistant")]
        if argument:
            if not argument.isdigit() or not 1 <= int(argument) <= len(messages):
                self.host.notify(
                    f"usage: /copy N, N from 1 to {len(messages)} (the messages from the top)",
                    severity="warning",
                )
                return False
            message: Message | None = messages[int(argument) - 1]
        else:
            message = self._last("assistant")
        if message is None or not message.content:
            self.host.notify("nothing to copy yet", severity="warning")
            return False
        self.host.app.copy_to_clipboard(message.content)
        number = messages.index(message) + 1
        words = " ".join(message.content.split())
        preview = words[:40] + ("…" if len(words) > 40 else "")
        who = "your message" if message.role == "user" else "the reply"
        self.host.notify(
            f"copied {who} {number} ({len(message.content)} characters): {preview}", markup=False
        )
        return True

    def good(self, argument: str) -> bool:
        """Rate the last reply good (again: clear it)."""
        return self._rate(1)

    def bad(self, argument: str) -> bool:
        """Rate the last reply bad (again: clear it)."""
        return self._rate(-1)

    def _rate(self, rating: int) -> bool:
        from assistant.memory.preferences import rate

        store, reply = self.host.store, self._last("assistant")
        if store is None or reply is None or not reply.content:
            self.host.notify("no reply to rate yet", severity="warning")
            return False
        if self.host.live is not None and self.host.live.conversation_id == reply.conversation_id:
            self.host.notify("wait for the reply to finish", severity="warning")
            return False
        again = store.ratings_of(reply.conversation_id).get(reply.id) == rating
        rate(store, reply.id, 0 if again else rating)
        self.mark_views()
        if again:
            self.host.notify("rating cleared")
            return True
        conversation = store.conversation(reply.conversation_id)
        hint = "" if conversation.marked_for_training else " (/train lets training use it)"
        self.host.notify(f"{RATED[rating]}{hint}")
        return True
