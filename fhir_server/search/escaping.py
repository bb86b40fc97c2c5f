"""Search value escaping (R4 search.html#escaping): ``\\,`` ``\\|`` ``\\$`` ``\\\\``.

Values are split on unescaped separators first (``,`` between OR-ed values, ``|``
inside tokens and quantities, ``$`` between composite parts), then unescaped.
"""

from __future__ import annotations

__all__ = ["split_unescaped", "unescape"]


def split_unescaped(raw: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not escaped with a backslash (escapes are kept)."""
    parts, buf, i = [], "", 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            buf += raw[i : i + 2]
            i += 2
            continue
        if ch == sep:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
        i += 1
    parts.append(buf)
    return parts


def unescape(text: str) -> str:
    return text.replace("\\|", "|").replace("\\,", ",").replace("\\$", "$").replace("\\\\", "\\")
