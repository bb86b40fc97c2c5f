"""Narrative XHTML checks (R4 narrative.html#xhtml): a ``div`` in the XHTML namespace
holding only the basic HTML formatting elements and attributes -- no scripts, forms,
event handlers or ``javascript:`` links (what the FHIRPath function ``htmlChecks()``
of txt-1 stands for), with some non-whitespace content (txt-2)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import lru_cache

__all__ = ["xhtml_problems", "html_checks", "has_content"]

XHTML_NS = "{http://www.w3.org/1999/xhtml}"
ELEMENTS = frozenset("""p br div h1 h2 h3 h4 h5 h6 a span b em i strong small big tt dfn q var abbr acronym
cite blockquote hr address bdo kbd sub sup ul ol li dl dt dd pre table caption colgroup col thead tr tfoot
tbody th td code samp img map area""".split())
ATTRIBUTES = frozenset("""title style class id lang dir accesskey tabindex span width align valign char charoff
abbr axis headers scope rowspan colspan border cellpadding cellspacing frame rules summary""".split())
ELEMENT_ATTRIBUTES = {"a": {"href", "name"}, "img": {"src", "alt", "height", "width", "usemap", "ismap"},
                      "area": {"shape", "coords", "href", "alt", "nohref"}, "map": {"name"},
                      "q": {"cite"}, "blockquote": {"cite"}, "ol": {"start", "type"}, "ul": {"type"},
                      "li": {"value", "type"}, "col": {"span", "width"}, "colgroup": {"span", "width"},
                      "td": {"nowrap"}, "th": {"nowrap"}, "table": {"width"}}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@lru_cache(maxsize=256)
def xhtml_problems(div: str) -> tuple[str, ...]:
    """What is wrong with a Narrative.div value (empty: nothing)."""
    try:
        root = ET.fromstring(div)
    except ET.ParseError as exc:
        return (f"The XHTML is not well formed: {exc}",)
    problems = []
    if root.tag != XHTML_NS + "div":
        if root.tag.rpartition("}")[2] == "div":
            problems.append("Wrong namespace on the XHTML ('" + root.tag.partition("}")[0].lstrip("{")
                            + "', should be 'http://www.w3.org/1999/xhtml')")
        else:
            problems.append(f"Wrong name on the XHTML ('{root.tag.rpartition('}')[2]}') - must start with div")
    for el in root.iter():
        tag = el.tag if isinstance(el.tag, str) else ""
        name = tag.rpartition("}")[2]
        if tag.startswith("{") and not tag.startswith(XHTML_NS):
            problems.append(f"Wrong namespace on the XHTML ('{name}')")
            continue
        if name not in ELEMENTS:
            problems.append(f"Invalid element name in the XHTML ('{name}')")
            continue
        allowed = ELEMENT_ATTRIBUTES.get(name, set())
        for attr, value in el.attrib.items():
            if attr == XML_LANG:
                continue
            if attr not in ATTRIBUTES and attr not in allowed:
                problems.append(f"Invalid attribute name in the XHTML ('{attr}' on '{name}')")
            elif attr in ("href", "src") and value.strip().lower().startswith(("javascript:", "vbscript:")):
                problems.append(f"Invalid URL in the XHTML ('{attr}' on '{name}')")
    return tuple(problems)


def html_checks(div) -> bool:
    return isinstance(div, str) and not xhtml_problems(div)


def has_content(div) -> bool:
    """txt-2: some non-whitespace content (text, or an image)."""
    if not isinstance(div, str):
        return False
    try:
        root = ET.fromstring(div)
    except ET.ParseError:
        return bool(div.strip())
    return any((t or "").strip() for t in root.itertext()) or any(
        (e.tag if isinstance(e.tag, str) else "").endswith("img") for e in root.iter())
