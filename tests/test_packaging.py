"""The wheel must carry every subpackage, the generated spec tables and the guide."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "fhir_server").rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    assert "fhir_server.ig" in listed  # profiles/ installed as data


def test_product_search_parameters_are_loaded(tmp_path):
    from fhir_server.conformance import ig_directory, ig_search_parameters

    codes = {(d.base[0], d.code) for d in ig_search_parameters(ig_directory())}
    assert {("ServiceRequest", "contact-channel"), ("Patient", "placement-municipality"), ("Task", "due")} <= codes
    assert ig_search_parameters(ig_directory(str(tmp_path))) == []
