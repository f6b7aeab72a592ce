"""Writes the "Types" section of the API reference from ``sparseinit._typing``.

The public signatures use a few type aliases (``ScalarLike``, ``AxisLike``, ...) defined in a
private module, each with a ``#:`` comment saying what it admits. This hook reads that module
and replaces the ``<!-- type-aliases -->`` marker of a page with a table of every alias and
protocol in it, so that renaming or adding an alias changes the page without editing it. An
alias without a comment fails the build.
"""

import ast
import pathlib

MARKER = "<!-- type-aliases -->"
MODULE = pathlib.Path(__file__).resolve().parents[2] / "src" / "sparseinit" / "_typing.py"


def _comment_above(lines: list[str], lineno: int) -> str:
    """The ``#:`` comment lines directly above line ``lineno`` (1-based), joined."""
    found = []
    i = lineno - 2
    while i >= 0 and lines[i].lstrip().startswith("#:"):
        found.append(lines[i].lstrip()[2:].strip())
        i -= 1
    return " ".join(reversed(found))


def _cell(text: str) -> str:
    """Text for a Markdown table cell: reST literals become Markdown code."""
    return text.replace("``", "`")


def aliases(source: str) -> list[tuple[str, str, str]]:
    """``(name, definition, meaning)`` for each type alias and protocol of the module source."""
    lines = source.splitlines()
    rows = []
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and ast.unparse(node.annotation) == "TypeAlias"
            and node.value is not None
        ):
            name = node.target.id
            meaning = _comment_above(lines, node.lineno)
            if not meaning:
                raise ValueError(f"{MODULE.name}: the alias {name} has no '#:' comment")
            rows.append((name, ast.unparse(node.value), meaning))
        elif isinstance(node, ast.ClassDef) and any(
            ast.unparse(base) == "Protocol" for base in node.bases
        ):
            doc = ast.get_docstring(node)
            if not doc:
                raise ValueError(f"{MODULE.name}: the protocol {node.name} has no docstring")
            call = next(
                (f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__call__"),
                None,
            )
            definition = "a callable"
            if call is not None:
                args = ast.unparse(call.args).removeprefix("self, ")
                returns = "" if call.returns is None else f" -> {ast.unparse(call.returns)}"
                definition = f"({args}){returns}"
            rows.append((node.name, definition, doc.split("\n\n")[0]))
    return rows


def table(source: str) -> str:
    """The Markdown table of the aliases of the module source."""
    out = ["| Name | What it admits | Definition |", "| --- | --- | --- |"]
    for name, definition, meaning in aliases(source):
        # The anchor makes the name link here from the signatures. Pipes inside a code span do
        # not split a table row.
        anchor = f"[](){{#sparseinit._typing.{name}}}"
        out.append(f"| {anchor}`{name}` | {_cell(meaning)} | `{definition}` |")
    return "\n".join(out)


def on_page_markdown(markdown: str, **kwargs: object) -> str:
    """Replaces the marker with the table."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, table(MODULE.read_text()))
