"""mkdocs hook: render Sphinx roles in docstrings (``:func:`x` ``) as plain code.

crsky's docstrings use Sphinx-style roles (``:func:``, ``:class:``, ``:mod:``, ``:data:``) that the
Google-style handler of mkdocstrings shows literally (":func:" before the code span). This drops
the role prefix and keeps the code span.
"""

import re

# The leading colon is missing where a "Returns:" entry starts with a role (griffe takes the
# text before the first colon as the type).
_ROLE = re.compile(r"(?:(?<=<p>)|:)(?:func|class|mod|data|meth|attr|obj|exc):(<code>)")


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(r"\1", html)
