"""Every Python block of the documentation runs, so the documentation cannot drift from the code.

The blocks of one page run in order in one namespace, as a reader would run them. A block opts
out only with ``<!-- skip-test -->`` on the line before its fence (for code that needs what a
test process does not have, such as several hosts); the page should say why.
"""

import dataclasses
import pathlib
import re
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
SKIP_MARKER = "<!-- skip-test -->"
PYTHON = {"python", "py"}

# An opening fence (possibly indented, inside an admonition or a list) and its language.
_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    lang: str
    line: int  # 1-based line of the first line of code
    code: str
    skipped: bool


def extract_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        opening = _OPEN.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        previous = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip()), "")
        body = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        blocks.append(
            Block(
                lang=opening["lang"].lower(),
                line=i + 2,
                code=textwrap.dedent("\n".join(body)),
                skipped=previous == SKIP_MARKER,
            )
        )
        i = j + 1
    return blocks


def python_blocks(page: pathlib.Path) -> list[Block]:
    """The Python blocks of ``page``, skipped ones included."""
    return [b for b in extract_blocks(page.read_text()) if b.lang in PYTHON]


def _pages_with_code() -> list[pathlib.Path]:
    return [p for p in PAGES if p.exists() and python_blocks(p)]


def test_extract_blocks_finds_fences_indents_and_markers():
    text = "\n".join(
        [
            "# Page",
            "```python",
            "x = 1",
            "```",
            "",
            "<!-- skip-test -->",
            "",
            "```python",
            "raise RuntimeError",
            "```",
            '!!! note "inside an admonition"',
            "    ```python",
            "    y = x + 1",
            "    ```",
            "```bash",
            "pip install sparseinit",
            "```",
        ]
    )
    blocks = extract_blocks(text)
    assert [(b.lang, b.line, b.code, b.skipped) for b in blocks] == [
        ("python", 3, "x = 1", False),
        ("python", 9, "raise RuntimeError", True),
        ("python", 13, "y = x + 1", False),
        ("bash", 16, "pip install sparseinit", False),
    ]


def test_the_pages_have_code_to_run():
    # A silent extractor bug (or a renamed folder) would otherwise make every page pass.
    pages = {p.name for p in _pages_with_code()}
    assert {"index.md", "getting_started.md", "semantics.md", "sweeps.md"} <= pages


# Slow: the pages compile a few dozen programs. They describe the default float32
# configuration (they check dtypes), so the JAX_ENABLE_X64 rerun, which skips slow tests, skips
# them too.
@pytest.mark.slow
@pytest.mark.parametrize("page", _pages_with_code(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_code_runs(page: pathlib.Path):
    namespace = {"__name__": f"docs.{page.stem}"}
    for block in python_blocks(page):
        if block.skipped:
            continue
        # Padding with blank lines makes a traceback point at the page's own line numbers.
        source = "\n" * (block.line - 1) + block.code
        exec(compile(source, str(page.relative_to(ROOT)), "exec"), namespace)
