"""Small fixes to the HTML that Jupyter Book 1's theme stack produces, found by tests/test_site.py.

Every page arrives at the ``html-page-context`` event with sphinx-thebe's and sphinx-togglebutton's
inline configuration scripts listed twice (they are registered again each time Jupyter Book
starts reading documents). The second ``const THEBE_JS_URL`` then throws "Identifier has already
been declared" in each reader's browser console. This extension removes exact duplicates (same
file or same inline body, same attributes) from the page's script list, in place.
"""

from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        attributes = getattr(script, "attributes", None) or {}
        # An inline script's filename is None in one registration and '' in the other.
        key = (getattr(script, "filename", str(script)) or "",
               tuple(sorted((k, str(v)) for k, v in attributes.items() if k != "priority")))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    # In place: this list is the builder's own, and later handlers (MathJax) append to it.
    scripts[:] = unique


def setup(app):
    # First in line: Sphinx stops calling html-page-context handlers at the first that returns
    # a template name, and the duplicates are already there before any handler runs.
    app.connect("html-page-context", _dedupe_scripts, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
