"""A small document model rendered both as Markdown (the files users read and diff) and as
HTML (what `snakemake --report` shows inline; it offers other files only as downloads).

Blocks are headings, paragraphs, bullet lists and tables of plain text; `**bold**` inside text
is the only markup, so both renderings say exactly the same.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Sequence, Union


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str = ""  # one of l / r per column; default: first three left, the rest right


Block = Union[Heading, Para, Bullets, Table]


@dataclass
class Document:
    blocks: list[Block] = field(default_factory=list)

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(Heading(level, text))

    def para(self, text: str) -> None:
        self.blocks.append(Para(text))

    def bullets(self, items: Sequence[str]) -> None:
        if items:
            self.blocks.append(Bullets(tuple(items)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> None:
        self.blocks.append(Table(tuple(header), tuple(tuple(r) for r in rows), align))

    def markdown(self) -> str:
        out: list[str] = []
        for block in self.blocks:
            if isinstance(block, Heading):
                out += ["#" * block.level + " " + block.text, ""]
            elif isinstance(block, Para):
                out += [block.text, ""]
            elif isinstance(block, Bullets):
                out += [f"- {item}" for item in block.items] + [""]
            else:
                align = _align(block)
                out.append("| " + " | ".join(_md_cell(c) for c in block.header) + " |")
                out.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
                out.append("")
        return "\n".join(out).rstrip() + "\n"

    def html(self, title: str) -> str:
        body: list[str] = []
        for block in self.blocks:
            if isinstance(block, Heading):
                body.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
            elif isinstance(block, Para):
                body.append(f"<p>{_inline(block.text)}</p>")
            elif isinstance(block, Bullets):
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>")
            else:
                align = _align(block)
                head = "".join(f"<th>{_inline(c)}</th>" for c in block.header)
                rows = "".join(
                    "<tr>" + "".join(
                        f'<td class="{"num" if a == "r" else ""}">{_inline(c)}</td>'
                        for c, a in zip(row, align)) + "</tr>"
                    for row in block.rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        return (
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n"
        )


_CSS = ("body{font-family:sans-serif;max-width:72em;margin:1em auto;line-height:1.4}"
        "table{border-collapse:collapse;margin:.5em 0;font-size:90%}"
        "th,td{border:1px solid #ccc;padding:.2em .5em;vertical-align:top}"
        "td.num{text-align:right;white-space:nowrap}th{background:#f3f3f3}")


def _align(table: Table) -> str:
    n = len(table.header)
    return table.align or ("lll" + "r" * n)[:n]


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _inline(text: str) -> str:
    escaped = html.escape(str(text))
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
