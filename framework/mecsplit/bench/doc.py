"""A tiny document model rendered to markdown and to HTML (sortable tables, links, PNG + SVG figures)."""

from __future__ import annotations

import html
import math
import re
from typing import Any


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-.") or "x"  # never "." or "..": a folder name


def fmt(x, nd=4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{nd}g}"
    return str(x)


class Cell:
    """A table cell with display text, an optional sort key (number), link and CSS class (HTML:
    ``good`` / ``near`` / ``far`` shade the cell green / yellow / red)."""

    def __init__(self, text: Any, sort: float | None = None, href: str | None = None, cls: str = ""):
        self.text, self.sort, self.href, self.cls = fmt(text), sort, href, cls


# Click a column header to sort (again: reverse). Numbers sort by the cell's data-v (raw value), text by
# its content; missing values ("–", empty) sort last.
SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, _) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], i = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = th.getAttribute('data-dir') !== 'asc';
    th.parentNode.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-dir'); });
    th.setAttribute('data-dir', asc ? 'asc' : 'desc');
    var key = function (row) {
      var c = row.cells[i]; if (!c) return '';
      var v = c.getAttribute('data-v'); if (v !== null) return parseFloat(v);
      var t = c.textContent.trim(); if (t === '–' || t === '') return NaN;
      return t.toLowerCase();
    };
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a), y = key(b), c;
      if (typeof x === 'number' && typeof y === 'number') { c = (isNaN(x) ? Infinity : x) - (isNaN(y) ? Infinity : y); if (isNaN(c)) c = 0; }
      else c = String(x).localeCompare(String(y), undefined, {numeric: true});
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

CSS = ("body{font-family:system-ui,sans-serif;max-width:1280px;margin:auto;padding:0 12px;color:#222}"
       "table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ccc;padding:2px 7px;"
       "text-align:right}td.t,th{text-align:left}th{background:#eee}table.sortable th{cursor:pointer}"
       "table.sortable th[data-dir=asc]::after{content:' ▲'}table.sortable th[data-dir=desc]::after{content:' ▼'}"
       "tbody tr:nth-child(even){background:#f8f8f8}tbody tr:hover{background:#eef4ff}img{max-width:100%}"
       "p.note{font-size:12px;color:#555}details{margin:6px 0}summary{cursor:pointer;font-weight:600}"
       "pre{font-size:12px;background:#f6f6f6;padding:6px;overflow:auto}"
       "td.good{background:#d9f2d9}td.near{background:#fff3c4}td.far{background:#f9d3d0}")


class Doc:
    """Blocks: headings (with an anchor), paragraphs, tables, images, raw HTML (HTML only)."""

    def __init__(self, title: str):
        self.title, self.blocks = title, []

    def h(self, level: int, text: str, anchor: str | None = None):
        self.blocks.append(("h", level, text, anchor))

    def p(self, text: str, note: bool = False):
        self.blocks.append(("p", text, note))

    def table(self, header: list[str], rows: list[list[Any]], html_only: bool = False, summary: str | None = None):
        """``summary``: HTML only, the table is folded under it (<details>)."""
        self.blocks.append(("table", header, rows, html_only, summary))

    def img(self, path: str, alt: str):
        self.blocks.append(("img", path, alt))

    def raw(self, html_text: str):
        self.blocks.append(("raw", html_text))

    def markdown(self) -> str:
        out = [f"# {self.title}\n"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"{'#' * b[1]} {b[2]}\n")
            elif b[0] == "p":
                out.append(b[1] + "\n")
            elif b[0] == "table" and not b[3]:
                out.append("| " + " | ".join(b[1]) + " |")
                out.append("|" + "---|" * len(b[1]))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b[2]]
                out.append("")
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]}) ([SVG]({_svg(b[1])}))\n")
        return "\n".join(out)

    def html(self) -> str:
        e = html.escape
        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(self.title)}</title>"
               f"<style>{CSS}</style></head><body>", f"<h1>{e(self.title)}</h1>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}{_id(b[3])}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p{' class=note' if b[2] else ''}>{e(b[1])}</p>")
            elif b[0] == "table":
                t = _html_table(b[1], b[2])
                out.append(f"<details><summary>{e(b[4])}</summary>{t}</details>" if b[4] else t)
            elif b[0] == "img":
                out.append(f"<p><img src='{e(b[1])}' alt='{e(b[2])}'><br><a href='{e(_svg(b[1]))}'>SVG</a> · "
                           f"<a href='{e(b[1])}'>PNG</a></p>")
            elif b[0] == "raw":
                out.append(b[1])
        return "\n".join(out + [f"<script>{SORT_JS}</script></body></html>"])


def _id(anchor):
    return f" id='{html.escape(anchor)}'" if anchor else ""


def _svg(path: str) -> str:
    return re.sub(r"\.png$", ".svg", path)


def _md_cell(c) -> str:
    if isinstance(c, Cell):
        return f"[{c.text}]({c.href})" if c.href else c.text
    return fmt(c).replace("|", "\\|")


def _html_table(header, rows) -> str:
    e = html.escape
    out = ["<table class='sortable'><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for row in rows:
        tds = []
        for c in row:
            if not isinstance(c, Cell):
                c = Cell(c, c if isinstance(c, (int, float)) and not isinstance(c, bool) else None)
            classes = ("" if c.sort is not None else "t ") + c.cls
            attr = f" class='{classes.strip()}'" if classes.strip() else ""
            if c.sort is not None:
                attr += f" data-v='{c.sort if math.isfinite(c.sort) else 'NaN'}'"
            body = f"<a href='{e(c.href)}'>{e(c.text)}</a>" if c.href else e(c.text)
            tds.append(f"<td{attr}>{body}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    return "\n".join(out + ["</tbody></table>"])
