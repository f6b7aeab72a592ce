"""Writes the "Types" section of the API reference from the modules that define type aliases.

The public signatures use a few type aliases (``ScalarLike``, ``AxisLike``, ...) defined in a
private module, ``sparseinit._typing``, and one, ``AxesArg``, in ``sparseinit.report``, each
with a ``#:`` comment saying what it admits. This hook reads those modules and replaces the
``<!-- type-aliases -->`` marker of a page with a table of every alias and protocol in them, so
that renaming or adding an alias changes the page without editing it. An alias without a
comment fails the build.
"""

import ast
import pathlib

MARKER = "<!-- type-aliases -->"
SOURCE = pathlib.Path(__file__).resolve().parents[2] / "src" / "sparseinit"
# The modules whose aliases the signatures use, by their import path.
MODULES = {"sparseinit._typing": SOURCE / "_typing.py", "sparseinit.report": SOURCE / "report.py"}


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


def aliases(source: str, module: str = "_typing.py") -> list[tuple[str, str, str]]:
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
                raise ValueError(f"{module}: the alias {name} has no '#:' comment")
            rows.append((name, ast.unparse(node.value), meaning))
        elif isinstance(node, ast.ClassDef) and any(
            ast.unparse(base) == "Protocol" for base in node.bases
        ):
            doc = ast.get_docstring(node)
            if not doc:
                raise ValueError(f"{module}: the protocol {node.name} has no docstring")
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


def table(sources: dict[str, str]) -> str:
    """The Markdown table of the aliases of the modules' sources, keyed by import path."""
    out = ["| Name | What it admits | Definition |", "| --- | --- | --- |"]
    for module, source in sources.items():
        for name, definition, meaning in aliases(source, module):
            # The anchor makes the name link here from the signatures. Pipes inside a code
            # span do not split a table row.
            anchor = f"[](){{#{module}.{name}}}"
            out.append(f"| {anchor}`{name}` | {_cell(meaning)} | `{definition}` |")
    return "\n".join(out)


def on_page_markdown(markdown: str, **kwargs: object) -> str:
    """Replaces the marker with the table."""
    if MARKER not in markdown:
        return markdown
    sources = {module: path.read_text() for module, path in MODULES.items()}
    return markdown.replace(MARKER, table(sources))
