"""Prices written with separators: a decimal comma ("1.228,10") or thousands commas ("1,228.10").

Spreadsheets in much of Europe write a decimal comma (and use ';' between
fields); many US exports quote prices with thousands separators. Both are read
when the column itself says which it is, from its first rows:

- decimal comma: every price fits ``1.234,56`` / ``1234,56`` / ``1234``, some
  have a comma, and some comma is not followed by exactly three digits or some
  price has a '.' thousands group;
- thousands commas: every price fits ``1,234.56`` / ``1234.56``, some have a
  comma, and some also have a decimal point or two comma groups.

``1,228`` alone could be either (1228 or 1.228), so such a column is left as
text and refused as non-numeric, as before. Once a column's style is chosen,
a later price that does not fit it is refused with its line, never re-read.
"""

from __future__ import annotations

import re

import pandas as pd

DECIMAL_COMMA = "decimal-comma"
THOUSANDS_COMMA = "thousands-comma"

_PATTERNS = {
    DECIMAL_COMMA: re.compile(r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?$"),
    THOUSANDS_COMMA: re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$"),
}
# What shows the style beyond doubt (see the module docstring).
_EVIDENCE = {
    DECIMAL_COMMA: re.compile(r",(?:\d{1,2}|\d{4,})$|\.\d{3}"),
    THOUSANDS_COMMA: re.compile(r",\d{3}[.,]"),
}


def number_style(cells: pd.Series, missing_markers: frozenset[str]) -> str | None:
    """The separator style of a text price column's sample, or None for plain numbers.

    Examples
    --------
    >>> none = frozenset({""})
    >>> number_style(pd.Series(["1.228,10", "1.230,5"]), none)
    'decimal-comma'
    >>> number_style(pd.Series(["1,228.10", "998.50"]), none)
    'thousands-comma'
    >>> number_style(pd.Series(["1,228", "1,230"]), none) is None
    True
    """
    if not (pd.api.types.is_object_dtype(cells) or pd.api.types.is_string_dtype(cells)):
        return None
    tokens = cells.astype(str).str.strip()
    tokens = tokens[~tokens.str.lower().isin(missing_markers)]
    if tokens.empty or not tokens.str.contains(",", regex=False).any():
        return None
    for style, pattern in _PATTERNS.items():
        if tokens.str.match(pattern).all() and tokens.str.contains(_EVIDENCE[style]).any():
            return style
    return None


def to_plain(tokens: pd.Series, style: str) -> pd.Series:
    """Stripped price cells rewritten as plain numbers; cells that do not fit ``style`` become
    'x' (non-numeric, so the reader refuses them with their line)."""
    fits = tokens.str.match(_PATTERNS[style])
    if style == DECIMAL_COMMA:
        plain = tokens.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        plain = tokens.str.replace(",", "", regex=False)
    return plain.where(fits, "x")
