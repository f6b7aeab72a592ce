"""Renders the maths of the pages as MathML at build time.

``pymdownx.arithmatex`` (in its "generic" mode) marks the maths of the pages and of the
docstrings (``$...$`` and ``$$...$$``); this hook converts it to MathML, which browsers render
natively, so that no page needs a script or a network resource to show a formula.
"""

import re
from html import unescape

from latex2mathml.converter import convert

_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)


def _mathml(latex: str, display: str = "inline") -> str:
    return convert(unescape(latex).strip(), display=display)


def on_page_content(html: str, **kwargs: object) -> str:
    """Replaces the maths of a page's HTML with MathML."""
    html = _INLINE.sub(lambda m: _mathml(m[1]), html)
    return _BLOCK.sub(lambda m: _mathml(m[1], display="block"), html)
