"""The slash commands about the user's documents: /ingest, /sources (list, remove, prune),
/documents (answer from them: the documents mode, toggled) and /adapt (search tuned to
them, as `assistant train embeddings` does, in the background).

:class:`SourceCommands` works through a :class:`SourceHost`, the few things of the chat
screen it needs. Ingesting, listing and removing run in thread workers: they open the
index (chromadb, the embedder) and may embed.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual.notifications import SeverityLevel

from tui.keys import KeyMap
from tui.workers import UiThread, failure

if TYPE_CHECKING:
    from assistant.rag.index import IngestReport
    from assistant.rag.sources import RemoveReport, Source
    from assistant.services import Services

USAGE = "usage: /sources, /sources remove PATH|ID|FOLDER… (or --missing), /sources prune"
ADAPT_USAGE = (
    "usage: /adapt [SECONDS] (at most SECONDS of training, default 300), /adapt resume, "
    "/adapt revert"
)
ADAPT_SECONDS = 300.0  # as `assistant train embeddings`


class SourceHost(Protocol):
    """What the document commands need of the chat screen."""

    @property
    def services(self) -> Services:
        """The document index lives here."""

    @property
    def ui(self) -> UiThread:
        """Calls the UI thread from a worker."""

    @property
    def ingest_fn(self) -> Callable[..., Any] | None:
        """``(paths, progress) -> report`` to use instead of the index's ingest."""

    @property
    def keys(self) -> KeyMap:
        """The key bindings (the documents-mode key is named after an ingest)."""

    @property
    def mode(self) -> str:
        """How the shown conversation is answered: "chat", "documents" or "agent"."""

    def set_mode(self, mode: str) -> None:
        """Answer in ``mode`` from now on (stored with the conversation)."""

    def set_state(self, text: str) -> None:
        """Show what the app is doing in the status bar."""

    def set_background(self, text: str) -> None:
        """Show what runs in the background in the status bar ("" clears it)."""

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

    def add_note(self, markdown: str) -> object:
        """Show a note in the chat."""

    def put_in_prompt(self, text: str) -> None:
        """Put ``text`` in the prompt box, to be corrected and sent again."""

    def start(
        self, group: str, work: Callable[..., None], *args: Any, exclusive: bool = True
    ) -> None:
        """Run ``work(*args)`` in a thread worker."""


class SourceCommands:
    """``/ingest``, ``/sources`` and ``/documents``: one method a command; each returns
    whether it was accepted (then the prompt is cleared)."""

    def __init__(self, host: SourceHost) -> None:
        self.host = host
        # Set on the UI thread before a worker starts, cleared by the worker when it ends:
        # an ingest while the index is re-embedded would add chunks the new collection
        # misses, so the two never overlap.
        self.ingesting = False
        self.adapting = False

    def documents(self, argument: str) -> bool:
        """Toggle answering from documents (with the sources panel)."""
        mode = "chat" if self.host.mode == "documents" else "documents"
        self.host.set_mode(mode)
        self.host.notify(
            "answers now come from your documents, with sources"
            if mode == "documents"
            else "documents off: plain chat"
        )
        return True

    def ingest(self, argument: str) -> bool:
        """Add files or folders to the documents, in a worker with progress."""
        if not argument:
            self.host.notify("say what to ingest: /ingest PATH", severity="warning")
            return False
        path = Path(argument).expanduser()
        if not path.exists() and not any(ch in argument for ch in "*?["):
            self.host.notify(f"no file or folder at {path}", severity="error", markup=False)
            return False
        if self.adapting:
            self.host.notify(
                "search is being adapted to your documents (see the status bar); "
                "/ingest again when it has finished",
                severity="warning",
            )
            return False
        self.ingesting = True
        self.host.start("ingest", self._ingest, str(path))
        return True

    def adapt(self, argument: str) -> bool:
        """Adapt search to the documents in the background: train the embedding model on
        pairs mined from them, judge it, re-embed and switch (``resume`` finishes an
        interrupted re-embedding). The chat goes on meanwhile on the old embeddings."""
        words = argument.split()
        resume = words == ["resume"]
        revert = words == ["revert"]
        seconds = ADAPT_SECONDS
        if words and not resume and not revert:
            try:
                seconds = float(words[0])
            except ValueError:
                seconds = -1.0
            if len(words) > 1 or not 0 < seconds < 86400:
                self.host.notify(ADAPT_USAGE, severity="warning", markup=False)
                return False
        if self.adapting or self.ingesting:
            doing = "being adapted" if self.adapting else "taking in an ingest"
            self.host.notify(f"search is {doing} already; wait for it to finish")
            return False
        if not self.host.services.paths.catalog.exists():
            self.host.notify("No documents yet: /ingest PATH first", severity="warning")
            return False
        self.adapting = True
        self.host.start("adapt", self._adapt, seconds, resume, revert)
        self.host.notify(
            "finishing the interrupted re-embedding in the background"
            if resume
            else "re-embedding with the unadapted model in the background"
            if revert
            else f"adapting search to your documents in the background (at most "
            f"{seconds:.0f} s of training, then re-embedding); keep chatting",
            markup=False,
        )
        return True

    def sources(self, argument: str) -> bool:
        """List the ingested files, or remove some: ``remove PATH|ID…``, ``remove
        --missing``, ``prune``."""
        try:
            words = shlex.split(argument)
        except ValueError:  # an unclosed quote: take the words as typed
            words = argument.split()
        if not words:
            self.host.start("sources", self._list)
            return True
        verb, targets = words[0].lower(), words[1:]
        missing = verb == "prune" or "--missing" in targets
        targets = [t for t in targets if t != "--missing"]
        if verb not in ("remove", "prune") or (verb == "remove" and not targets and not missing):
            self.host.notify(USAGE, severity="warning", markup=False)
            return False
        self.host.start("sources", self._remove, targets, missing, argument)
        return True

    # -- workers (off the UI thread) ---------------------------------------------------

    def _ingest(self, path: str) -> None:
        host, ui = self.host, self.host.ui
        ingest_fn = host.ingest_fn or host.services.index.ingest

        def progress(event: Any) -> None:
            name = event.status.path.rsplit("/", 1)[-1]
            ui(host.set_state, f"ingesting {event.done}/{event.total}: {name}")

        ui(host.set_state, f"ingesting {path}…")
        try:
            report = ingest_fn([path], progress)
        except Exception as exc:  # an unreadable file, the embedder, the vector store
            ui(host.set_state, "ready")
            message = f"ingest failed: {failure(exc)}"
            ui(host.notify, message, severity="error", timeout=10, markup=False)
            return
        finally:
            self.ingesting = False
        ui(host.set_state, "ready")
        ui(self._ingested, report)

    def _adapt(self, seconds: float, resume: bool, revert: bool = False) -> None:
        from assistant.rag import adaptation
        from assistant.rag.embeddings import DEFAULT_MODEL

        host, ui = self.host, self.host.ui
        config = host.services.config

        def step(done: int, total: int, elapsed: float) -> None:
            ui(host.set_background, f"adapting search: step {done}/{total}, {elapsed:.0f} s")

        def embedded(done: int, total: int) -> None:
            ui(host.set_background, f"re-embedding for adapted search: {done}/{total}")

        def say(line: str) -> None:
            ui(host.notify, line, timeout=8, markup=False)

        ui(host.set_background, "adapting search: mining pairs…")
        try:
            adaptation.pin_threads(config.train_threads)
            paths = host.services.paths
            if revert or resume:  # a re-embed only
                rerun = adaptation.revert if revert else adaptation.resume
                done = rerun(
                    paths.documents,
                    embedding_model=config.rag_embedding_model,
                    chroma_server=config.rag_chroma_server,
                    progress=embedded,
                )
                switched = True
                message = (
                    f"search serves {Path(config.rag_embedding_model or DEFAULT_MODEL).name}"
                    if revert
                    else f"re-embedded {done.embedded} chunks; search adapted"
                )
            else:
                report = adaptation.adapt_index(
                    paths.documents,
                    config.home,
                    base=config.rag_embedding_model,
                    chroma_server=config.rag_chroma_server,
                    seconds=seconds,
                    progress=False,
                    reembed_progress=embedded,
                    say=say,
                    on_step=step,
                )
                switched = report.switched
                message = (
                    f"search adapted to your documents as {report.name!r}: held-out nDCG@10 "
                    f"{report.adapted_score:.3f} (was {report.current_score:.3f})"
                    if switched
                    else report.reason
                )
        except Exception as exc:  # too few chunks, no [train] extra, the vector store
            ui(host.notify, f"adapting search failed: {failure(exc)}", severity="error",
               timeout=15, markup=False)  # fmt: skip
            return
        finally:
            self.adapting = False
            ui(host.set_background, "")
        if switched:
            host.services.reopen_index()  # the next search serves the new embeddings
        ui(host.notify, message, severity="information" if switched else "warning",
           timeout=15, markup=False)  # fmt: skip

    def _ingested(self, report: IngestReport) -> None:
        """On the UI thread: say what the ingest did, and how to ask about it."""
        from tui.help import key_display

        key = key_display(self.host.keys.app.get("documents_mode", ""))
        self.host.notify(ingest_summary(report, self.host.mode, key), timeout=15, markup=False)

    def _list(self) -> None:
        from assistant.rag.sources import listing

        host = self.host
        if not host.services.paths.catalog.exists():
            host.ui(host.add_note, "No documents yet: `/ingest PATH` adds files or folders.")
            return
        try:
            listed = listing(host.services.index)
        except Exception as exc:
            host.ui(host.notify, failure(exc), severity="error", timeout=10, markup=False)
            return
        host.ui(host.add_note, sources_markdown(listed))

    def _remove(self, targets: list[str], missing: bool, argument: str) -> None:
        from assistant.errors import DocumentNotFoundError
        from assistant.rag.sources import find_sources, missing_sources, remove_sources

        host, ui = self.host, self.host.ui
        try:
            index = host.services.index
            chosen = find_sources(index, targets)  # all are checked before any is removed
            if missing:
                known = {s.path for s in chosen}
                chosen += [s for s in missing_sources(index) if s.path not in known]
            report = remove_sources(index, chosen)
        except Exception as exc:  # no such source; the vector store
            ui(host.notify, failure(exc), severity="error", timeout=10, markup=False)
            if isinstance(exc, DocumentNotFoundError):  # nothing removed: fix and resend
                ui(host.put_in_prompt, f"/sources {argument}")
            return
        ui(host.notify, removal_summary(report), timeout=10, markup=False)


def ingest_summary(report: IngestReport, mode: str, key: str = "") -> str:
    """What an ingest did, then how to ask about the documents (from the current mode;
    ``key`` toggles documents mode)."""
    n = len(report.indexed)
    head = f"Indexed {n} file{'' if n == 1 else 's'}"
    if n:
        head += f" ({report.chunks} chunks)"
    counts = [
        (len(report.unchanged), "unchanged"),
        (len(report.duplicates), "duplicates (same content as another file)"),
        (len(report.skipped), "skipped"),
        (len(report.failed), "failed"),
    ]
    rest = ", ".join(f"{count} {what}" for count, what in counts if count)
    text = f"{head}; {rest}." if rest else f"{head}."
    if n == 0 and not report.unchanged:
        return f"{text} Nothing to ask about yet; /sources lists what was skipped and why."
    adapt = " /adapt tunes search to them (minutes, in the background)." if n else ""
    if mode == "documents":
        return f"{text} Documents mode is on: ask about them.{adapt}"
    also = f" (or {key})" if key else ""
    return f"{text} Switch to documents mode with /documents{also} to ask about them.{adapt}"


def sources_markdown(listed: list[Source]) -> str:
    """The /sources note: one line a file, as ``assistant sources`` prints them."""
    if not listed:
        return "No documents yet: `/ingest PATH` adds files or folders."
    from assistant.rag.discover import printable  # the package imports the index

    gone = sum(not s.exists for s in listed)
    lines = [
        f"**Documents**: {len(listed)} files. `/sources remove PATH|ID` removes one; "
        "`/documents` answers from them.",
        "",
        "```text",
        *(printable(f"{s.status.id:>4}  {s.describe()}").replace("```", "'''") for s in listed),
        "```",
    ]
    if gone:
        lines += ["", f"{gone} no longer on disk: `/sources prune` drops them."]
    return "\n".join(lines)


def removal_summary(report: RemoveReport) -> str:
    """What a removal did, in one notification."""
    from assistant.rag.discover import printable

    if not report.removed:
        return "nothing to remove: every listed file is on disk"
    names = ", ".join(Path(p).name for p in report.removed[:5])
    more = f" and {len(report.removed) - 5} more" if len(report.removed) > 5 else ""
    text = f"removed {len(report.removed)} from your documents: {names}{more}"
    promoted = report.promoted.indexed
    if promoted:
        text += f"; indexed {len(promoted)} copies that had the same content"
    return printable(text)
