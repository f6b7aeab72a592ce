"""Renders the reStructuredText roles of the docstrings on the generated pages.

The docstrings write maths as ``:math:`...``` and references as ``:func:`...``` (the forms
that read well in ``help()`` and in an editor). Markdown turns the backquoted part into
``<code>`` and leaves the role's name in front of it; this hook makes maths MathJax input and
drops the names of the other roles.
"""

import re

_MATH = re.compile(r":math:<code>(.*?)</code>", re.S)
_REFERENCE = re.compile(r":(?:func|class|meth|mod|attr|obj|data|exc):(<code>.*?</code>)", re.S)


def on_page_content(html: str, **kwargs: object) -> str:
    """Rewrites the roles in a page's HTML."""
    html = _MATH.sub(r'<span class="arithmatex">\\(\1\\)</span>', html)
    return _REFERENCE.sub(r"\1", html)
