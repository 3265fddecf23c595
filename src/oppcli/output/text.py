"""Untrusted text made safe: shown literally to people, and kept from running in a spreadsheet.

- visible() and literal(): control characters, DEL, C1 controls, invisible format characters
  (Unicode Cf) and line separators are written as escapes, so a name or a message line cannot
  move the cursor, recolour the terminal or hide what follows.
- neutralise() and unneutralise(): a CSV text cell starting with = + - @ (or tab/CR) gets a
  leading ' so a spreadsheet does not run it; import takes exactly that ' off again.
"""

from __future__ import annotations

from typing import Any

_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
# The first characters of a cell that neutralise() may change: the dangerous ones and the quote.
DANGER_FIRST = frozenset(c[0] for c in _DANGEROUS) | {"'"}


# ---- text for people ---------------------------------------------------------------------
# Shown escaped in every human-facing output: control characters (C0, DEL, C1), invisible
# format characters (Cf: bidi overrides and isolates, zero-width characters, the BOM, ...),
# line and paragraph separators and lone surrogates.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def visible(text: str) -> str:
    """`text` as a person should see it: literally. Each character that a terminal would act
    on or not show (see _ESCAPED_CATEGORIES) is written as the escape Python's repr() uses,
    the one error messages show (which quote names with !r): `\\x1b`, `\\n`, `\\x9b`,
    `\\u202e`, `\\U000e0001`. Everything else, a backslash included, is left as it is."""
    if text.isprintable():  # the common case; every escaped character is unprintable
        return text
    from unicodedata import category

    return "".join(repr(c)[1:-1] if not c.isprintable() and category(c) in _ESCAPED_CATEGORIES
                   else c for c in text)


def literal(text: str) -> str:
    """visible() for a whole message line (cheap when there is nothing to escape)."""
    return text if text.isprintable() else visible(text)


# ---- CSV cells a spreadsheet would run ----------------------------------------------------
def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run gets a leading '; so does one that already starts
    with quotes before such a character, so that import can take exactly one off again."""
    if isinstance(value, str) and value[:1] in DANGER_FIRST \
            and value.lstrip("'").startswith(_DANGEROUS):
        return "'" + value
    return value


def unneutralise(text: str) -> str:
    """What neutralise() took: import reads back the text that was exported."""
    if text.startswith("'") and text.lstrip("'").startswith(_DANGEROUS):
        return text[1:]
    return text
