"""The report's document model: one list of blocks, the same text in report.md and report.html."""

from __future__ import annotations

import re

import numpy as np
from PIL import Image as PILImage

from augreid.pipeline.document import Code, Document, Heading, Image, Paragraph, Table


def _doc(tmp_path) -> Document:
    picture = tmp_path / "figs" / "curve.png"
    picture.parent.mkdir()
    PILImage.fromarray(np.zeros((4, 6, 3), np.uint8)).save(picture)
    return Document("Run `demo`").add(
        Heading("Generator `pg2`"),
        Paragraph("Checkpoint `x/y.safetensors` after **40** iterations; see [the paper](https://example.org/pg2)."),
        Table(["arm", "`mAP`"], [["Checkpoint `x/y.safetensors`", "**51.2**"], ["a <b> & c", 3]], caption="per `seed`"),
        Image(picture, "learning curve of `bot`"),
        Code("name = `kept as typed` <here>"),
    )


def test_html_renders_inline_markdown_where_markdown_shows_it(tmp_path):
    doc = _doc(tmp_path)
    page = doc.to_html()
    body = page.split("<body>", 1)[1].split("<script>", 1)[0]
    assert "<td>Checkpoint <code>x/y.safetensors</code></td>" in body
    assert "<p>Checkpoint <code>x/y.safetensors</code> after <strong>40</strong> iterations; see " in body
    assert '<a href="https://example.org/pg2">the paper</a>' in body
    assert "<h1>Run <code>demo</code></h1>" in body and "<h2>Generator <code>pg2</code></h2>" in body
    assert "<th><code>mAP</code></th>" in body and "<td><strong>51.2</strong></td>" in body
    assert "<caption>per <code>seed</code></caption>" in body
    assert "<figcaption>learning curve of <code>bot</code></figcaption>" in body
    assert "<td>a &lt;b&gt; &amp; c</td>" in body  # raw HTML in text is shown, not interpreted
    # A code block is verbatim: its backticks are its content. Everywhere else none is left over.
    code = re.search(r"<pre>(.*?)</pre>", body, flags=re.S)
    assert code is not None and code.group(1) == "name = `kept as typed` &lt;here&gt;"
    assert "`" not in body.replace(code.group(0), "") and "**" not in body
    # Where HTML takes plain text, the marks are dropped.
    assert "<title>Run demo</title>" in page and 'alt="learning curve of bot"' in body


def test_markdown_keeps_the_text_as_written(tmp_path):
    text = _doc(tmp_path).to_markdown(tmp_path)
    assert text.startswith("# Run `demo`\n")
    assert "| Checkpoint `x/y.safetensors` | **51.2** |" in text
    assert "![learning curve of `bot`](figs/curve.png)" in text
    assert "```\nname = `kept as typed` <here>\n```" in text
