"""Rewrite the chapters' MyST markdown so that any Jupyter front end shows it right.

JupyterLab without jupyterlab-myst, VS Code and Colab render CommonMark with math, not MyST:
they would show ``{glue:text}`hsb_tau2:.2f``` where the book shows 8.61, and raw fences for
admonitions and exercises. The student and run-anywhere editions (and the nbgrader
assignments) are written through `plain_notebook`, which:

- substitutes every ``{glue:text}`name:format``` with the value the executed chapter glued
  (formatted as myst-nb does, with Python's format specification);
- turns cross-references into the words the book prints: ``{numref}`fig-x``` → "Figure 2.3",
  ``{eq}`eq-x``` → "(2.3)", ``{ref}`ex-2-1``` → "Exercise 2.1", a section label → its heading,
  ``{doc}`/book/notation``` → the page title, ``{term}`text <entry>``` → "text", and citations
  to author–year text ("Bell and Jones (2015)", "(Mundlak, 1978)", as the book prints them)
  from book/references.bib; an API role ``{py:func}`mlteach.lmm``` → inline code
  ``mlteach.lmm`` (``~`` keeps the last name, as Sphinx does);
- numbers labelled display equations with ``\\tag{2.3}`` (as the book numbers them);
- rewrites admonitions as block quotes with a bold title, exercises as a bold
  "Exercise 2.1: title" paragraph and solutions (in the full editions) as a block quote
  "Solution to Exercise 2.1"; drops label lines ``(name)=`` and MyST comments ``% ...``;
- replaces the chapters' guarded ``from myst_nb import glue`` by its fallback alone, so no
  executed cell imports myst-nb (a Sphinx extension); and puts each figure's caption under
  the cell that draws it.

Equations and figures are numbered per chapter in order of appearance, the chapter number taken
from the file name (``02-...``), as Jupyter Book numbers them with ``numfig_secnum_depth: 1``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]

ROLE = re.compile(r"\{([a-z][a-z:\-]*)\}`([^`]*)`")
# Sphinx's Python-domain roles, which the API reference resolves ({py:func}`mlteach.lmm`).
PY_ROLES = {"py:func", "py:class", "py:meth", "py:attr", "py:mod", "py:obj", "py:data",
            "py:exc", "func", "class", "meth", "attr", "mod", "obj", "exc"}
EXPLICIT = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)
LABEL_LINE = re.compile(r"^\(([\w\-]+)\)=\s*$")
FENCE_OPEN = re.compile(r"^(`{3,}|:{3,})\{([\w:\-]+)\}\s*(.*)$")
EQ_LABEL = re.compile(r"^\$\$\s*\(([\w\-]+)\)\s*$")
GLUE_IMPORT = re.compile(r"^from myst_nb import glue(?: as (\w+))?\s*$", re.M)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")

GLUE_STANDIN = (
    "def {name}(name, value, display=True):  # stands in for the book build's glue\n"
    "    if display:\n"
    "        IPython.display.display(value)\n"
)

ADMONITION_TITLES = {"note": "Note", "tip": "Tip", "warning": "Warning", "important": "Important",
                     "caution": "Caution", "hint": "Hint", "seealso": "See also",
                     "attention": "Attention", "danger": "Danger", "error": "Error"}


class PlainMarkdownError(ValueError):
    """A role or directive this rewrite does not know; extend the rewrite, never leave it raw."""


# ----------------------------------------------------------------------------------------------
# What the rewrite needs to know about the whole book: labels, numbers, citations, glue values
# ----------------------------------------------------------------------------------------------


@dataclass
class BookIndex:
    """Labels and numbers of the whole book, and the bibliography."""

    labels: dict[str, str] = field(default_factory=dict)      # label -> text {ref} prints
    numbers: dict[str, str] = field(default_factory=dict)     # label -> "2.3" ({numref}, {eq})
    kinds: dict[str, str] = field(default_factory=dict)       # label -> Figure / Chapter / ...
    pages: dict[str, str] = field(default_factory=dict)       # "/book/notation" -> title
    cites: dict[str, tuple[str, str]] = field(default_factory=dict)   # key -> (authors, year)
    eq_pages: dict[str, str] = field(default_factory=dict)    # equation label -> its page

    @classmethod
    def build(cls, notebooks: list[Path], root: Path = ROOT) -> "BookIndex":
        index = cls()
        for page in sorted((root / "book").glob("*.md")):
            index._scan_markdown(page.read_text(encoding="utf-8"), f"/book/{page.stem}", None)
        for path in notebooks:
            nb = nbformat.read(path, as_version=4)
            chapter = chapter_number(path)
            markdown = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
            index._scan_markdown(markdown, f"/notebooks/{path.stem}", chapter)
            figures = 0
            for cell in nb.cells:
                name = cell.metadata.get("mystnb", {}).get("figure", {}).get("name")
                if cell.cell_type == "code" and name and chapter is not None:
                    figures += 1
                    index.numbers[name] = f"{chapter}.{figures}"
                    index.kinds[name] = "Figure"
        bib = root / "book" / "references.bib"
        if bib.exists():
            index.cites = parse_bib(bib.read_text(encoding="utf-8"))
        return index

    def _scan_markdown(self, text: str, page: str, chapter: int | None) -> None:
        lines = text.splitlines()
        equations = exercises = 0
        pending: list[str] = []
        for line in lines:
            if m := LABEL_LINE.match(line):
                pending.append(m.group(1))
                continue
            if m := HEADING.match(line):
                title = ROLE.sub(lambda r: _role_text_only(r.group(2)), m.group(2))
                if len(m.group(1)) == 1:
                    self.pages.setdefault(page, title)
                for label in pending:
                    if len(m.group(1)) == 1 and chapter is not None:
                        self.labels[label] = f"Chapter {chapter}"
                        self.numbers[label] = str(chapter)
                        self.kinds[label] = "Chapter"
                    else:
                        self.labels[label] = title
                pending = []
                continue
            if line.strip():
                pending = []
            if m := EQ_LABEL.match(line):
                equations += 1       # pages outside the numbered chapters: (1), (2), ...
                self.numbers[m.group(1)] = (f"{chapter}.{equations}" if chapter is not None
                                            else str(equations))
                self.kinds[m.group(1)] = "Equation"
                self.eq_pages[m.group(1)] = page
            if (m := FENCE_OPEN.match(line)) and m.group(2) == "exercise":
                exercises += 1
        # exercise labels: ``:label: ex-2-1`` inside an exercise fence
        for m in re.finditer(r"^`{3,}\{exercise\}\s*(.*)\n:label:\s*([\w\-]+)", text, re.M):
            number = _exercise_number(m.group(2), chapter)
            self.labels[m.group(2)] = f"Exercise {number}"
            self.numbers[m.group(2)] = number
            self.kinds[m.group(2)] = "Exercise"


def _exercise_number(label: str, chapter: int | None) -> str:
    m = re.fullmatch(r"ex-(\d+)-(\d+)", label)
    return f"{int(m.group(1))}.{int(m.group(2))}" if m else label


def _role_text_only(body: str) -> str:
    m = EXPLICIT.match(body)
    return m.group(1) if m else body


def chapter_number(path: Path) -> int | None:
    m = re.match(r"(\d+)-", path.name)
    return int(m.group(1)) if m else None


def parse_bib(text: str) -> dict[str, tuple[str, str]]:
    """key -> (author text as author–year citations print it, year)."""
    out = {}
    for entry in re.finditer(r"@\w+\{([^,\s]+),(.*?)\n\}", text, re.S):
        key, body = entry.group(1), entry.group(2)
        author = re.search(r"\b(?:author|editor)\s*=\s*\{(.*?)\},?\s*\n", body, re.S)
        year = re.search(r"\byear\s*=\s*\{?(\d{4}\w?)\}?", body)
        names = []
        for person in re.split(r"\s+and\s+", author.group(1) if author else ""):
            person = person.strip().strip("{}")
            last = person.split(",")[0] if "," in person else person.split(" ")[-1]
            names.append(last.replace("{", "").replace("}", "").strip())
        if len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = f"{names[0]} et al."
        out[key] = (who or key, year.group(1) if year else "n.d.")
    return out


def glue_values(nb) -> dict[str, str]:
    """name -> text/plain of every value the executed notebook glued."""
    out = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if not name:
                continue
            data = output.get("data", {})
            text = next((v for k, v in data.items() if k.endswith("text/plain")), None)
            if text is not None:
                out[name] = text if isinstance(text, str) else "".join(text)
    return out


def format_glue(text: str, spec: str) -> str:
    """Format a glued value's text/plain as ``{glue:text}`name:spec``` does."""
    if not spec:
        return text
    m = re.fullmatch(r"np\.\w+\((.*)\)", text.strip())
    literal = m.group(1) if m else text.strip()
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return text
    return format(value, spec)


# ----------------------------------------------------------------------------------------------
# The rewrite
# ----------------------------------------------------------------------------------------------


class Rewriter:
    def __init__(self, index: BookIndex, glue: dict[str, str], where: str = "notebook"):
        self.index, self.glue, self.where = index, glue, where

    # roles ------------------------------------------------------------------------------------
    def role(self, match: re.Match) -> str:
        name, body = match.group(1), match.group(2)
        explicit = EXPLICIT.match(body)
        text, target = (explicit.group(1), explicit.group(2)) if explicit else (None, body)
        if name in ("glue:text", "glue"):
            key, _, spec = body.partition(":")
            if key not in self.glue:
                raise PlainMarkdownError(f"{self.where}: no glued value {key!r}")
            return format_glue(self.glue[key], spec)
        if name == "term":
            return text if text is not None else body
        if name in ("numref", "eq"):
            number = self.index.numbers.get(target)
            if number is None:
                raise PlainMarkdownError(f"{self.where}: unknown label {target!r} in {{{name}}}")
            if name == "eq":
                page = self.index.eq_pages.get(target, "")
                if page.startswith("/book/"):     # an unnumbered page: say which
                    return f"({number}) of the {self.index.pages.get(page, page)} page"
                return f"({number})"
            if text is not None:
                return text.replace("%s", number).replace("{number}", number)
            return f"{self.index.kinds.get(target, '')} {number}".strip()
        if name == "ref":
            if text is not None:
                return text
            if target not in self.index.labels:
                raise PlainMarkdownError(f"{self.where}: unknown label {target!r} in {{ref}}")
            return self.index.labels[target]
        if name == "doc":
            if text is not None:
                return text
            return self.index.pages.get(target, target.rsplit("/", 1)[-1])
        if name in ("cite:p", "cite:t", "cite", "cite:ps", "cite:ts"):
            keys = [k.strip() for k in body.split(",") if k.strip()]
            missing = [k for k in keys if k not in self.index.cites]
            if missing:
                raise PlainMarkdownError(f"{self.where}: unknown citation {missing}")
            if name.startswith("cite:t"):
                return "; ".join(f"{a} ({y})" for a, y in (self.index.cites[k] for k in keys))
            return "(" + "; ".join(f"{a}, {y}" for a, y in (self.index.cites[k] for k in keys)) + ")"
        if name in ("math",):
            return f"${body}$"
        if name in PY_ROLES:            # an API name: inline code, as the book prints it
            if text is not None:
                return text
            shown = target.lstrip("~!.")
            return f"`{shown.rsplit('.', 1)[-1] if target.startswith('~') else shown}`"
        raise PlainMarkdownError(f"{self.where}: the role {{{name}}} has no plain rewrite")

    def inline(self, text: str) -> str:
        # roles never occur inside inline code spans in the chapters, except as examples
        # written with double backticks; those are protected
        spans: list[str] = []

        def protect(m: re.Match) -> str:
            spans.append(m.group(0))
            return f"\x00{len(spans) - 1}\x00"

        text = re.sub(r"``.*?``", protect, text)
        text = ROLE.sub(self.role, text)
        return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)

    # blocks -----------------------------------------------------------------------------------
    def markdown(self, text: str) -> str:
        text = self.inline(text)          # roles first: their text may run over a line break
        lines = text.splitlines()
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            if LABEL_LINE.match(line) or re.match(r"^%( |$)", line):
                i += 1
                continue
            if m := EQ_LABEL.match(line):
                number = self.index.numbers.get(m.group(1))
                out.append(f"\\tag{{{number}}}" if number else "")
                out.append("$$")
                i += 1
                continue
            if m := FENCE_OPEN.match(line):
                fence, name, argument = m.group(1), m.group(2), m.group(3).strip()
                j = i + 1
                options: dict[str, str] = {}
                while j < len(lines) and (o := re.match(r"^:([\w\-]+):\s*(.*)$", lines[j])):
                    options[o.group(1)] = o.group(2)
                    j += 1
                body_start = j
                while j < len(lines) and lines[j].rstrip() != fence:
                    j += 1
                body = "\n".join(lines[body_start:j]).strip("\n")
                out.extend(self.directive(name, argument, options, body).splitlines())
                i = j + 1
                continue
            out.append(line)
            i += 1
        text = "\n".join(out)
        return re.sub(r"\n{3,}", "\n\n", text).strip("\n")

    def directive(self, name: str, argument: str, options: dict[str, str], body: str) -> str:
        inner = self.markdown(body)
        if name == "exercise":
            label = options.get("label", "")
            number = self.index.numbers.get(label, "")
            title = self.inline(argument)
            head = f"**Exercise {number}**" + (f" **{title}**" if title else "")
            if number and title:
                head = f"**Exercise {number}: {title}**"
            return f"{head}\n\n{inner}"
        if name == "solution":             # the full editions: a quoted "Solution to ..."
            number = self.index.numbers.get(argument.strip(), "")
            title = f"Solution to Exercise {number}" if number else "Solution"
            quoted = "\n".join(f"> {line}".rstrip() for line in inner.splitlines())
            return f"> **{title}**\n>\n{quoted}"
        if name == "admonition" or name in ADMONITION_TITLES:
            title = self.inline(argument) if name == "admonition" else ADMONITION_TITLES[name]
            quoted = "\n".join(f"> {line}".rstrip() for line in inner.splitlines())
            return f"> **{title}**\n>\n{quoted}" if title else quoted
        if name == "math":
            label = options.get("label")
            tag = f"\\tag{{{self.index.numbers[label]}}}\n" if label in self.index.numbers else ""
            return f"$$\n{body}\n{tag}$$"
        raise PlainMarkdownError(f"{self.where}: the directive {{{name}}} has no plain rewrite")


def plain_code(source: str) -> str:
    """A code cell's source with the myst-nb import replaced by a stand-in.

    The chapters import glue guarded (``try: from myst_nb import glue`` / ``except ImportError:``
    and a fallback ``def``), so they run without myst-nb; here the whole guard becomes the
    fallback alone, and a bare import becomes the stand-in.
    """
    lines = source.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        guarded = re.match(r"^try:", lines[i]) and GLUE_IMPORT.match(nxt.strip())
        bare = GLUE_IMPORT.match(lines[i])
        if guarded or bare:
            name = (GLUE_IMPORT.match(nxt.strip()) if guarded else bare).group(1) or "glue"
            if "import IPython.display" not in source:
                out.append("import IPython.display\n\n")
            out.extend(GLUE_STANDIN.format(name=name).rstrip("\n").split("\n"))
            i += 2 if guarded else 1
            if guarded:          # skip ``except ImportError:`` and its indented block
                assert lines[i].startswith("except ImportError"), lines[i]
                i += 1
                while i < len(lines) and (lines[i].startswith((" ", "\t")) or not lines[i]):
                    if not lines[i] and not (i + 1 < len(lines) and
                                             lines[i + 1].startswith((" ", "\t"))):
                        break
                    i += 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def plain_notebook(nb, executed, index: BookIndex, name: str = "notebook"):
    """Rewrite `nb` (a student notebook) in place for plain Jupyter front ends.

    `executed` is the executed chapter it came from: its glued outputs give the values.
    """
    rewriter = Rewriter(index, glue_values(executed), name)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = rewriter.markdown(cell.source)
            if not cell.source.strip():
                continue
        elif cell.cell_type == "code":
            cell.source = plain_code(cell.source)
        cells.append(cell)
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        if cell.cell_type == "code" and figure.get("caption"):
            number = index.numbers.get(figure.get("name", ""), "")
            caption = rewriter.markdown(figure["caption"]).replace("\n", " ")
            note = nbformat.v4.new_markdown_cell(f"*Figure {number}.* {caption}".replace(
                "*Figure .*", "*Figure.*"))
            note["id"] = f"{cell.get('id', 'fig')}-caption"[:64]
            cells.append(note)
    nb.cells = cells
    return nb


# what a plain front end would show raw: used by the tests of every distributed notebook
RAW_MYST = re.compile(r"\{[a-z][a-z:\-]*\}`|^(?:`{3,}|:{3,})\{|^\([\w\-]+\)=[ \t]*$|^\$\$[ \t]*\(",
                      re.M)
