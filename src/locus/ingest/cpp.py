"""C++ domain: example programs from the cppreference.com offline HTML book.

Source: Debian package ``cppreference-doc-en-html`` 20170409-2 (an offline snapshot of
cppreference.com, April 2017, so C++17-era). Licence: CC-BY-SA 3.0 / GFDL 1.2 (dual, as stated in
the package's copyright file). The .deb is read in pure Python (ar + tar), nothing is installed.

Mapping: every ``t-example`` block under ``en/cpp/`` whose code defines ``main`` becomes
``"Write a C++ program demonstrating `<page title>`: <first paragraph of the page>"``
(+ the example's own lead-in sentence if it has one) -> fenced C++ code (+ the expected output
the page shows, if any).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from .common import Artefact, deb_data_members, dedup, fetch, make_record, stable_order

ARTEFACT = Artefact(
    kind="deb",
    spec="cppreference-doc-en-html=20170409-2",
    filename="cppreference-doc-en-html_20170409-2_all.deb",
    sha256="603e9b7ef33d08b957e287b2b1f429f2338bccf75144f91b7c9e51d3cb6a14e2",
)
PREFIX = "usr/share/cppreference/doc/html/en/cpp/"
SOURCE = "cppreference-doc-en-html 20170409-2 (Debian)"
LICENCE = "CC-BY-SA-3.0 OR GFDL-1.2"
MAX_DESC = 400

_TAG = re.compile(r"<[^>]+>")
_CODE = re.compile(r'<div class="cpp source-cpp"><pre class="de1">(.*?)</pre>', re.S)
_OUT = re.compile(r'<div class="text source-text"><pre class="de1">(.*?)</pre>', re.S)
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_DIV = re.compile(r"<(/)?div\b[^>]*>")
_MAIN = re.compile(r"\bint\s+main\s*\(|\bmain\s*\(\s*\)")


def html_to_text(fragment: str) -> str:
    """Markup -> plain text: <br> to newline, tags dropped, entities decoded, NBSP -> space."""
    fragment = re.sub(r"<br\s*/?>", "\n", fragment)
    return html.unescape(_TAG.sub("", fragment)).replace("\u00a0", " ")


def one_line(text: str) -> str:
    return " ".join(text.split())


def shorten(text: str, limit: int = MAX_DESC) -> str:
    """Cut at the last sentence end before `limit` chars (or at a word boundary)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind(".\n"))
    return cut[: end + 1] if end > limit // 3 else cut.rsplit(" ", 1)[0] + " ..."


class _LeadParagraph(HTMLParser):
    """First prose <p> of the article body outside any table, before the first heading/example."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.active = self.done = self.in_p = False
        self.table_depth = 0
        self.buf: list[str] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and attrs.get("id") == "mw-content-text":
            self.active = True
        if not self.active or self.done:
            return
        if tag == "table":
            self.table_depth += 1
        elif tag in ("h2", "h3") or (tag == "div" and "t-example" in (attrs.get("class") or "")):
            self.done = True
        elif tag == "p" and self.table_depth == 0:
            self.in_p, self.buf = True, []

    def handle_endtag(self, tag):
        if not self.active or self.done:
            return
        if tag == "table":
            self.table_depth -= 1
        elif tag == "p" and self.in_p:
            self.in_p = False
            text = one_line("".join(self.buf))
            if len(re.findall(r"[A-Za-z]", text)) >= 10:
                self.text, self.done = text, True

    def handle_data(self, data):
        if self.in_p:
            self.buf.append(data)


def _after_div(page: str, open_at: int) -> int:
    """Index just past the </div> closing the <div> that starts at `open_at` (or 0 if none)."""
    if open_at < 0:
        return 0
    depth = 0
    for m in _DIV.finditer(page, open_at):
        depth += 1 if m.group(1) is None else -1
        if depth == 0:
            return m.end()
    return 0


def parse_page(page: str) -> list[dict]:
    """All runnable examples of one HTML page: dicts with title, desc, lead, code, out, label."""
    m = _TITLE.search(page)
    if not m or "t-example" not in page:
        return []
    title = one_line(html.unescape(m.group(1)).replace(" - cppreference.com", ""))
    lead = _LeadParagraph()
    start = page.rfind("<div", 0, max(0, page.find('id="mw-content-text"')))
    body = _after_div(page, page.find('<div class="t-navbar"', start))  # skip the huge nav menu
    stop = min((i for i in (page.find("<h2", body), page.find("<h3", body)) if i > 0), default=len(page))
    lead.feed('<div id="mw-content-text">' + page[body:stop])
    found = []
    for block in page.split('<div class="t-example">')[1:]:
        block = re.split(r"<h[23]", block)[0]
        cm = _CODE.search(block)
        if not cm:
            continue
        code = html_to_text(cm.group(1))
        if not _MAIN.search(code):
            continue
        intro = one_line(html_to_text(block[: cm.start()]).replace("Run this code", ""))
        rest = block[cm.end() :]
        om = _OUT.search(rest)
        label = one_line(html_to_text(rest[: om.start()])) if om else ""
        found.append(
            {
                "title": title,
                "desc": lead.text,
                "intro": intro,
                "code": code,
                "out": html_to_text(om.group(1)) if om else "",
                "label": label if label.endswith("output:") else "Output:",
            }
        )
    return found


def to_record(ex: dict, k: int | None) -> dict | None:
    desc = shorten(ex["desc"]) if ex["desc"] else ""
    instr = f"Write a C++ program demonstrating `{ex['title']}`" + (f": {desc}" if desc else ".")
    if ex["intro"]:
        instr += f"\n\n{shorten(ex['intro'])}"
    if k is not None:
        instr += f" (example {k})"
    resp = f"```cpp\n{ex['code'].strip(chr(10))}\n```"
    if ex["out"].strip():
        resp += f"\n\n{ex['label']}\n```\n{ex['out'].strip(chr(10))}\n```"
    return make_record(instr, resp, SOURCE, LICENCE)


def build(seed: int = 0, n: int | None = None) -> list[dict]:
    """All cppreference examples (sorted by page path), cleaned and de-duplicated.

    ``n`` keeps a seeded subset (output stays in page order); None keeps everything.
    """
    deb = fetch(ARTEFACT)
    pages = sorted((p, b) for p, b in deb_data_members(deb) if p.startswith(PREFIX) and p.endswith(".html"))
    records = []
    for _path, raw in pages:
        examples = parse_page(raw.decode("utf-8"))
        for i, ex in enumerate(examples, 1):
            rec = to_record(ex, i if len(examples) > 1 and not ex["intro"] else None)
            if rec is not None:
                records.append(rec)
    records = dedup(records, near=0.9)
    if n is not None and n < len(records):
        keep = {id(r) for r in stable_order(records, lambda r: r["instruction"], seed)[:n]}
        records = [r for r in records if id(r) in keep]
    return records
