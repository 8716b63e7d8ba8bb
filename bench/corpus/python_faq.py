"""Build a retrieval eval corpus from Debian's python3.11-doc (real questions, honest qrels).

Questions are the Python FAQ's question headings (faq/*.html: headings that end in "?",
on sections with no subsections). Each answer is written as its own small HTML file WITHOUT
its question heading (the page title and category stay as headings), so a retriever cannot
match the question against its own text. The relevant chunks of a question are the chunks
of its answer file. Distractors are whole, unmodified pages of the same documentation,
added in a seeded random order until the corpus reaches ``target_chunks``.

Run: ``python bench/corpus/python_faq.py OUT_DIR [TARGET_CHUNKS]`` (installs the package
with apt-get when it is missing).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from html import escape
from pathlib import Path

DOC = Path("/usr/share/doc/python3.11/html")


def ensure_docs() -> Path:
    """Install python3.11-doc if its HTML is not there yet."""
    if not (DOC / "faq" / "programming.html").exists():
        subprocess.run(["apt-get", "install", "-y", "python3.11-doc"], check=True)
    return DOC


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("¶", "")).strip()


def faq_answers() -> list[tuple[str, str, str, str]]:
    """Return (page, category path, question, answer html) for every FAQ question."""
    from selectolax.lexbor import LexborHTMLParser

    found = []
    for page in sorted((DOC / "faq").glob("*.html")):
        if page.name == "index.html":
            continue
        tree = LexborHTMLParser(page.read_text())
        for section in tree.css("section"):
            heading = section.css_first("h1, h2, h3, h4, h5")
            if heading is None or len(section.css("section")) > 1:
                continue
            question = _clean(heading.text())
            if not question.endswith("?"):
                continue
            parents = []
            node = section.parent
            while node is not None:
                if node.tag == "section":
                    h = node.css_first("h1, h2, h3, h4")
                    if h is not None:
                        parents.append(_clean(h.text()))
                node = node.parent
            heading.decompose()
            found.append((page.stem, " > ".join(reversed(parents)), question, section.html or ""))
    return found


def build(out: Path, target_chunks: int = 2000, seed: int = 13) -> dict[str, object]:
    """Write the corpus under ``out`` and return its manifest (also saved as manifest.json)."""
    from assistant.rag.chunking import chunk_sections
    from assistant.rag.loaders import LoadError, load

    ensure_docs()
    if out.exists():
        shutil.rmtree(out)
    (out / "faq").mkdir(parents=True)
    questions = []
    total = 0
    for n, (page, parents, question, body) in enumerate(faq_answers()):
        titles = parents.split(" > ") if parents else []
        heads = "".join(f"<h{i}>{escape(t)}</h{i}>" for i, t in enumerate(titles, 1))
        path = out / "faq" / f"{page}-{n:03d}.html"
        path.write_text(f"<html><body><main>{heads}{body}</main></body></html>")
        try:
            total += len(chunk_sections(load(path)))
        except LoadError:
            path.unlink()
            continue
        questions.append({"id": n, "question": question, "source": str(path)})
    pages = sorted(
        p
        for p in DOC.rglob("*.html")
        if "faq" not in p.parts and not p.name.startswith(("genindex", "py-modindex", "search"))
    )
    random.Random(seed).shuffle(pages)
    for page in pages:
        if total >= target_chunks:
            break
        try:
            count = len(chunk_sections(load(page)))
        except LoadError:
            continue
        target = out / "pages" / page.relative_to(DOC)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(page, target)
        total += count
    manifest = {"questions": questions, "chunks": total, "root": str(out)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


if __name__ == "__main__":
    target = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    info = build(Path(sys.argv[1]), target)
    print(json.dumps({"questions": len(info["questions"]), "chunks": info["chunks"]}))  # type: ignore[arg-type]
