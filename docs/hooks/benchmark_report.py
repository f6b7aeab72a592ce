"""Puts the last benchmark report, ``benchmarks/RESULTS.md``, on the Performance page.

``nox -s bench`` writes that file for the repository, where it reads on its own: a title, a
table of the machine and versions, the figures. On a page of the site it is a section, so this
hook replaces two markers of a page:

- ``<!-- measured-on -->`` with one line saying where the figures were measured (the machine,
  its cores, the backend and the versions of the report's own table);
- ``<!-- benchmark-report -->`` with the report's sections, one heading level down, without the
  title and the machine table (the line above says it) and without a section of targets;
  a table too wide for a page is split into tables that share its first two columns, each
  with the rows it has figures for.
"""

import pathlib
import re

REPORT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "RESULTS.md"
MEASURED_ON = "<!-- measured-on -->"
BENCHMARK_REPORT = "<!-- benchmark-report -->"
# Columns of figures that fit a page 1280 pixels wide, beside the navigation and the table of
# contents, without scrolling sideways.
MAX_COLUMNS = 7
KEY_COLUMNS = 2
EMPTY = {"", "-", "—"}


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def machine(report: str) -> dict[str, str]:
    """The report's table of the machine and versions (the first table before any section)."""
    head = report.split("\n## ", 1)[0]
    found = {}
    for line in head.splitlines():
        cells = _cells(line) if line.startswith("|") else []
        if len(cells) == 2 and cells[0] and not set(cells[0]) <= {"-", ":"}:
            found[cells[0]] = cells[1]
    return found


def measured_on(report: str) -> str:
    """One line: where the report's figures were measured."""
    m = machine(report)
    cpu = re.sub(r"\((?:R|TM)\)", "", m.get("CPU", "an unnamed CPU")).strip()
    parts = [f"{cpu}, {m['cores']} cores" if "cores" in m else cpu]
    if "JAX backend" in m:
        parts.append(f"JAX backend {m['JAX backend'].split()[0]}")
    if "jax" in m:
        parts.append(f"jax {m['jax']}")
    if "torch (anchors only)" in m:
        parts.append(f"torch {m['torch (anchors only)']} for PyTorch")
    if "date" in m:
        parts.append(m["date"])
    return "**Measured on:** " + ", ".join(parts) + "."


def split_table(lines: list[str]) -> list[list[str]]:
    """A table of too many columns as tables of its key columns and a group of the others.

    Columns filled in the same rows go together (a benchmark measures some figures at every
    sparsity and others at two), and each table keeps only the rows its columns have figures
    for; a group still too wide is cut into even parts.
    """
    header, align, *body = lines
    names, aligns = _cells(header), _cells(align)
    rows = [_cells(line) for line in body]
    if len(names) <= MAX_COLUMNS:
        return [lines]
    groups: dict[tuple[bool, ...], list[int]] = {}
    for column in range(KEY_COLUMNS, len(names)):
        filled = tuple(row[column] not in EMPTY for row in rows)
        groups.setdefault(filled, []).append(column)
    width = MAX_COLUMNS - KEY_COLUMNS
    tables = []
    for filled, columns in groups.items():
        parts = -(-len(columns) // width)
        size = -(-len(columns) // parts)
        for start in range(0, len(columns), size):
            keep = [*range(KEY_COLUMNS), *columns[start : start + size]]
            table = [_row([names[i] for i in keep]), _row([aligns[i] for i in keep])]
            kept = [row for row, has in zip(rows, filled, strict=True) if has]
            table += [_row([row[i] for i in keep]) for row in kept]
            tables.append(table)
    return tables


def sections(report: str) -> str:
    """The report's sections, for a page: see the module's docstring."""
    body = report.split("\n## ", 1)
    if len(body) < 2:
        return ""
    out: list[str] = []
    skipping = False
    table: list[str] = []

    def flush() -> None:
        for i, part in enumerate(split_table(table) if table else []):
            if i:
                out.append("")
            out.extend(part)
        table.clear()

    for line in ("## " + body[1]).splitlines():
        heading = re.match(r"^(#+)\s+(.*)$", line)
        if heading:
            flush()
            level, title = len(heading[1]), heading[2]
            if level == 1:
                continue
            if level == 2:
                skipping = title.strip().lower().startswith("target")
            if not skipping:
                out.append("#" * (level + 1) + " " + title)
            continue
        if skipping:
            continue
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        out.append(line)
    flush()
    return "\n".join(out).strip() + "\n"


def on_page_markdown(markdown: str, **kwargs: object) -> str:
    """Replaces the markers with the line and the sections of the report."""
    if MEASURED_ON not in markdown and BENCHMARK_REPORT not in markdown:
        return markdown
    report = REPORT.read_text(encoding="utf-8")
    markdown = markdown.replace(MEASURED_ON, measured_on(report))
    return markdown.replace(BENCHMARK_REPORT, sections(report))
