"""The style sheet's colours pass WCAG 2.1 AA (1.4.3 text 4.5:1, 1.4.11 graphics and
focus indicators 3:1), computed with the WCAG relative-luminance formula."""

import re
from importlib import resources

import pytest

CSS = (resources.files("fhir_server.ui") / "static" / "evi.css").read_text()
VARS = dict(re.findall(r"--([a-z0-9-]+):\s*(#[0-9a-fA-F]{6})", CSS))


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_the_formula_matches_known_values():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#767676", "#ffffff"), 2) == 4.54


@pytest.mark.parametrize("fg, bg", [
    ("text", "bg"), ("muted", "bg"), ("link", "bg"), ("head-text", "head-bg"),
    ("text", "late-bg"), ("link", "late-bg"), ("bg", "late-mark"),
])
def test_text_colours_pass_aa(fg, bg):
    assert contrast(VARS[fg], VARS[bg]) >= 4.5


@pytest.mark.parametrize("fg, bg", [("bar", "bg"), ("bar2", "bg"), ("line", "bg"), ("text", "focus")])
def test_graphics_and_focus_pass_aa(fg, bg):
    assert contrast(VARS[fg], VARS[bg]) >= 3.0
