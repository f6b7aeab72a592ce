"""Checks of the built documentation site, as a reader's browser gets it.

Skipped unless ``site/`` holds a build (``nox -s docs`` builds it, then runs this module):
the API reference documents every returned value as a value, not as a name made of the first
word of a sentence; no page shows raw LaTeX or reStructuredText roles where maths or code should
be; no page loads anything from the network; the notebooks are shown with their figures.
"""

import ast
import html.parser
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
PAGES = sorted(SITE.glob("**/index.html")) if (SITE / "index.html").is_file() else []

pytestmark = pytest.mark.skipif(not PAGES, reason="no built site: run `nox -s docs`")

# What the text of a page must not show: the delimiters of maths left for a script to render,
# and the roles of the docstrings left unconverted.
RAW_MARKUP = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|:(?:math|class|func|meth|mod|attr|obj|exc):")
# What a page loads: the src of these elements, and the href of a link with one of these rels.
LOADING_TAGS = {"script", "img", "iframe", "source", "audio", "video", "embed"}
LOADING_RELS = {"stylesheet", "icon", "preload", "modulepreload", "preconnect", "manifest"}
SKIPPED_TEXT = {"script", "style", "code", "pre", "math"}


class _Page(html.parser.HTMLParser):
    """The visible text, the loaded resources and the images of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.resources: list[str] = []
        self.images: list[str] = []
        self.styles: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in SKIPPED_TEXT:
            self._skipping.append(tag)
        if tag in LOADING_TAGS and values.get("src"):
            self.resources.append(values["src"])
        if tag == "link" and LOADING_RELS & set(values.get("rel", "").split()):
            self.resources.append(values.get("href", ""))
        if tag == "img":
            self.images.append(values.get("src", ""))

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.text.append(data)
        elif self._skipping[-1] == "style":
            self.styles.append(data)


def _parse(page: pathlib.Path) -> _Page:
    parsed = _Page()
    parsed.feed(page.read_text(encoding="utf-8"))
    return parsed


def _name(page: pathlib.Path) -> str:
    return str(page.parent.relative_to(SITE)) or "home"


def _is_remote(url: str) -> bool:
    return bool(re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url, re.I)) and not url.startswith("data:")


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_no_raw_latex_or_roles_in_the_text(page):
    text = " ".join(_parse(page).text)
    found = sorted({m.group(0) for m in RAW_MARKUP.finditer(text)})
    assert not found, f"{_name(page)} shows raw markup {found}"


def _css_urls(css: str) -> list[str]:
    return re.findall(r"""(?:url\(|@import\s+)["']?([^"')\s;]+)""", css)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_nothing_is_loaded_from_the_network(page):
    parsed = _parse(page)
    urls = parsed.resources + [url for style in parsed.styles for url in _css_urls(style)]
    remote = [url for url in urls if _is_remote(url)]
    assert not remote, f"{_name(page)} loads {remote}"


def test_stylesheets_load_nothing_from_the_network():
    for sheet in SITE.glob("**/*.css"):
        remote = [url for url in _css_urls(sheet.read_text()) if _is_remote(url)]
        assert not remote, f"{sheet.relative_to(SITE)} loads {remote}"


def _returns_sections(api: str) -> list[str]:
    """The HTML of each Returns table of the API page."""
    return re.findall(r"Returns:</span></p>\s*(<table>.*?</table>)", api, re.S)


def test_returns_document_values_not_names():
    api = (SITE / "api" / "index.html").read_text(encoding="utf-8")
    sections = _returns_sections(api)
    assert len(sections) >= 8, "the API page has lost its Returns sections"
    for section in sections:
        header = re.findall(r"<th>(.*?)</th>", section)
        assert header == ["Type", "Description"], f"a Returns table is headed {header}"
        for row in re.findall(r"<tr class=\"doc-section-item\">(.*?)</tr>", section, re.S):
            cells = re.findall(r"<td>(.*?)</td>", row, re.S)
            kind = re.sub(r"<[^>]+>", "", cells[0]).strip()
            description = re.sub(r"<[^>]+>", "", cells[1]).strip()
            # "A :class:`X` initializer." once became the type "A" and the description
            # "class:X initializer.": a type is not an article, a description not a role.
            assert kind not in {"A", "An", "The"}, f"a Returns entry has the type {kind!r}"
            assert not re.match(r"(?:class|func|meth|mod|obj):", description), description


# The modules whose type aliases the signatures use; the report's AxesArg is the one alias
# outside sparseinit._typing.
ALIASES = r'title="sparseinit\.(?:_typing\.(\w+)|report\.(AxesArg))"'


def test_types_section_explains_every_alias_of_the_signatures():
    api = (SITE / "api" / "index.html").read_text(encoding="utf-8")
    used = {a or b for a, b in re.findall(ALIASES, api)}
    section = api[api.index('id="types"') :]
    explained = set(re.findall(r"<td>(?:<a [^>]*></a>)?<code>(\w+)</code></td>", section))
    assert used, "the signatures no longer name the aliases of sparseinit._typing"
    assert "AxesArg" in used, "sparsity_report's signature no longer names AxesArg"
    assert used <= explained, f"the Types section does not explain {sorted(used - explained)}"
    # Each name in a signature links to its row.
    unlinked = {a or b for a, b in re.findall("<span " + ALIASES, api)}
    assert not unlinked, f"the signatures do not link {sorted(unlinked)} to the Types section"


def test_api_headings_give_full_paths():
    # A reader who lands on `keep_sparsity` must see that it is `sparseinit.optax.keep_sparsity`.
    api = (SITE / "api" / "index.html").read_text(encoding="utf-8")
    headings = re.findall(r'<h2 id="(sparseinit\.[\w.]+)"[^>]*>(.*?)</h2>', api, re.S)
    assert len(headings) >= 20, "the API page has lost its entries"
    for anchor, heading in headings:
        text = re.sub(r"<[^>]+>|&para;|\s", "", heading)
        assert text.startswith(anchor), f"the heading of {anchor} reads {text!r}"
    names = {anchor for anchor, _ in headings}
    for name in ["sparseinit.optax.keep_sparsity", "sparseinit.report.sparsity_report"]:
        assert name in names, f"the API page has no entry {name}"


def _public_names(module: str) -> list[str]:
    """The ``__all__`` of a module of the sources, read without importing it."""
    path = ROOT / "src" / "sparseinit" / (f"{module}.py" if module else "__init__.py")
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return [n for n in ast.literal_eval(node.value) if not n.startswith("_")]
    return []


@pytest.mark.parametrize("module", ["", "optax", "flax", "report"])
def test_every_public_name_has_an_api_entry(module):
    api = (SITE / "api" / "index.html").read_text(encoding="utf-8")
    prefix = "sparseinit." + (f"{module}." if module else "")
    missing = [n for n in _public_names(module) if f'id="{prefix}{n}"' not in api]
    assert not missing, f"the API page has no entry for {[prefix + n for n in missing]}"


def test_no_page_links_to_a_repository_that_does_not_exist():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert "md-source" not in text, f"{_name(page)} shows a repository link in its header"
        assert "repository.invalid" not in text, f"{_name(page)} links to a placeholder"


def _tables(page_html: str) -> list[list[str]]:
    """The header cells of each table of a page's own text (not of a notebook's outputs)."""
    page_html = page_html.split('<div class="jupyter-wrapper"', 1)[0]
    heads = re.findall(r"<thead>(.*?)</thead>", page_html, re.S)
    return [re.findall(r"<th[ >]", head) for head in heads]


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_tables_fit_a_1280_pixel_screen(page):
    # Seven columns of figures fit beside the navigation and the table of contents; more
    # scroll sideways, and the last columns are not seen.
    widths = [len(cells) for cells in _tables(page.read_text(encoding="utf-8"))]
    assert all(width <= 7 for width in widths), f"{_name(page)} has tables of {widths} columns"


def test_performance_page_is_one_page_that_leads_with_the_answer():
    page = (SITE / "performance" / "index.html").read_text(encoding="utf-8")
    text = " ".join(_parse(SITE / "performance" / "index.html").text)
    assert len(re.findall(r"<h1[ >]", page)) == 1, "the benchmark report brought its own title"
    headings = re.findall(r"<h[2-6][^>]*>(.*?)</h[2-6]>", page, re.S)
    assert not [h for h in headings if "Targets" in h], "the page shows the targets table"
    assert text.count("Measured on:") == 1
    # The first table is what a user gets, before any section of the design.
    first_table = page.index("<table")
    assert "what you get" in page[first_table : page.index("</table>")]
    assert first_table < page.index('id="how-the-mask-is-drawn"')


@pytest.mark.parametrize("name", ["", "performance", "sweeps", "demo"])
def test_one_measured_on_line_per_page_with_figures(name):
    text = " ".join(_parse(SITE / name / "index.html").text)
    assert text.count("Measured on:") == 1, f"{name or 'home'}: one 'Measured on' line"
    # Where and when the figures were made is that line's business, not the prose's.
    for history in ["load average", "went from", "AMD EPYC", "2026-11-"]:
        assert history not in text, f"{name or 'home'} still tells its history: {history!r}"


@pytest.mark.parametrize(
    ("notebook", "figures"), [("quickstart", 2), ("sweeps", 1), ("streaming_rl", 1)]
)
def test_notebooks_are_shown_with_their_figures(notebook, figures):
    page = SITE / "notebooks" / notebook / "index.html"
    images = [src for src in _parse(page).images if src.startswith("data:image/")]
    assert len(images) >= figures, f"{notebook} shows {len(images)} of its {figures} figures"
