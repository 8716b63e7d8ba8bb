"""``assistant ingest``, ``resync``, ``search``, ``sources`` and ``ask --docs``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import click

from assistant.config import Config, load_config
from assistant.rag.discover import printable
from assistant.rag.index import Event, Hit, IngestReport


def _index(config: Config) -> Any:
    from assistant.rag import index_for

    return index_for(config)


class _Progress:
    """Progress of an ingest on stderr: a bar on a terminal, else a line a file.

    Unchanged files print nothing (a second ingest of the same folder prints only its
    summary); what a bar cannot show (skipped, failed, duplicates) follows the summary.
    """

    def __init__(self, as_json: bool, stream: Any = None) -> None:
        self.quiet = as_json
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar: Any = None

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        if self.tty:
            self._advance(event)
        elif event.outcome != "unchanged":
            s = event.status
            detail = f"{s.chunks} chunks" if event.outcome == "indexed" else s.reason
            line = f"[{event.done}/{event.total}] {event.outcome:8} {s.path}  {detail}"
            click.echo(printable(line), file=self.stream)

    def _advance(self, event: Event) -> None:
        if self.bar is None:
            self.bar = click.progressbar(
                length=event.total,
                label="indexing",
                show_pos=True,
                item_show_func=lambda name: name,
                file=self.stream,
            )
            self.bar.__enter__()
        self.bar.length = max(self.bar.length, event.total)  # duplicates promoted at the end
        self.bar.update(1, printable(Path(event.status.path).name))

    def __enter__(self) -> _Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.__exit__(kind, exc, tb)


def _summary(report: IngestReport) -> str:
    """``indexed 2 files (5 chunks), 4 unchanged, 1 duplicate in 0.8 s``: zero counts of
    the rarer outcomes are left out."""
    n = len(report.indexed)
    parts = [f"indexed {n} file{'' if n == 1 else 's'}"]
    if n:
        parts[0] += f" ({report.chunks} chunks)"
    parts.append(f"{len(report.unchanged)} unchanged")
    extra = [
        (len(report.duplicates), "duplicates" if len(report.duplicates) != 1 else "duplicate"),
        (len(report.skipped), "skipped"),
        (len(report.failed), "failed"),
        (len(report.removed), "removed"),
    ]
    parts += [f"{count} {what}" for count, what in extra if count]
    return ", ".join(parts) + f" in {report.seconds:.1f} s"


def _print_report(report: IngestReport, as_json: bool, tty: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    click.echo(_summary(report))
    for status in report.duplicates:
        click.echo(printable(f"duplicate: {status.path} (same content as {status.duplicate_of})"))
    if tty:  # the bar showed no reasons
        for status in report.skipped:
            click.echo(printable(f"skipped: {status.path}: {status.reason}"))
    for status in report.failed:
        click.echo(printable(f"failed: {status.path}: {status.reason}"))


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report.")
def ingest(paths: tuple[str, ...], as_json: bool) -> None:
    """Index files, folders (recursively) and glob patterns for `search` and `ask --docs`.

    Files without an extension (README, Makefile) are indexed when they hold text; a file
    with the content of one already indexed is listed as its duplicate, not indexed twice.
    """
    index = _index(load_config())
    with _Progress(as_json) as progress:
        report = index.ingest(list(paths), progress)
    _print_report(report, as_json, progress.tty)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report.")
def resync(as_json: bool) -> None:
    """Re-check every ingested file: re-index changed ones, forget deleted ones."""
    index = _index(load_config())
    with _Progress(as_json) as progress:
        report = index.resync(progress)
    _print_report(report, as_json, progress.tty)


@click.command()
@click.argument("query")
@click.option("-k", "k", type=int, default=5, show_default=True, help="How many results.")
@click.option(
    "--mode", type=click.Choice(["hybrid", "dense", "keyword"]), default="hybrid",
    show_default=True, help="Retrieval method.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of hits.")
@click.option(
    "--all", "everything", is_flag=True,
    help="Search chats, documents and remembered facts together (one ranked list).",
)  # fmt: skip
def search(query: str, k: int, mode: str, as_json: bool, everything: bool) -> None:
    """Search the ingested documents (with --all: chats and facts too)."""
    if everything:
        from assistant.search_all import print_all

        print_all(load_config(), query, k, as_json)
        return
    hits: list[Hit] = _index(load_config()).search(query, k, mode)
    if as_json:
        click.echo(json.dumps([h.as_dict() for h in hits]))
        return
    if not hits:
        click.echo("no results")
    for n, hit in enumerate(hits, 1):
        heading = f"  ({hit.heading})" if hit.heading else ""
        click.echo(printable(f"{n}. {hit.location()}{heading}  score {hit.score:.3f}"))
        snippet = " ".join(hit.text.split())
        click.echo(printable(f"   {snippet[:200]}{'…' if len(snippet) > 200 else ''}"))


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """List ingested files with their id, status, chunk count and time.

    Files no longer on disk are listed as missing; `sources prune` drops them.
    """
    if ctx.invoked_subcommand is not None:
        return
    from assistant.rag.sources import listing

    listed = listing(_index(load_config()))
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in listed]))
        return
    if not listed:
        click.echo("no documents yet; run `assistant ingest PATH`")
    for source in listed:
        click.echo(printable(f"{source.status.id:>4}  {source.describe()}"))
    gone = sum(not s.exists for s in listed)
    if gone:
        are = "files are" if gone > 1 else "file is"
        click.echo(f"{gone} listed {are} no longer on disk; `assistant sources prune` drops them")


@sources.command("remove")
@click.argument("targets", nargs=-1)
@click.option("--missing", is_flag=True, help="Also remove every listed file gone from disk.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report.")
def remove(targets: tuple[str, ...], missing: bool, as_json: bool) -> None:
    """Remove files (by path, by id from `sources`, or every file under a folder) from the
    documents: their chunks leave the vector store and the keyword index."""
    from assistant.rag.sources import find_sources, missing_sources

    if not targets and not missing:
        raise click.UsageError("say what to remove: PATH, ID or FOLDER (or --missing)")
    index = _index(load_config())
    chosen = find_sources(index, list(targets))  # all are checked before any is removed
    if missing:
        chosen += [s for s in missing_sources(index) if s.path not in {c.path for c in chosen}]
    _remove(index, chosen, as_json)


@sources.command("prune")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report.")
def prune(as_json: bool) -> None:
    """Remove every listed file that no longer exists on disk."""
    from assistant.rag.sources import missing_sources

    index = _index(load_config())
    _remove(index, missing_sources(index), as_json)


def _remove(index: Any, chosen: list[Any], as_json: bool) -> None:
    from assistant.rag.sources import remove_sources

    with _Progress(as_json) as progress:
        report = remove_sources(index, chosen, progress)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    if not report.removed:
        click.echo("nothing to remove: every listed file is on disk")
    for path in report.removed:
        click.echo(printable(f"removed {path}"))
    for status in report.promoted.indexed:
        click.echo(printable(f"indexed {status.path} (it had the content of a removed file)"))
