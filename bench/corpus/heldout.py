"""Held-out retrieval corpora from Debian doc packages (real questions, honest qrels).

Two corpora, neither used to choose any setting of the embedding adaptation:

- ``debian``: the Debian FAQ's question sections (debian-faq) answered by their text with
  the question removed (the chapter title stays as the heading), among whole chapters of
  the Debian Reference (debian-reference-en) as distractors;
- ``devtools``: the questions of git's FAQ (git-doc ``gitfaq.html``) and SQLite's FAQ
  (sqlite3-doc ``faq.html``), answers written the same way, among git's manual pages and
  SQLite's documentation pages as distractors.

Each answer is its own small HTML file, so a question's relevant chunks are the chunks of
its answer file. Distractors are added in a seeded random order until ``target_chunks``.
Run: ``python bench/corpus/heldout.py debian|devtools OUT_DIR [TARGET_CHUNKS]``.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html import escape
from pathlib import Path

DEBIAN_FAQ = Path("/usr/share/doc/debian/FAQ")
DEBIAN_REFERENCE = Path("/usr/share/debian-reference")
GIT_DOC = Path("/usr/share/doc/git-doc")
SQLITE_DOC = Path("/usr/share/doc/sqlite3")
POSTGRES_DOC = Path("/usr/share/doc/postgresql-doc-15/html")
PACKAGES = {
    "debian": (["debian-faq", "debian-reference-en"], [DEBIAN_FAQ / "index.en.html"]),
    "devtools": (["git-doc", "sqlite3-doc"], [GIT_DOC / "gitfaq.html", SQLITE_DOC / "faq.html"]),
    "pgdocs": (["postgresql-doc-15"], [POSTGRES_DOC / "index.html"]),
    "sqlitedocs": (["sqlite3-doc"], [SQLITE_DOC / "faq.html"]),
    "gitdocs": (["git-doc"], [GIT_DOC / "git-gc.html"]),
}
# The document-QA sets (bench/docqa.py) as retrieval corpora: their pages as they ship, and
# their answerable questions, relevant where a gold answer is (one page or more).
HERE = Path(__file__).resolve().parent
DOCQA = {
    "pgdocs": (POSTGRES_DOC, HERE / "postgresql_docqa.json"),
    "sqlitedocs": (SQLITE_DOC, HERE / "sqlite_docqa.json"),
    "gitdocs": (GIT_DOC, HERE / "git_docqa.json"),
}


def ensure(name: str) -> None:
    """Install the corpus's doc packages when they are missing."""
    packages, marks = PACKAGES[name]
    if not all(m.exists() for m in marks):
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", *packages], check=True
        )


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("¶", "")).strip()


def debian_questions() -> Iterator[tuple[str, str, str]]:
    """(title, question, answer html) for each leaf Debian FAQ section asking a question."""
    from selectolax.lexbor import LexborHTMLParser

    for page in sorted(DEBIAN_FAQ.glob("*.en.html")):
        tree = LexborHTMLParser(page.read_text(errors="replace"))
        chapter = tree.css_first("h1.title, h2.title")
        title = _clean(chapter.text()) if chapter else page.stem
        for section in tree.css("div.section"):
            heading = section.css_first(".title")
            if heading is None or len(section.css("div.section")) > 1:
                continue
            question = re.sub(r"^[\d.]+\s*", "", _clean(heading.text()))
            if not question.endswith("?"):
                continue
            heading.decompose()
            yield re.sub(r"^Chapter [\d.]+\s*", "", title), question, section.html or ""


def git_questions() -> Iterator[tuple[str, str, str]]:
    """(title, question, answer html) for each entry of git's FAQ."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser((GIT_DOC / "gitfaq.html").read_text(errors="replace"))
    for sect in tree.css("div.sect1"):
        h2 = sect.css_first("h2")
        title = f"gitfaq > {_clean(h2.text())}" if h2 else "gitfaq"
        for dt in sect.css("dt.hdlist1"):
            dd = dt.next
            while dd is not None and dd.tag != "dd":
                dd = dd.next
            if dd is not None:
                yield title, _clean(dt.text()), dd.html or ""


def sqlite_questions() -> Iterator[tuple[str, str, str]]:
    """(title, question, answer html) for each entry of SQLite's FAQ."""
    text = (SQLITE_DOC / "faq.html").read_text(errors="replace")
    for match in re.finditer(
        r"<p><b>\(\d+\)\s*(.*?)</b></p>\s*<blockquote>(.*?)</blockquote>", text, re.S
    ):
        question = _clean(re.sub(r"<[^>]+>", "", match.group(1)))
        yield "SQLite Frequently Asked Questions", question, match.group(2)


def distractor_pages(name: str) -> list[Path]:
    """The whole pages mixed in as distractors."""
    if name == "debian":
        return sorted(DEBIAN_REFERENCE.glob("*.en.html"))
    git = [p for p in GIT_DOC.glob("*.html") if p.name != "gitfaq.html"]
    sqlite = [p for p in SQLITE_DOC.glob("*.html") if p.name not in ("faq.html", "index.html")]
    return sorted(git + sqlite)


def build(name: str, out: Path, target_chunks: int = 1500, seed: int = 13) -> dict[str, object]:
    """Write corpus ``name`` under ``out`` and return its manifest (also manifest.json)."""
    from assistant.rag.chunking import chunk_sections
    from assistant.rag.loaders import LoadError, load

    ensure(name)
    if out.exists():
        shutil.rmtree(out)
    if name in DOCQA:
        return _build_docqa(name, out)
    (out / "answers").mkdir(parents=True)
    found = (
        list(debian_questions())
        if name == "debian"
        else list(git_questions()) + list(sqlite_questions())
    )
    questions = []
    total = 0
    seen: set[str] = set()
    for n, (title, question, body) in enumerate(found):
        if question in seen:
            continue
        seen.add(question)
        heads = "".join(f"<h{i}>{escape(t)}</h{i}>" for i, t in enumerate(title.split(" > "), 1))
        path = out / "answers" / f"{n:03d}.html"
        path.write_text(f"<html><body><main>{heads}{body}</main></body></html>")
        try:
            total += len(chunk_sections(load(path)))
        except LoadError:
            path.unlink()
            continue
        questions.append({"id": n, "question": question, "source": str(path)})
    pages = distractor_pages(name)
    random.Random(seed).shuffle(pages)
    for page in pages:
        if total >= target_chunks:
            break
        try:
            count = len(chunk_sections(load(page)))
        except LoadError:
            continue
        target = out / "pages" / page.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(page, target)
        total += count
    manifest = {"name": name, "questions": questions, "chunks": total, "root": str(out)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


if __name__ == "__main__":
    target = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    info = build(sys.argv[1], Path(sys.argv[2]), target)
    print(json.dumps({"questions": len(info["questions"]), "chunks": info["chunks"]}))  # type: ignore[arg-type]


def _build_docqa(name: str, out: Path) -> dict[str, object]:
    """A document-QA set's pages and answerable questions (``sources``: its gold pages)."""
    doc, path = DOCQA[name]
    data = json.loads(path.read_text())
    if "pages" in data:
        pages = list(data["pages"])
    else:  # sqlite's page list lives with its bench
        from docqa import PAGES

        pages = list(PAGES)
    (out / "pages").mkdir(parents=True)
    for page in pages:
        shutil.copy(doc / f"{page}.html", out / "pages" / f"{page}.html")
    questions = [
        {
            "id": i,
            "question": q["q"],
            "source": str(out / "pages" / q["files"][0]),
            "sources": [str(out / "pages" / f) for f in q["files"]],
        }
        for i, q in enumerate(data["questions"])
        if q["answers"] and q["files"]
    ]
    manifest = {"name": name, "questions": questions, "chunks": 0, "root": str(out)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
