"""Text normalisation for string search and ``:text``: case- and accent-insensitive
(R4 search.html#string: "the search is case- and accent-insensitive")."""

from __future__ import annotations

import unicodedata

__all__ = ["normalize"]


def normalize(text: str) -> str:
    """Casefold and strip combining marks: "Åsa Öberg" -> "asa oberg"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
