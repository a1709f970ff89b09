"""A tiny document model rendered to both Markdown and self-contained HTML.

The report is built once as a list of blocks and rendered twice, so
``report.md`` and ``report.html`` always say the same thing. Images are
referenced by relative path in Markdown and embedded as data URIs in HTML, so
the HTML file can be mailed or archived on its own.

Text (headings, paragraphs, table cells, captions) may carry inline Markdown:
``code``, **bold**, *emphasis*, [links](url). The Markdown side writes it as is;
the HTML side renders it with markdown-it-py (CommonMark, raw HTML escaped), so
both show the same marks.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

# CommonMark with raw HTML off: "<" in a report's text is shown, never interpreted.
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Image:
    path: Path
    caption: str


@dataclass
class Code:
    text: str


Block = Heading | Paragraph | Table | Image | Code


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> "Document":
        self.blocks.extend(blocks)
        return self

    def to_markdown(self, base: Path) -> str:
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            if isinstance(block, Heading):
                out += ["#" * block.level + " " + block.text, ""]
            elif isinstance(block, Paragraph):
                out += [block.text, ""]
            elif isinstance(block, Code):
                out += ["```", block.text.rstrip(), "```", ""]
            elif isinstance(block, Table):
                if block.caption:
                    out += [f"*{block.caption}*", ""]
                out.append("| " + " | ".join(block.header) + " |")
                out.append("|" + "|".join("---" for _ in block.header) + "|")
                out += ["| " + " | ".join(str(c) for c in row) + " |" for row in block.rows]
                out.append("")
            elif isinstance(block, Image):
                rel = os.path.relpath(block.path, base)
                out += [f"![{block.caption}]({rel})", "", f"*{block.caption}*", ""]
        return "\n".join(out)

    def to_html(self) -> str:
        body = [f"<h1>{_inline(self.title)}</h1>"]
        for block in self.blocks:
            if isinstance(block, Heading):
                body.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
            elif isinstance(block, Paragraph):
                body.append(f"<p>{_inline(block.text)}</p>")
            elif isinstance(block, Code):
                body.append(f"<pre>{html.escape(block.text)}</pre>")
            elif isinstance(block, Table):
                cap = f"<caption>{_inline(block.caption)}</caption>" if block.caption else ""
                head = "".join(f"<th>{_inline(h)}</th>" for h in block.header)
                rows = "".join(
                    "<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in row) + "</tr>" for row in block.rows
                )
                body.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif isinstance(block, Image):
                body.append(
                    f'<figure><img src="{_data_uri(block.path)}" alt="{html.escape(_plain(block.caption))}">'
                    f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
                )
        return _PAGE.format(title=html.escape(_plain(self.title)), body="\n".join(body))


def _inline(text: str) -> str:
    """``text``'s inline Markdown as HTML (what a Markdown viewer shows for the same line of report.md)."""
    return _MARKDOWN.renderInline(text)


def _plain(text: str) -> str:
    """``text`` without its inline Markdown marks, for places that take plain text (alt, the page title)."""
    tokens = _MARKDOWN.parseInline(text)[0].children or []
    return "".join(" " if t.type == "softbreak" else t.content for t in tokens if t.type in _PLAIN_TOKENS)


_PLAIN_TOKENS = ("text", "code_inline", "softbreak")


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(path.suffix.lower(), "image/png")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
caption {{ caption-side: top; font-style: italic; text-align: left; padding-bottom: .3rem; }}
figure {{ margin: 1rem 0; }} img {{ max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }}
figcaption {{ font-style: italic; color: #555; }}
pre {{ background: #f6f6f6; padding: .6rem; overflow-x: auto; }}
</style></head>
<body>
{body}
<script>
// Records each picture's decoded size, so a headless browser can prove the images load.
window.addEventListener("load", () => document.querySelectorAll("img").forEach(
  (img) => {{ img.dataset.natural = img.naturalWidth + "x" + img.naturalHeight; }}));
</script>
</body></html>
"""
