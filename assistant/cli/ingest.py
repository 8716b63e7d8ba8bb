"""``assistant ingest``, ``resync``, ``search``, ``sources`` and ``ask --docs``."""

from __future__ import annotations

import json
from typing import Any

import click

from assistant.config import Config, load_config
from assistant.rag.discover import printable
from assistant.rag.index import Event, Hit, IngestReport


def _index(config: Config) -> Any:
    from assistant.rag import index_for

    return index_for(config)


def _progress(as_json: bool) -> Any:
    def show(event: Event) -> None:
        if as_json:
            return
        s = event.status
        detail = f"{s.chunks} chunks" if s.status == "indexed" else s.reason
        line = f"[{event.done}/{event.total}] {s.status:8} {s.path}  {detail}"
        click.echo(printable(line), err=True)

    return show


def _print_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    click.echo(
        f"indexed {len(report.indexed)} files ({report.chunks} chunks), "
        f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped, "
        f"{len(report.failed)} failed, {len(report.removed)} removed "
        f"in {report.seconds:.1f} s"
    )
    for status in report.failed:
        click.echo(printable(f"failed: {status.path}: {status.reason}"))


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report.")
def ingest(paths: tuple[str, ...], as_json: bool) -> None:
    """Index files, folders (recursively) and glob patterns for `search` and `ask --docs`."""
    index = _index(load_config())
    _print_report(index.ingest(list(paths), _progress(as_json)), as_json)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report.")
def resync(as_json: bool) -> None:
    """Re-check every ingested file: re-index changed ones, forget deleted ones."""
    index = _index(load_config())
    _print_report(index.resync(_progress(as_json)), as_json)


@click.command()
@click.argument("query")
@click.option("-k", "k", type=int, default=5, show_default=True, help="How many results.")
@click.option(
    "--mode", type=click.Choice(["hybrid", "dense", "keyword"]), default="hybrid",
    show_default=True, help="Retrieval method.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of hits.")
def search(query: str, k: int, mode: str, as_json: bool) -> None:
    """Search the ingested documents."""
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


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def sources(as_json: bool) -> None:
    """List ingested files with their status, chunk count and time."""
    statuses = _index(load_config()).sources()
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in statuses]))
        return
    if not statuses:
        click.echo("no documents yet; run `assistant ingest PATH`")
    for s in statuses:
        detail = f"{s.chunks} chunks, {s.seconds:.2f} s" if s.status == "indexed" else s.reason
        click.echo(printable(f"{s.status:8} {s.path}  {detail}"))
