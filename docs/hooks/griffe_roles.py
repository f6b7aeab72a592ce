"""Reads the reStructuredText roles of the docstrings as Markdown, before they are parsed.

The docstrings write maths as ``:math:`...``` and references as ``:class:`...``` (the forms that
read well in ``help()`` and in an editor). Left as they are, their colons split a Google-style
``Returns:`` entry into a type and a description ("A :class:`SparseInit` initializer." would
document a value of type ``A``), and their names show on the page. This Griffe extension turns
references into code and maths into ``$...$``, which ``pymdownx.arithmatex`` and the
``mathml`` hook render.
"""

import re
from typing import Any

import griffe

_MATH = re.compile(r":math:`([^`]+)`")
_REFERENCE = re.compile(r":(?:func|class|meth|mod|attr|obj|data|exc):`~?([^`]+)`")


def markdown_roles(text: str) -> str:
    """``text`` with its reStructuredText roles written as Markdown."""
    text = _MATH.sub(r"$\1$", text)
    return _REFERENCE.sub(r"`\1`", text)


class MarkdownRoles(griffe.Extension):
    """Rewrites the roles of every docstring the loader reads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrites ``obj``'s docstring."""
        if obj.docstring is not None:
            obj.docstring.value = markdown_roles(obj.docstring.value)
