"""``assistant train embeddings``: adapt the embedding model to your documents."""

from __future__ import annotations

import json
from typing import Any

import click

from assistant.paths import DataPaths
from assistant.rag.adapt import DEFAULT_BLEND, DEFAULT_KEEP
from assistant.rag.embeddings import DEFAULT_MODEL


class _Bar:
    """A tqdm bar for re-embedding, made on the first report (nothing to show otherwise)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if self.bar is None or self.bar.total != total:
            self.close()
            self.bar = tqdm(total=total, desc="re-embedding", unit="chunk")
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@click.command("embeddings")
@click.option("--name", help="Name for the adapted model (default: docs-DATE-TIME).")
@click.option(
    "--seconds", default=300.0, show_default=True, help="Time budget for training (seconds)."
)
@click.option("--max-steps", default=2000, show_default=True, help="Stop after this many steps.")
@click.option("--batch-size", default=16, show_default=True, help="Pairs per step.")
@click.option(
    "--keep",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=DEFAULT_KEEP,
    show_default=True,
    help="Share of the tuned weights kept, the rest the base model's (safer below 1).",
)
@click.option(
    "--blend",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=DEFAULT_BLEND,
    show_default=True,
    help="The adapted model's share of search similarity, the rest the base model's "
    "(1: the adapted model alone).",
)
@click.option("--force", is_flag=True, help="Switch even if it scores no better held out.")
@click.option("--resume", is_flag=True, help="Finish an interrupted re-embedding.")
@click.option(
    "--revert",
    is_flag=True,
    help="Serve the configured rag_embedding_model (unadapted) again, or after changing it "
    "(re-embeds).",
)
@click.option("--threads", type=int, help="CPU threads for torch (default: half the cores).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report.")
def embeddings(
    name: str | None,
    seconds: float,
    max_steps: int,
    batch_size: int,
    keep: float,
    blend: float,
    force: bool,
    resume: bool,
    revert: bool,
    threads: int | None,
    as_json: bool,
) -> None:
    """Adapt the embedding model to the ingested documents (no labels needed).

    Pairs are mined from the documents (headings and their sections, a sentence and the
    rest of its chunk, titles and bodies) with hard negatives from the current index;
    the model is trained for at most --seconds, saved and registered (blended with the
    base model, --blend), and judged against the current one on pairs from held-out
    files. Unless it ranks them worse, the documents are re-embedded into a new
    collection; the old one serves until that is done.
    """
    from assistant.cli.train import _setup
    from assistant.rag import adaptation

    config = _setup(threads)
    paths = DataPaths(config.home)
    bar = _Bar(not as_json)
    say = (lambda line: None) if as_json else (lambda line: click.echo(line, err=True))
    try:
        if revert or resume:  # a re-embed only: back to the unadapted model, or finished
            rerun = adaptation.revert if revert else adaptation.resume
            done = rerun(
                paths.documents,
                embedding_model=config.rag_embedding_model,
                chroma_server=config.rag_chroma_server,
                progress=bar,
            )
            bar.close()
            if as_json:
                click.echo(json.dumps(done.as_dict()))
            else:
                model = config.rag_embedding_model or DEFAULT_MODEL
                serving = f"serving {model}" if revert else f"now serving {done.collection}"
                click.echo(f"re-embedded {done.embedded} chunks; {serving}")
            return
        report = adaptation.adapt_index(
            paths.documents,
            config.home,
            base=config.rag_embedding_model,
            name=name,
            chroma_server=config.rag_chroma_server,
            seconds=seconds,
            max_steps=max_steps,
            batch_size=batch_size,
            keep=keep,
            blend=blend,
            force=force,
            progress=not as_json,
            reembed_progress=bar,
            say=say,
        )
    finally:
        bar.close()
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    click.echo(
        f"{report.name}: held-out nDCG@10 {report.adapted_score:.4f} "
        f"(current {report.current_score:.4f}); "
        + ("switched" if report.switched else "not switched")
    )
