"""A small HTML template: one self-contained page with inline CSS and embedded PNG images.

Nothing is fetched when the page opens (no scripts, fonts or style sheets from elsewhere), so
the file reads the same offline, attached to an e-mail or as an MLflow artifact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np
import pandas as pd

Formatter = Callable[[Any], str]

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       margin: 0; background: #f6f7f9; line-height: 1.45; }
header { background: #1f3b5a; color: #fff; padding: 22px 40px; }
header h1 { margin: 0 0 4px 0; font-size: 26px; }
header p { margin: 0; opacity: .85; }
nav { background: #fff; border-bottom: 1px solid #dde1e6; padding: 8px 40px; position: sticky;
      top: 0; z-index: 1; }
nav a { margin-right: 18px; color: #1f5fa8; text-decoration: none; font-size: 14px; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 40px 40px 40px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; margin: 22px 0;
          padding: 8px 26px 18px 26px; }
h2 { border-bottom: 2px solid #1f3b5a; padding-bottom: 4px; }
h3 { margin-top: 26px; color: #1f3b5a; }
p.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: 8px 12px; }
table { border-collapse: collapse; margin: 10px 0 16px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 4px 10px; text-align: left; }
th { background: #f0f2f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.card td:first-child { font-weight: 600; color: #444; }
table.card td { text-align: left; }
figure { margin: 14px 0 20px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eceef1; }
figcaption { font-size: 13px; color: #555; margin-top: 4px; }
.examples { display: grid; grid-template-columns: 1fr; gap: 6px; }
footer { color: #777; font-size: 12px; text-align: center; padding: 18px; }
"""


@dataclass
class Section:
    """One section of the report: an id (anchor), a heading and HTML blocks in order."""

    id: str
    title: str
    blocks: list[str] = field(default_factory=list)

    def text(self, html: str) -> None:
        """A paragraph; `html` is trusted markup built by the report code."""
        self.blocks.append(f"<p>{html}</p>")

    def note(self, message: str) -> None:
        """A highlighted remark (plain text)."""
        self.blocks.append(f'<p class="note">{escape(message)}</p>')

    def heading(self, title: str) -> None:
        self.blocks.append(f"<h3>{escape(title)}</h3>")

    def figure(self, data_uri: str, alt: str, caption: str) -> None:
        """An embedded image (a data URI) with alt text and a caption (plain text)."""
        if not data_uri.startswith("data:image/png;base64,"):
            raise ValueError("figures must be embedded PNG data URIs")
        self.blocks.append(
            f'<figure><img src="{data_uri}" alt="{escape(alt)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )

    def table(
        self,
        frame: pd.DataFrame,
        formats: dict[str, Formatter] | None = None,
        headers: dict[str, str] | None = None,
        css_class: str = "",
    ) -> None:
        """A table of `frame`'s columns, each cell formatted by `formats[column]` (else str)."""
        self.blocks.append(render_table(frame, formats or {}, headers or {}, css_class))

    def card(self, rows: Sequence[tuple[str, str]]) -> None:
        """A two-column key/value table (plain text)."""
        frame = pd.DataFrame(rows, columns=["item", "value"])
        self.blocks.append(render_table(frame, {}, {"item": "", "value": ""}, "card"))


def render_table(
    frame: pd.DataFrame,
    formats: dict[str, Formatter],
    headers: dict[str, str],
    css_class: str = "",
) -> str:
    """An escaped HTML table; `headers` renames columns, `formats` formats their cells."""
    head = "".join(f"<th>{escape(headers.get(c, str(c)))}</th>" for c in frame.columns)
    body = []
    for record in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, record, strict=True):
            text = formats[column](value) if column in formats else _plain(value)
            numeric = isinstance(value, int | float | np.number) and not isinstance(value, bool)
            attribute = ' class="num"' if numeric else ""
            cells.append(f"<td{attribute}>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    klass = f' class="{escape(css_class)}"' if css_class else ""
    head_row = f"<thead><tr>{head}</tr></thead>" if any(headers.get(c, c) for c in frame) else ""
    return f"<table{klass}>{head_row}<tbody>{''.join(body)}</tbody></table>"


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def render_page(title: str, subtitle: str, sections: Sequence[Section], footer: str) -> str:
    """The whole page: header, a navigation bar to each section, the sections, a footer."""
    nav = "".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in sections)
    body = "\n".join(
        f'<section id="{escape(s.id)}"><h2>{escape(s.title)}</h2>\n'
        + "\n".join(s.blocks)
        + "</section>"
        for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>\n"
        f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n"
        f"<footer>{escape(footer)}</footer>\n</body>\n</html>\n"
    )
