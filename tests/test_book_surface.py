"""What a reader sees: static checks over the book's sources (issue 14).

Each defect class below was seen in the built HTML; each test reads the notebooks
(`book/**/*.ipynb`, with their stored outputs), the Markdown pages (`book/**/*.md`) and
`book/references.bib`, without building or executing anything. Tests are parametrised
per page with the page's path as id, so one page is checked with

    .venv/bin/pytest tests/test_book_surface.py -q -k gradient_descent

and a failure lists every offending cell (index as in `nb.cells[i]`) and line (1-based,
inside the cell's source or output), so a page can be fixed in one pass.
`python tests/test_book_surface.py [PAGE ...]` prints the same list for every page.

Visibility, as myst-nb renders it (the book never executes at build time):
* a code cell's input is *shown* unless tagged `remove-input`, `remove-cell`,
  `hide-input` or `hide-cell` (the two `hide-` tags fold it behind a toggle);
* an output is *rendered* unless the cell is tagged `remove-output` or `remove-cell`,
  and *shown* (unfolded) unless also tagged `hide-output` or `hide-cell`.
Content defects (raw tables, "3 to 3", project language) are checked in every rendered
output; layout defects (length, width) only in shown ones.

Opt-outs, each a cell tag an author sets on purpose:
* `show-assert`: a visible `assert` that teaches something (the default is that cells
  which only check are tagged `remove-input`, with a visible sentence saying what they
  checked);
* `scroll-output` / `output_scroll`: a long output that myst-nb puts in its own
  scrolling box (24em high) is not counted as long.
"""
import ast
import json
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

# --- thresholds -------------------------------------------------------------------------
# Measured in Chromium at a 1280 px window (issue 14). With _static/nnbook.css the
# article column is 724 px and a code box holds exactly 88 characters (13 px monospace);
# text outputs wrap there instead of being cut. Without it: 676 px and 76 characters.
MAX_CODE_LINE = 88           # visible code line, characters (the GUIDE's limit)
MAX_OUTPUT_LINE = 110        # shown stream / text line, characters
MAX_OUTPUT_LINES = 40        # shown output, lines
MAX_EQUATION_PX = 724        # display equation row: the article column
MAX_EQUATION_PX_NUMBERED = 650   # ... beside an equation number

HIDDEN_INPUT = {"remove-input", "remove-cell", "hide-input", "hide-cell"}
REMOVED_OUTPUT = {"remove-output", "remove-cell"}
HIDDEN_OUTPUT = REMOVED_OUTPUT | {"hide-output", "hide-cell"}
SCROLLED_OUTPUT = {"scroll-output", "output_scroll"}

# Words about how the book was made, not about neural networks (the book's voice
# speaks to readers). Case-insensitive, matched in prose and rendered outputs.
PROJECT_LANGUAGE = [
    r"\bproject brief\b",
    r"\bthe brief\b",
    r"\bthe project'?s\b",
    r"\bthe project\b",
    r"\btarget from\b",
    r"\bmood\b",
    r"\bnotes of 20\d\d-",
    r"\btarget check\b",
    r"\bthe chapter'?s targets?\b",
    r"\bfrom its target\b",
    r"\bthe goal is (at most|at least|under|below|above|[<>≤≥])",
    r"\b(speed|performance) (goal|target)s?\b",
]
PROJECT_LANGUAGE_RE = re.compile("|".join(PROJECT_LANGUAGE), re.IGNORECASE)
EQUAL_RANGE_RE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?) to \1(?![\d.]*\d)")
TABLE_RULE_RE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$")
LIST_ITEM_RE = re.compile(r"^(\s*)([*+-]|\d{1,9}[.)])(\s+|$)")
FENCE_RE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*(.*)$")
LABEL_RE = re.compile(r"^\(([^()\s]+)\)=\s*$")
HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
ROLE_RE = re.compile(r"\{(ref|doc|numref)\}`([^`]*)`")
MATH_INLINE_RE = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)(?<![\\\s])\$(?!\$)")
TEX_IN_TEXT_RE = re.compile(r"[\\_^{}]")   # what shows as raw TeX once `$` is stripped


# ---------------------------------------------------------------------------------------
# Reading pages
# ---------------------------------------------------------------------------------------
def _pages():
    out = []
    for p in sorted(BOOK.rglob("*")):
        rel = p.relative_to(BOOK)
        if p.suffix not in (".ipynb", ".md") or any(
                part.startswith(("_", ".")) for part in rel.parts[:-1]):
            continue
        if ".ipynb_checkpoints" in p.parts:
            continue
        out.append(p)
    return out


class Cell:
    def __init__(self, index, cell_type, source, tags=(), outputs=()):
        self.index, self.cell_type, self.source = index, cell_type, source
        self.tags, self.outputs = set(tags), list(outputs)

    @property
    def input_shown(self):
        return self.cell_type == "code" and not (self.tags & HIDDEN_INPUT)

    @property
    def outputs_rendered(self):
        return not (self.tags & REMOVED_OUTPUT)

    @property
    def outputs_shown(self):
        return not (self.tags & HIDDEN_OUTPUT)


def _src(x):
    return "".join(x) if isinstance(x, list) else (x or "")


_CACHE = {}


def read_page(path):
    """The page's cells: a notebook's cells, or one Markdown cell for a `.md` page."""
    path = pathlib.Path(path)
    if path in _CACHE:
        return _CACHE[path]
    if path.suffix == ".md":
        cells = [Cell(0, "markdown", path.read_text(encoding="utf-8"))]
    else:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [Cell(i, c["cell_type"], _src(c.get("source")),
                      c.get("metadata", {}).get("tags", []), c.get("outputs", []))
                 for i, c in enumerate(nb["cells"])]
    _CACHE[path] = cells
    return cells


def where(path, cell, line):
    if pathlib.Path(path).suffix == ".md":
        return f"line {line}"
    return f"cell {cell.index} ({cell.cell_type}) line {line}"


def _short(s, n=100):
    s = s.strip()
    return s if len(s) <= n else s[:n - 1] + "…"


# --- Markdown: split a cell into prose lines, fenced code, display math ------------------
class Markdown:
    """One pass over a Markdown source.

    prose: [(lineno, text)] with code spans/blocks removed (roles kept, math kept);
    code: [(lineno, text, lang)] lines of fenced code blocks;
    math: [(lineno, tex, numbered)] display equations ($$ blocks, {math} directives, amsmath);
    dollar_opens: [(lineno, line, indent, list_indent_or_None, blank_before)].
    """

    def __init__(self, source):
        self.prose, self.code, self.math, self.dollar_opens = [], [], [], []
        self.headings = []        # (lineno, level, text, label_or_None)
        lines = source.split("\n")
        fence = None              # (char, length, kind) kind: code | math | md
        math_open = None          # (lineno, [lines]) inside $$ ... $$
        amsmath_open = None
        label = None
        list_indent = None        # content indent of the list item we are in
        prev_blank = True
        indented_code = False
        for n, line in enumerate(lines, 1):
            stripped = line.strip()
            if fence is not None:
                m = FENCE_RE.match(line)
                if m and m.group(2)[0] == fence[0] and len(m.group(2)) >= fence[1] \
                        and not m.group(3).strip():
                    if fence[2] == "math":
                        self.math.append((fence[3], "\n".join(fence[4]), fence[5]))
                    fence = None
                    continue
                if fence[2] == "code":
                    self.code.append((n, line, fence[3]))
                    continue
                if fence[2] == "math":
                    if stripped.startswith(":label:"):
                        fence = fence[:5] + (True,)
                    elif not stripped.startswith(":"):
                        fence[4].append(line)
                    continue
                # directive with Markdown content: fall through
            if math_open is not None:
                if "$$" in line:
                    body, after = line[:line.index("$$")], line[line.index("$$") + 2:]
                    math_open[1].append(body)
                    self.math.append((math_open[0], "\n".join(math_open[1]),
                                      bool(re.match(r"\s*\(\S+\)", after))))
                    math_open = None
                else:
                    math_open[1].append(line)
                prev_blank = False
                continue
            if amsmath_open is not None:
                amsmath_open[1].append(line)
                if re.search(r"\\end\{" + re.escape(amsmath_open[2]) + r"\}", line):
                    self.math.append((amsmath_open[0], "\n".join(amsmath_open[1]),
                                      not amsmath_open[2].endswith("*")))
                    amsmath_open = None
                continue
            m = FENCE_RE.match(line)
            if m:
                info = m.group(3).strip()
                char, length = m.group(2)[0], len(m.group(2))
                if info.startswith("{math}"):
                    fence = (char, length, "math", n, [], False)
                elif info.startswith("{") and not info.startswith(
                        ("{code", "{literalinclude", "{raw")):
                    fence = (char, length, "md", None)
                else:
                    lang = info.split()[0].strip("{}") if info else ""
                    fence = (char, length, "code", lang)
                prev_blank = False
                continue
            if re.match(r"^\s*:{3,}", line):       # colon fence: Markdown content
                prev_blank = False
                continue
            # lists: remember the content indent of the current item
            if not stripped:
                prev_blank = True
                self.prose.append((n, line))
                continue                  # (an indented code block may go on after it)
            indent = len(line) - len(line.lstrip())
            # an indented code block: 4 spaces beyond the list item's text (or the margin),
            # opened after a blank line, continued by lines as indented
            code_indent = (list_indent or 0) + 4
            if indent >= code_indent and (prev_blank or indented_code):
                self.code.append((n, line[code_indent:], ""))
                indented_code, prev_blank = True, False
                continue
            indented_code = False
            mi = LIST_ITEM_RE.match(line)
            if mi:
                list_indent = len(mi.group(1)) + len(mi.group(2)) + max(1, len(mi.group(3)))
            elif list_indent is not None and prev_blank and indent < list_indent:
                list_indent = None       # a paragraph after a blank line ends the list
            if stripped.startswith("$$"):
                self.dollar_opens.append((n, line, indent, list_indent, prev_blank))
                rest = stripped[2:]
                if "$$" in rest:                        # $$ ... $$ on one line
                    after = rest[rest.index("$$") + 2:]
                    self.math.append((n, rest[:rest.index("$$")],
                                      bool(re.match(r"\s*\(\S+\)", after))))
                else:
                    math_open = (n, [rest])
                prev_blank = False
                continue
            ma = re.match(r"^\s*\\begin\{(equation|align|gather|multline|eqnarray|flalign)"
                          r"(\*?)\}", line)
            if ma:
                env = ma.group(1) + ma.group(2)
                if re.search(r"\\end\{" + re.escape(env) + r"\}", line):
                    self.math.append((n, line, not env.endswith("*")))
                else:
                    amsmath_open = (n, [line], env)
                prev_blank = False
                continue
            ml = LABEL_RE.match(stripped)
            if ml:
                label = ml.group(1)
                prev_blank = False
                continue
            mh = HEADING_RE.match(line)
            if mh:
                self.headings.append((n, len(mh.group(1)), mh.group(2), label))
                list_indent = None
            label = None
            self.prose.append((n, _strip_code_spans(line)))
            prev_blank = False
        if math_open is not None:
            self.math.append((math_open[0], "\n".join(math_open[1]), False))


def _strip_code_spans(line):
    """Replace `code` spans by spaces, keeping role targets ({eq}`x`) intact."""
    out, i = [], 0
    for m in re.finditer(r"(\{[\w:-]+\})?(`+)(.+?)\2", line):
        out.append(line[i:m.start()])
        out.append(m.group(0) if m.group(1) else " " * (m.end() - m.start()))
        i = m.end()
    out.append(line[i:])
    return "".join(out)


def _mask_math_and_roles(text):
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", text)
    return MATH_INLINE_RE.sub(" ", text)


def markdown_of(path):
    key = ("md", pathlib.Path(path))
    if key not in _CACHE:
        _CACHE[key] = [(c, Markdown(c.source)) for c in read_page(path)
                       if c.cell_type == "markdown"]
    return _CACHE[key]


# --- outputs ------------------------------------------------------------------------------
TEXT_PRIORITY = ["application/vnd.jupyter.widget-view+json", "application/javascript",
                 "text/html", "image/svg+xml", "image/png", "image/jpeg", "text/markdown",
                 "text/latex", "text/plain"]


def rendered_text(output):
    """(kind, text) of what myst-nb shows for an output, None for images and widgets."""
    t = output.get("output_type")
    if t == "stream":
        return output.get("name", "stream"), _src(output.get("text"))
    if t == "error":
        return "error", "\n".join(output.get("traceback", []))
    data = output.get("data", {})
    for mime in TEXT_PRIORITY:
        if mime in data:
            if mime in ("text/plain", "text/markdown", "text/latex", "text/html"):
                return mime, _src(data[mime])
            return None
    return None


# ---------------------------------------------------------------------------------------
# The checks: each returns a list of messages for one page
# ---------------------------------------------------------------------------------------
def _titles_and_labels():
    """Page titles {doc-path-without-suffix: title} and {label: heading} over the book."""
    key = "titles"
    if key not in _CACHE:
        titles, labels = {}, {}
        for p in _pages():
            rel = p.relative_to(ROOT).with_suffix("").as_posix()
            for _, md in markdown_of(p):
                for _, level, text, label in md.headings:
                    if rel not in titles and level == 1:
                        titles[rel] = text
                    if label:
                        labels[label] = text
        _CACHE[key] = (titles, labels)
    return _CACHE[key]


def _tex_shows(title):
    """True when a title's math shows as raw TeX in a link text ($ stripped, TeX kept)."""
    return any(TEX_IN_TEXT_RE.search(m.group(1)) for m in MATH_INLINE_RE.finditer(title))


def check_raw_tex(path):
    """1. Raw TeX outside math: link texts of {ref}/{doc} without explicit text whose
    target heading has math, explicit link texts with `$`, and a page title with math
    (the browser tab and the prev/next links show `\\(l\\)`)."""
    titles, labels = _titles_and_labels()
    mds = markdown_of(path)
    labels = dict(labels, **{label: text for _, md in mds
                             for _, _, text, label in md.headings if label})
    here = _rel(path).parent
    msgs = []
    first = next(((c, n, text) for c, md in mds for n, level, text, _ in md.headings
                  if level == 1), None)
    if first and MATH_INLINE_RE.search(first[2]):
        c, n, text = first
        msgs.append(f"{where(path, c, n)}: the page title has math, which the browser tab "
                    f"and the previous/next links print as raw TeX: {_short(text)!r}")
    for c, md in mds:
        for n, line in md.prose:
            for m in ROLE_RE.finditer(line):
                role, body = m.groups()
                mt = re.match(r"^(.*?)\s*<([^<>]+)>$", body, re.DOTALL)
                if mt:
                    if "$" in mt.group(1) or "\\(" in mt.group(1):
                        msgs.append(f"{where(path, c, n)}: {{{role}}} link text with math "
                                    f"prints raw TeX: {m.group(0)!r}")
                    continue
                if role == "doc":
                    target = (here / body).as_posix() if not body.startswith("/") \
                        else body.lstrip("/")
                    target = pathlib.PurePosixPath(
                        *_normpath(pathlib.PurePosixPath(target).parts)).as_posix()
                    title = titles.get(target)
                else:
                    title = labels.get(body)
                if title and _tex_shows(title):
                    msgs.append(f"{where(path, c, n)}: {m.group(0)} takes its text from "
                                f"the heading {_short(title, 70)!r}, whose math prints "
                                f"as raw TeX; give the link its own text")
            for m in re.finditer(r"\[\]\(#?([^)\s]+)\)", line):
                title = labels.get(m.group(1))
                if title and _tex_shows(title):
                    msgs.append(f"{where(path, c, n)}: {m.group(0)} takes its text from "
                                f"{_short(title, 70)!r}, whose math prints as raw TeX")
    return msgs


def _rel(path):
    path = pathlib.Path(path).resolve()
    try:
        return path.relative_to(ROOT)
    except ValueError:            # a page outside the repository (the rules' own tests)
        return pathlib.Path("book") / path.name


def _normpath(parts):
    out = []
    for p in parts:
        if p == "..":
            if out:
                out.pop()
        elif p not in (".", ""):
            out.append(p)
    return out


def check_equation_brackets(path):
    """2. `({eq}`label`)`: {eq} already prints "(6.1)", so the text reads "((6.1))"."""
    msgs = []
    for c, md in markdown_of(path):
        for n, line in md.prose:
            for m in re.finditer(r"\(\s*\{eq\}`[^`]*`", line):
                msgs.append(f"{where(path, c, n)}: a bracket before {{eq}} prints doubled "
                            f"brackets ((n.m)); {{eq}} adds its own: {_short(m.group(0))!r}")
    return msgs


def check_display_math_in_lists(path):
    """3. `$$` blocks under a bullet must be indented to the item's text, else they end
    the paragraph badly (a literal `$` and the label are printed)."""
    msgs = []
    for c, md in markdown_of(path):
        for n, line, indent, list_indent, blank_before in md.dollar_opens:
            if list_indent is not None and indent < list_indent and not blank_before:
                msgs.append(f"{where(path, c, n)}: `$$` inside a list item must be indented "
                            f"by {list_indent} spaces (the item's text), has {indent}")
    return msgs


def check_tables_printed_as_text(path):
    """4. A Markdown table printed as text (stream or text/plain) shows raw pipes: display
    it with IPython.display.Markdown instead."""
    msgs = []
    for c in read_page(path):
        if not c.outputs_rendered:
            continue
        for k, o in enumerate(c.outputs):
            r = rendered_text(o)
            if not r or r[0] in ("text/markdown", "text/html", "text/latex"):
                continue
            for n, line in enumerate(r[1].split("\n"), 1):
                # a table's rule line, or one inside a string's repr ('| a |\\n|---|')
                if TABLE_RULE_RE.match(line) or re.search(r"\|\s*:?-{3,}:?\s*\|", line):
                    msgs.append(f"{where(path, c, n)} of output {k} ({r[0]}): a Markdown "
                                f"table printed as text; display it as Markdown")
                    break
    return msgs


def check_code_width(path):
    """5a. Visible code lines at most 88 characters (cells and fenced blocks)."""
    msgs = []
    for c in read_page(path):
        if c.input_shown:
            for n, line in enumerate(c.source.split("\n"), 1):
                if len(line) > MAX_CODE_LINE:
                    msgs.append(f"{where(path, c, n)}: code line of {len(line)} > "
                                f"{MAX_CODE_LINE} characters: {_short(line, 60)!r}")
    for c, md in markdown_of(path):
        for n, line, lang in md.code:
            if len(line) > MAX_CODE_LINE:
                msgs.append(f"{where(path, c, n)}: code block line of {len(line)} > "
                            f"{MAX_CODE_LINE} characters: {_short(line, 60)!r}")
    return msgs


# --- display equations: a rough rendered width ------------------------------------------
# width_em() adds TeX's widths in em (letters 0.55, relations 1.33 with their spaces,
# \\frac its wider part, scripts at 70 %, big operators with their limits under them,
# \\quad 1, \\qquad 2, \\text 0.5 a character). Calibrated against MathJax 3 in Chromium
# at a 1280 px window on the book's 101 display equations: 20.35 px per em, median error
# 4 %, 90th percentile 11 %. In the stock column (676 px, about 600 px beside an
# equation number) it flagged 13 of the 18 equations that overflowed and 1 of the 83
# that fitted (563 px, estimated 610); 3 of the 5 misses were rows the measurement cut
# short, 2 were within 11 % of the edge. The limits are the column of _static/nnbook.css.
PX_PER_EM = 20.35
_TOK = re.compile(r"\\[A-Za-z]+\*?|\\.|[{}]|[_^]|&|\s+|.", re.DOTALL)
SPACE = {r"\quad": 1.0, r"\qquad": 2.0, r"\,": 0.167, r"\;": 0.278, r"\:": 0.222,
         r"\!": -0.167, r"\ ": 0.25, r"\>": 0.222, "~": 0.25, r"\enspace": 0.5,
         r"\hspace": 0.0}
BIG = {r"\sum", r"\prod", r"\int", r"\oint", r"\bigcup", r"\bigcap", r"\coprod"}
REL = set("=<>") | {r"\le", r"\leq", r"\ge", r"\geq", r"\ne", r"\neq", r"\approx", r"\equiv",
                     r"\sim", r"\to", r"\leftarrow", r"\rightarrow", r"\Rightarrow",
                     r"\Leftrightarrow", r"\Longleftrightarrow", r"\iff", r"\in", r"\subset",
                     r"\mapsto", r"\propto", r"\coloneqq", r"\gets", r"\ll", r"\gg", r"\notin"}
BIN = set("+-*") | {r"\cdot", r"\times", r"\pm", r"\mp", r"\circ", r"\odot", r"\otimes",
                    r"\cup", r"\cap", r"\setminus", r"\oplus", r"\ast"}
ZERO = {r"\left", r"\right", r"\displaystyle", r"\textstyle", r"\limits", r"\nolimits",
        r"\nonumber", r"\notag", r"\big", r"\Big", r"\bigg", r"\Bigg", r"\bigl", r"\bigr",
        r"\Bigl", r"\Bigr", r"\biggl", r"\biggr", r"\middle", r"\begin", r"\end"}
FONT = {r"\mathrm", r"\mathbf", r"\mathcal", r"\mathbb", r"\mathit", r"\mathsf", r"\bm",
        r"\boldsymbol", r"\mathtt", r"\mathfrak", r"\operatorname", r"\hat", r"\tilde",
        r"\bar", r"\vec", r"\overline", r"\underline", r"\widehat", r"\widetilde", r"\dot",
        r"\ddot", r"\underbrace", r"\overbrace", r"\sqrt", r"\color"}
TEXT = {r"\text", r"\textrm", r"\mbox", r"\textbf", r"\textit", r"\mathrm"}
FUNC = {r"\log", r"\ln", r"\exp", r"\sin", r"\cos", r"\tan", r"\max", r"\min", r"\lim",
        r"\det", r"\arg", r"\sup", r"\inf", r"\tanh", r"\sigmoid", r"\argmin", r"\argmax"}


def _group(toks, i):
    """Tokens of the argument starting at toks[i] and the index after it."""
    while i < len(toks) and toks[i].isspace():
        i += 1
    if i >= len(toks):
        return [], i
    if toks[i] != "{":
        return [toks[i]], i + 1
    depth, j = 0, i
    while j < len(toks):
        depth += toks[j] == "{"
        depth -= toks[j] == "}"
        if depth == 0:
            return toks[i + 1:j], j + 1
        j += 1
    return toks[i + 1:], len(toks)


def width_em(tex, scale=1.0):
    """Rough width of a row of display TeX, in em (see above)."""
    return _w(_TOK.findall(tex), scale)


def _w(toks, s):
    w, i = 0.0, 0
    while i < len(toks):
        t = toks[i]
        i += 1
        if t.isspace() or t in ("&", "}"):
            continue
        if t == "{":
            g, i = _group(toks, i - 1)
            w += _w(g, s)
        elif t in "_^":
            g, i = _group(toks, i)
            sw = _w(g, s * 0.7)
            j = i
            while j < len(toks) and toks[j].isspace():
                j += 1
            if j < len(toks) and toks[j] in "_^" and toks[j] != t:   # stacked: x_i^2
                g, i = _group(toks, j + 1)
                sw = max(sw, _w(g, s * 0.7))
            w += sw + 0.05 * s
        elif t in SPACE:
            w += SPACE[t] * s
        elif t in (r"\frac", r"\dfrac", r"\tfrac", r"\binom"):
            a, i = _group(toks, i)
            b, i = _group(toks, i)
            k = s * (0.7 if t == r"\tfrac" else 1.0)
            w += max(_w(a, k), _w(b, k)) + 0.24 * s
        elif t in TEXT:
            g, i = _group(toks, i)
            txt = "".join(x if not x.startswith("\\") else "x" for x in g if x not in "{}")
            w += 0.5 * len(txt) * s
        elif t in (r"\begin", r"\end"):
            _, i = _group(toks, i)
        elif t in ZERO:
            continue
        elif t in FONT:
            g, i = _group(toks, i)
            w += _w(g, s) + (0.3 * s if t == r"\sqrt" else 0)
        elif t in BIG:
            lim = []
            while s == 1.0:            # display style: limits go under and over
                j = i
                while j < len(toks) and toks[j].isspace():
                    j += 1
                if j < len(toks) and toks[j] in ("_", "^", r"\limits"):
                    if toks[j] == r"\limits":
                        i = j + 1
                        continue
                    g, i = _group(toks, j + 1)
                    lim.append(_w(g, 0.7))
                else:
                    break
            w += max([1.6] + lim) * s
        elif t in FUNC:
            w += (0.5 * (len(t) - 1) + 0.17) * s
        elif t in REL:
            w += 1.33 * s
        elif t in BIN:
            w += 1.22 * s
        elif t in (",", ";"):
            w += 0.45 * s
        elif t in "()[]|.:/'!":
            w += 0.39 * s
        elif t.startswith("\\"):
            w += (0.2 if len(t) == 2 and not t[1].isalpha() else 0.65) * s
        else:
            w += 0.55 * s
    return w


def equation_width_px(tex):
    """Estimated rendered width of the widest row (rows split at \\\\)."""
    return max(width_em(row) for row in re.split(r"\\\\", tex)) * PX_PER_EM


def check_equation_width(path):
    """5b. A display equation wider than the column scrolls sideways: break it with
    `aligned` / `split` and `\\\\` (the width is estimated, see width_em)."""
    msgs = []
    for c, md in markdown_of(path):
        for n, tex, numbered in md.math:
            w = equation_width_px(tex)
            limit = MAX_EQUATION_PX_NUMBERED if numbered else MAX_EQUATION_PX
            if w > limit:
                rows = re.split(r"\\\\", tex)
                widest = max(rows, key=width_em)
                msgs.append(f"{where(path, c, n)}: display equation about {w:.0f} px wide "
                            f"(> {limit} px{' beside its number' if numbered else ''}); "
                            f"break it with aligned/split: "
                            f"{_short(' '.join(widest.split()), 70)!r}")
    return msgs


def check_output_width(path):
    """5c. Shown text output lines at most ~110 characters (longer ones are cut at the
    right edge of the page)."""
    msgs = []
    for c in read_page(path):
        if not (c.outputs_rendered and c.outputs_shown):
            continue
        for k, o in enumerate(c.outputs):
            r = rendered_text(o)
            if not r or r[0] in ("text/markdown", "text/html", "error"):
                continue
            for n, line in enumerate(r[1].split("\n"), 1):
                line = re.sub(r"\x1b\[[0-9;]*m", "", line).split("\r")[-1]
                if len(line) > MAX_OUTPUT_LINE:
                    msgs.append(f"{where(path, c, n)} of output {k} ({r[0]}): output line "
                                f"of {len(line)} > {MAX_OUTPUT_LINE} characters: "
                                f"{_short(line, 60)!r}")
    return msgs


def check_equal_ranges(path):
    """6. Output artefacts such as "3 to 3 s per epoch": a range whose ends print equal
    (round to more digits, or print one number)."""
    msgs = []
    for c in read_page(path):
        texts = []
        if c.cell_type == "markdown":
            texts.append(("text", c.source))
        if c.outputs_rendered:
            for k, o in enumerate(c.outputs):
                r = rendered_text(o)
                if r:
                    texts.append((f"output {k} ({r[0]})", r[1]))
        for what, text in texts:
            for n, line in enumerate(text.split("\n"), 1):
                for m in EQUAL_RANGE_RE.finditer(line):
                    msgs.append(f"{where(path, c, n)} of {what}: a range with equal ends: "
                                f"{_short(line[max(0, m.start() - 30):m.end() + 20])!r}")
    return msgs


def check_project_language(path):
    """7. The book speaks to readers, never about how it was made."""
    msgs = []
    for c, md in markdown_of(path):
        for n, line in md.prose:
            for m in PROJECT_LANGUAGE_RE.finditer(_mask_math_and_roles(line)):
                msgs.append(f"{where(path, c, n)}: project language {m.group(0)!r}: "
                            f"{_short(line)!r}")
    for c in read_page(path):
        if c.input_shown:
            for n, line in enumerate(c.source.split("\n"), 1):
                if "#" in line:
                    comment = line[line.index("#"):]
                    for m in PROJECT_LANGUAGE_RE.finditer(comment):
                        msgs.append(f"{where(path, c, n)}: project language {m.group(0)!r} "
                                    f"in a visible comment: {_short(comment)!r}")
        if not c.outputs_rendered:
            continue
        for k, o in enumerate(c.outputs):
            r = rendered_text(o)
            if not r:
                continue
            for n, line in enumerate(r[1].split("\n"), 1):
                for m in PROJECT_LANGUAGE_RE.finditer(line):
                    msgs.append(f"{where(path, c, n)} of output {k}: project language "
                                f"{m.group(0)!r}: {_short(line)!r}")
    return msgs


def _parse_cell(source):
    """The cell's AST, IPython magics (% and ! lines) blanked to keep line numbers;
    None for a cell magic (%%bash, ...), SyntaxError if it is not Python."""
    if source.lstrip().startswith("%%"):
        return None
    lines = ["" if line.lstrip().startswith(("%", "!")) else line
             for line in source.split("\n")]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:            # `obj?` help lines, then give up
        lines = ["" if line.rstrip().endswith("?") and not line.lstrip().startswith("#")
                 else line for line in lines]
        return ast.parse("\n".join(lines))


def check_visible_asserts(path):
    """8. Cells that only check are tagged `remove-input` (nbval still runs them) with a
    visible sentence saying what was checked; `show-assert` keeps one on purpose."""
    msgs = []
    for c in read_page(path):
        if not c.input_shown or "show-assert" in c.tags:
            continue
        try:
            tree = _parse_cell(c.source)
        except SyntaxError as e:
            msgs.append(f"{where(path, c, e.lineno or 1)}: the cell is not Python "
                        f"({e.msg}), so its asserts cannot be checked")
            continue
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                kind = "assert"
            elif isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if not name.startswith("assert_"):
                    continue
                kind = name
            else:
                continue
            line = c.source.split("\n")[node.lineno - 1]
            msgs.append(f"{where(path, c, node.lineno)}: visible `{kind}` (tag the cell "
                        f"remove-input and say what it checks, or show-assert): "
                        f"{_short(line, 70)!r}")
    return msgs


def check_long_outputs(path):
    """9. A shown output over ~40 lines floods the page: shorten it, fold it
    (`hide-output`) or put it in a scroll box (`scroll-output`)."""
    msgs = []
    for c in read_page(path):
        if not (c.outputs_rendered and c.outputs_shown) or c.tags & SCROLLED_OUTPUT:
            continue
        for k, o in enumerate(c.outputs):
            r = rendered_text(o)
            if not r or r[0] == "text/html":
                continue
            n = len(r[1].rstrip("\n").split("\n"))
            if n > MAX_OUTPUT_LINES:
                msgs.append(f"{where(path, c, 1)} of output {k} ({r[0]}): {n} lines > "
                            f"{MAX_OUTPUT_LINES}")
    return msgs


def check_bibliography():
    """1b. BibTeX fields are printed as text: `$O(1/k^2)$` shows its dollars."""
    msgs = []
    bib = BOOK / "references.bib"
    for n, line in enumerate(bib.read_text(encoding="utf-8").split("\n"), 1):
        if "$" in line and not line.lstrip().startswith("%"):
            msgs.append(f"references.bib line {n}: `$` prints as text in the bibliography "
                        f"(write the formula in Unicode, e.g. O(1/k²)): {_short(line)!r}")
    return msgs


CHECKS = [check_raw_tex, check_equation_brackets, check_display_math_in_lists,
          check_tables_printed_as_text, check_code_width, check_equation_width,
          check_output_width, check_equal_ranges, check_project_language,
          check_visible_asserts, check_long_outputs]

PAGES = _pages()
IDS = [p.relative_to(BOOK).as_posix() for p in PAGES]


def _fail(title, msgs):
    if msgs:
        pytest.fail(f"{title} — {len(msgs)} place(s):\n  " + "\n  ".join(msgs),
                    pytrace=False)


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_no_raw_tex_in_titles_and_link_texts(path):
    _fail(check_raw_tex.__doc__.split("\n")[0], check_raw_tex(path))


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_equation_references_have_single_brackets(path):
    _fail("({eq}`...`) prints ((n.m))", check_equation_brackets(path))


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_display_math_in_lists_is_indented(path):
    _fail("$$ under a bullet without indentation", check_display_math_in_lists(path))


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_no_markdown_tables_printed_as_text(path):
    _fail("Markdown table printed as text", check_tables_printed_as_text(path))


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_visible_code_lines_fit(path):
    _fail(f"visible code lines over {MAX_CODE_LINE} characters", check_code_width(path))


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_display_equations_fit(path):
    _fail("display equations too wide for one row", check_equation_width(path))


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_output_lines_fit(path):
    _fail(f"output lines over {MAX_OUTPUT_LINE} characters", check_output_width(path))


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_no_ranges_with_equal_ends(path):
    _fail("ranges whose ends print equal ('3 to 3')", check_equal_ranges(path))


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_no_project_language(path):
    _fail("project language", check_project_language(path))


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_no_visible_asserts(path):
    _fail("visible check-only code", check_visible_asserts(path))


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_no_long_outputs(path):
    _fail(f"shown outputs over {MAX_OUTPUT_LINES} lines", check_long_outputs(path))


def test_bibliography_has_no_tex_math():
    _fail("TeX math in references.bib", check_bibliography())


def test_the_checker_sees_every_page_of_the_toc():
    """A page the toc builds but this file does not read would escape every check."""
    import yaml
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(toc)
    seen = {p.relative_to(ROOT).with_suffix("").as_posix() for p in PAGES}
    assert set(files) <= seen, sorted(set(files) - seen)


# --- the rules' own tests: each defect of the issue is caught, its fix passes --------
def _nb(tmp_path, name, cells):
    """A notebook of (cell_type, source, tags, outputs) tuples, written to tmp_path."""
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    for cell_type, source, tags, outputs in cells:
        c = {"cell_type": cell_type, "metadata": {"tags": list(tags)}, "source": source}
        if cell_type == "code":
            c.update(outputs=list(outputs), execution_count=None)
        nb["cells"].append(c)
    path = tmp_path / f"{name}.ipynb"
    path.write_text(json.dumps(nb))
    return path


def _stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def _md_out(text):
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/markdown": text, "text/plain": "<IPython.core.display.Markdown>"}}


LONG_EQ = (r"\text{Sphere } \sum_i x_i^2, \qquad \text{Rastrigin } 10D + \sum_i \big(x_i^2 - "
           r"10\cos 2\pi x_i\big), \qquad \text{Rosenbrock } \sum_{i<D} 100\,(x_{i+1} - "
           r"x_i^2)^2 + (1 - x_i)^2 + \text{and more terms here}")
RULE_CASES = {   # check: (cells with the defect, the same cells fixed, defects expected)
    check_raw_tex: (
        [("markdown", "# The layer-$l$ rule\n\nSee {ref}`e-paths`.", (), ()),
         ("markdown", "(e-paths)=\n## 14. $E_{total} = \\sum_k E_k$: sums", (), ())],
        [("markdown", "# The layer-l rule\n\nSee {ref}`erratum 14 <e-paths>`.", (), ()),
         ("markdown", "(e-paths)=\n## 14. $E_{total} = \\sum_k E_k$: sums", (), ())], 2),
    check_equation_brackets: (
        [("markdown", "as in ({eq}`eq-a`), and ({eq}`eq-b`; above)", (), ())],
        [("markdown", "as in {eq}`eq-a`, and {eq}`eq-b` (above)", (), ())], 2),
    check_display_math_in_lists: (
        [("markdown", "* **case**:\n$$\nx = 1\n$$ (eq-c)\n* next", (), ())],
        [("markdown", "* **case**:\n  $$\n  x = 1\n  $$ (eq-c)\n* next\n\n$$\ny\n$$", (), ())],
        1),
    check_tables_printed_as_text: (
        [("code", "print(table)", (), [_stream("| a | b |\n|---|---|\n| 1 | 2 |\n")]),
         ("code", "table", (), [{"output_type": "execute_result", "metadata": {},
                                 "execution_count": 1,
                                 "data": {"text/plain": "'| a |\\n|---|\\n| 1 |'"}}])],
        [("code", "display(Markdown(table))", (), [_md_out("| a | b |\n|---|---|\n| 1 | 2 |")])],
        2),
    check_code_width: (
        [("code", "x = 1" + " " * 80 + "# a comment", (), ()),
         ("markdown", "```python\n" + "y" * 89 + "\n```", (), ()),
         ("markdown", "To install:\n\n    pip install x" + " " * 80 + "# why\n", (), ())],
        [("code", "x = 1" + " " * 80 + "# a comment", ("remove-input",), ()),
         ("markdown", "```python\n" + "y" * 88 + "\n```", (), ()),
         ("markdown", "* item\n\n  continued text of the item, indented by two spaces only, "
          + "long enough to pass 88 characters", (), ())], 3),
    check_equation_width: (
        [("markdown", "$$\n" + LONG_EQ + "\n$$", (), ())],
        [("markdown", "$$\n\\begin{aligned}\n" + LONG_EQ.replace(r"\qquad", r"\\\\ &")
          + "\n\\end{aligned}\n$$", (), ())], 1),
    check_output_width: (
        [("code", "print(msg)", (), [_stream("w" * 111 + "\n")])],
        [("code", "print(msg)", (), [_stream("w" * 110 + "\n")])], 1),
    check_equal_ranges: (
        [("code", "report()", (), [_stream("AMD EPYC (2 threads): 3 to 3 s per epoch\n")]),
         ("markdown", "it takes 0.5 to 0.5 s", (), ())],
        [("code", "report()", (), [_stream("AMD EPYC (2 threads): 2.6 to 3.4 s per epoch\n")]),
         ("markdown", "it takes 0.5 to 0.55 s, 13 to 3 steps", (), ())], 2),
    check_project_language: (
        [("markdown", "As the project brief asks, the mood is good. Target from notes.", (), ())],
        [("markdown", "The loss falls below 0.1; the target $y$ is one-hot.", (), ())], 3),
    check_visible_asserts: (
        [("code", "%matplotlib inline\nx = 1\nassert x == 1\nnp.testing.assert_allclose(x, 1)",
          (), ())],
        [("code", "x = 1\nassert x == 1", ("remove-input",), ()),
         ("code", "assert x == 1   # teaches: the shapes agree", ("show-assert",), ())], 2),
    check_long_outputs: (
        [("code", "train()", (), [_stream("epoch\n" * 41)])],
        [("code", "train()", (), [_stream("epoch\n" * 40)]),
         ("code", "train()", ("hide-output",), [_stream("epoch\n" * 41)])], 1),
}


@pytest.mark.parametrize("check", list(RULE_CASES), ids=lambda f: f.__name__[6:])
def test_each_rule_catches_its_defect_and_passes_its_fix(check, tmp_path):
    bad, good, expected = RULE_CASES[check]
    found = check(_nb(tmp_path, "bad", bad))
    assert len(found) == expected, found
    assert check(_nb(tmp_path, "good", good)) == []


def test_equation_width_is_calibrated_on_rendered_widths():
    """Rendered widths measured with MathJax 3 in Chromium (issue 14): the first is
    955 px wide, the second 516 px."""
    wide = (r"\text{Sphere } \sum_i x_i^2, \qquad \text{Rastrigin } 10D + \sum_i "
            r"\big(x_i^2 - 10\cos 2\pi x_i\big), \qquad \text{Rosenbrock } \sum_{i<D} "
            r"100\,(x_{i+1} - x_i^2)^2 + (1 - x_i)^2 .")
    fits = r"v_i = x_i + F_i\,(x_{\text{pbest}} - x_i) + F_i\,(x_{r_1} - \tilde x_{r_2})"
    assert equation_width_px(wide) > MAX_EQUATION_PX > equation_width_px(fits)


def report(paths=None):
    """Every violation, page by page (what `python tests/test_book_surface.py` prints)."""
    lines, total = [], 0
    pages = [pathlib.Path(p).resolve() for p in paths] if paths else PAGES
    for p in pages:
        found = [(check.__name__, m) for check in CHECKS for m in check(p)]
        total += len(found)
        lines.append(f"== {p.relative_to(ROOT)}: {len(found)}")
        lines += [f"  [{name[6:]}] {m}" for name, m in found]
    if not paths:
        bib = check_bibliography()
        total += len(bib)
        lines.append(f"== book/references.bib: {len(bib)}")
        lines += [f"  [bibliography] {m}" for m in bib]
    lines.append(f"total: {total}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(sys.argv[1:]))
