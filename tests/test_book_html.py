"""What a reader sees, checked on the built book (issue 14).

`tests/test_book_surface.py` checks the sources; this file checks the HTML that
`jupyter-book build .` writes to `_build/html` (or to the folder named by the
environment variable NNBOOK_HTML), page by page, so that a rendering regression fails a
test rather than a reader's eye:

* no TeX in the browser-tab `<title>` or in the previous/next link titles;
* no "((6.1))": an opening bracket right before an equation-number link;
* no literal `$` / `$$` or leaked equation label `(eq-...)` in text outside MathJax;
* no raw TeX (`\\sum`, `_{`) in link texts outside MathJax;
* no `$` in bibliography entries;
* no Markdown table printed as text by a cell (its `|---|` rule showing);
* every table sits in the theme's horizontally scrolling container;
* every page links the book's stylesheet `_static/nnbook.css`.

A page whose source (or `references.bib`) is newer than the built page is skipped as
stale, so an old `_build/html` never passes or fails for the current sources.

Without a build the tests are skipped, saying so. `make test` builds the book first
(see the Makefile) so CI runs them; locally:

    .venv/bin/jupyter-book build . -W -n && .venv/bin/pytest tests/test_book_html.py -q
"""
import html.parser
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
HTML = pathlib.Path(os.environ.get("NNBOOK_HTML", ROOT / "_build" / "html"))

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "param", "source", "track", "wbr"}
CODE = {"pre", "code", "script", "style", "textarea", "svg", "math"}
TEX_RE = re.compile(r"\\[A-Za-z]+|[_^]\{|\\\(|\\\[")


class Page(html.parser.HTMLParser):
    """Text nodes of a page with their context: inside math, code, a link, a table..."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.stack = []         # (tag, classes, attrs)
        self.texts = []         # (line, text, context dict)
        self.tables = []        # (line, inside a scrolling container?)
        self.links = []         # (line, rel, title) of <link rel=prev/next>
        self.title = ""
        self.feed(text)
        self.close()

    def _context(self):
        ctx = {"math": False, "code": False, "link": False, "title": False,
               "citation": False, "scroll": False, "output": False}
        for tag, classes, attrs in self.stack:
            if tag.startswith("mjx-") or "math" in classes or "MathJax" in classes:
                ctx["math"] = True
            if tag in CODE or "highlight" in classes:
                ctx["code"] = True
            if tag == "a":
                ctx["link"] = True
            if "cell_output" in classes:
                ctx["output"] = True
            if tag == "title":
                ctx["title"] = True
            if "citation" in classes or attrs.get("role") == "doc-biblioentry" or \
                    "bibtex" in " ".join(classes):
                ctx["citation"] = True
            if "pst-scrollable-table-container" in classes or "table-wrapper" in classes \
                    or ("output" in classes and "text_html" in classes):   # nnbook.css
                ctx["scroll"] = True
        return ctx

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and a.get("rel") in ("prev", "next"):
            self.links.append((self.getpos()[0], a.get("rel"), a.get("title") or ""))
        if tag in VOID:
            return
        if tag == "table":
            self.tables.append((self.getpos()[0], self._context()["scroll"]))
        self.stack.append((tag, (a.get("class") or "").split(), a))

    def handle_startendtag(self, tag, attrs):
        if tag not in VOID:
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)
        else:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        if not data.strip():
            return
        ctx = self._context()
        if ctx["title"]:
            self.title += data
        self.texts.append((self.getpos()[0], data, ctx))


def _stale(page):
    """A source of a built page that is newer than the page (the build is stale)."""
    rel = page.relative_to(HTML).with_suffix("")
    sources = [ROOT / rel.with_suffix(ext) for ext in (".ipynb", ".md")]
    if rel.as_posix() == "book/appendix/bibliography":
        sources.append(ROOT / "book" / "references.bib")
    # what every page is built from: the configuration, the stylesheet, the extension
    sources += [ROOT / "_config.yml", ROOT / "_toc.yml", *sorted((ROOT / "_static").glob("*")),
                *sorted((ROOT / "book" / "_ext").glob("*.py"))]
    built = page.stat().st_mtime
    return next((src for src in sources if src.exists() and src.stat().st_mtime > built),
                None)


def _pages():
    if not (HTML / "book").is_dir():
        return [pytest.param(None, id="no-build", marks=pytest.mark.skip(
            reason=f"no built book at {HTML}: run `jupyter-book build .` first "
                   f"(or set NNBOOK_HTML to a build's html folder)"))]
    out = []
    for p in sorted((HTML / "book").rglob("*.html")):
        src = _stale(p)
        marks = [pytest.mark.skip(reason=f"stale build: {src.relative_to(ROOT)} is newer "
                                         f"than {p.relative_to(HTML)}; rebuild the book")] \
            if src else []
        out.append(pytest.param(p, id=p.relative_to(HTML).as_posix(), marks=marks))
    return out


PAGES = _pages()
_PARSED = {}


def parse(path):
    if path not in _PARSED:
        text = path.read_text(encoding="utf-8")
        _PARSED[path] = (text, Page(text))
    return _PARSED[path]


def _short(s, n=100):
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n - 1] + "…"


def check_titles(path):
    _, page = parse(path)
    msgs = []
    if TEX_RE.search(page.title) or "$" in page.title:
        msgs.append(f"<title> has raw TeX: {_short(page.title)!r}")
    for line, rel, title in page.links:
        if TEX_RE.search(title) or "$" in title:
            msgs.append(f"line {line}: <link rel={rel}> title has raw TeX: {_short(title)!r}")
    return msgs


DOUBLED_EQ_RE = re.compile(
    r"\(\s*<a\b[^>]*href=\"[^\"]*#equation-[^\"]*\"[^>]*>\s*(?:<[^>]+>\s*)*\(")


def check_equation_brackets(path):
    text, _ = parse(path)
    msgs = []
    for m in DOUBLED_EQ_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        shown = re.sub(r"<[^>]+>", "", text[m.start():m.start() + 400])[:20]
        msgs.append(f"line {line}: doubled brackets before an equation number: {shown!r}")
    return msgs


def check_dollars(path):
    _, page = parse(path)
    msgs = []
    for line, data, ctx in page.texts:
        if ctx["math"] or ctx["code"] or ctx["title"]:
            continue
        if "$" in data:
            msgs.append(f"line {line}: literal `$` outside math: {_short(data)!r}")
        elif re.search(r"^\s*\(eq-[\w-]+\)", data):
            msgs.append(f"line {line}: equation label printed as text: {_short(data)!r}")
    return msgs


def check_link_texts(path):
    _, page = parse(path)
    msgs = []
    for line, data, ctx in page.texts:
        if ctx["link"] and not (ctx["math"] or ctx["code"]) and TEX_RE.search(data):
            msgs.append(f"line {line}: raw TeX in a link text: {_short(data)!r}")
    return msgs


def check_bibliography(path):
    _, page = parse(path)
    return [f"line {line}: `$` in a bibliography entry: {_short(data)!r}"
            for line, data, ctx in page.texts
            if ctx["citation"] and not ctx["math"] and ("$" in data or TEX_RE.search(data))]


TABLE_RULE_RE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$", re.MULTILINE)


def check_raw_tables(path):
    """A Markdown table printed as text by a cell: its |---| rule shows."""
    _, page = parse(path)
    return [f"line {line}: a Markdown table printed as text: {_short(data, 60)!r}"
            for line, data, ctx in page.texts
            if ctx["output"] and ctx["code"] and TABLE_RULE_RE.search(data)]


def check_tables_scroll(path):
    _, page = parse(path)
    return [f"line {line}: a table outside a horizontally scrolling container"
            for line, scroll in page.tables if not scroll]


def check_css(path):
    """The book's stylesheet (_static/nnbook.css: 88 code columns fit at 1280 px, text
    outputs wrap) is linked from every page."""
    text, _ = parse(path)
    if (ROOT / "_static" / "nnbook.css").exists() and \
            not re.search(r'<link[^>]*href="[^"]*_static/nnbook\.css', text):
        return ["_static/nnbook.css is not linked from the page"]
    return []


def _fail(title, msgs):
    if msgs:
        pytest.fail(f"{title} — {len(msgs)} place(s):\n  " + "\n  ".join(msgs),
                    pytrace=False)


@pytest.mark.parametrize("path", PAGES)
def test_titles_have_no_tex(path):
    _fail("raw TeX in the page title", check_titles(path))


@pytest.mark.parametrize("path", PAGES)
def test_no_doubled_brackets_around_equation_numbers(path):
    _fail("((n.m))", check_equation_brackets(path))


@pytest.mark.parametrize("path", PAGES)
def test_no_dollars_outside_math(path):
    _fail("$ or $$ printed as text", check_dollars(path))


@pytest.mark.parametrize("path", PAGES)
def test_no_raw_tex_in_link_texts(path):
    _fail("raw TeX in link texts", check_link_texts(path))


@pytest.mark.parametrize("path", PAGES)
def test_bibliography_entries_have_no_tex(path):
    _fail("TeX in bibliography entries", check_bibliography(path))


@pytest.mark.parametrize("path", PAGES)
def test_no_markdown_tables_printed_as_text(path):
    _fail("Markdown tables printed as text", check_raw_tables(path))


@pytest.mark.parametrize("path", PAGES)
def test_the_books_stylesheet_is_linked(path):
    _fail("stylesheet", check_css(path))


@pytest.mark.parametrize("path", PAGES)
def test_tables_scroll_in_their_own_box(path):
    _fail("tables that cannot scroll", check_tables_scroll(path))


# --- the rules' own tests (no build needed): the defects as the build printed them ----
BAD_HTML = """<html><head><title>4. The generalized layer-\\(l\\) rule &#8212; nnbook</title>
<link rel="next" title="4. The generalized layer-\\(l\\) rule" href="layer_l_rule.html" />
</head><body><article>
<p>one batched pass
(<a class="reference internal" href="#equation-eq-batched-forward">(14.1)</a>), a conv</p>
<ul><li><p><strong><span class="math notranslate nohighlight">\\(i = k\\)</span></strong>:
$<span class="math notranslate nohighlight">\\( x = 1 \\)</span>$ (eq-bp1-softmax-diag)
</p></li></ul>
<p>See <a class="reference internal" href="errata.html#erratum-paths"><span class="std std-ref">
14. \u201cE_{total} = \\sum_k E_k\u201d: equal sums</span></a>.</p>
<div class="citation" role="doc-biblioentry"><p>Yurii Nesterov. A method with convergence
rate $O(1/k^2)$. 1983.</p></div>
<table class="table"><tr><td>1</td></tr></table>
<div class="cell_output docutils container"><div class="output stream highlight-myst-ansi">
<div class="highlight"><pre><span></span>| a | b |
|---|---|
| 1 | 2 |
</pre></div></div></div>
</article></body></html>"""
GOOD_HTML = """<html><head><title>4. The generalized layer-l rule &#8212; nnbook</title>
<link rel="next" title="5. GPU adaptation" href="gpu.html" /></head><body><article>
<p>one batched pass
<a class="reference internal" href="#equation-eq-batched-forward">(14.1)</a>, a conv</p>
<div class="math notranslate nohighlight">\\[ x = 1 \\]</div>
<p>See <a class="reference internal" href="errata.html#erratum-paths"><span class="std std-ref">
erratum 14</span></a>; <code>price = "$5"</code>.</p>
<div class="citation" role="doc-biblioentry"><p>Yurii Nesterov. A method with convergence
rate O(1/k\u00b2). 1983.</p></div>
<div class="pst-scrollable-table-container"><table class="table"><tr><td>1</td></tr>
</table></div>
<div class="cell_output docutils container"><div class="output text_markdown">
<div class="pst-scrollable-table-container"><table class="table"><tr><td>2</td></tr>
</table></div></div></div></article></body></html>"""
HTML_CASES = {check_titles: 2, check_equation_brackets: 1, check_dollars: 3,
              check_link_texts: 1, check_bibliography: 1, check_tables_scroll: 1,
              check_raw_tables: 1}


@pytest.mark.parametrize("check", list(HTML_CASES), ids=lambda f: f.__name__[6:])
def test_each_html_rule_catches_its_defect_and_passes_the_fix(check, tmp_path):
    bad, good = tmp_path / "bad.html", tmp_path / "good.html"
    bad.write_text(BAD_HTML, encoding="utf-8")
    good.write_text(GOOD_HTML, encoding="utf-8")
    assert len(check(bad)) == HTML_CASES[check], check(bad)
    assert check(good) == []


def report(html=HTML):
    """All violations, page by page (`python tests/test_book_html.py [HTML_DIR]`)."""
    lines, total = [], 0
    for p in sorted((pathlib.Path(html) / "book").rglob("*.html")):
        found = [(c.__name__[6:], m) for c in (check_titles, check_equation_brackets,
                                                 check_dollars, check_link_texts,
                                                 check_bibliography, check_tables_scroll,
                                                 check_css, check_raw_tables)
                 for m in c(p)]
        total += len(found)
        lines.append(f"== {p.relative_to(html)}: {len(found)}")
        lines += [f"  [{n}] {m}" for n, m in found]
    lines.append(f"total: {total}")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    print(report(sys.argv[1] if len(sys.argv) > 1 else HTML))
