"""The region file: the three regions' examples load; mistakes are named."""

from pathlib import Path

import pytest

from fhir_server.settings import Settings
from fhir_server.app import region_of
from fhir_server.cli import main
from fhir_server.workflow import Region, RegionError, load_region

REGIONS = Path(__file__).resolve().parents[2] / "regions"


@pytest.mark.parametrize("name", ["vgr", "kalmar", "vasterbotten"])
def test_the_three_regions_load(name):
    region = load_region(REGIONS / f"{name}.toml")
    assert region.evi_unit.startswith("urn:oid:1.2.752.29.4.19|SE")
    assert region.bup_acute_unit.startswith("urn:oid:1.2.752.29.4.19|SE")
    assert region.assessment_deadline_days == 3
    assert region.age_range == (0, 17)
    assert str(region.zone) == "Europe/Stockholm"


def test_defaults():
    region = Region()
    assert (region.assessment_deadline_days, region.age_range, region.default_team_capacity) == (3, (0, 17), 10)
    assert region.evi_unit is None and region.upstream_fhir_url is None


@pytest.mark.parametrize("text,message", [
    ("evi_unti = 'Organization/x'\n", "unknown keys evi_unti"),
    ("age_range = [17, 0]\n", "age_range"),
    ("age_range = 17\n", "age_range"),
    ("assessment_deadline_days = -1\n", "assessment_deadline_days"),
    ("assessment_deadline_days = 'three'\n", "assessment_deadline_days"),
    ("timezone = 'Mars/Olympus'\n", "unknown timezone"),
    ("evi_unit = 3\n", "evi_unit must be a string"),
    ("evi_unit = \n", "not valid TOML"),
    ("[[required_profiles]]\nprofile = 'x'\n", "required_profiles"),
])
def test_mistakes_are_named(tmp_path, text, message):
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(RegionError, match=message):
        load_region(path)


def test_missing_file(tmp_path):
    with pytest.raises(RegionError, match="cannot read"):
        load_region(tmp_path / "nope.toml")


def test_required_profiles_from_the_file(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[[required_profiles]]\ntype = "ServiceRequest"\nprofile = "http://x/p"\nperformer = "Organization/e"\n')
    [rule] = load_region(path).required_profiles
    assert (rule.type, rule.profile, rule.performer) == ("ServiceRequest", "http://x/p", "Organization/e")


def test_the_environment_upstream_url_wins(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('upstream_fhir_url = "http://file/fhir"\n')
    assert region_of(Settings(region_file=str(path))).upstream_fhir_url == "http://file/fhir"
    assert region_of(Settings(region_file=str(path), upstream_fhir_url="http://env/fhir")).upstream_fhir_url == "http://env/fhir"


def test_serve_refuses_a_bad_region_file(tmp_path, capsys):
    path = tmp_path / "r.toml"
    path.write_text("age_range = [9, 1]\n")
    assert main(["serve", "--region", str(path), "--storage", "sqlite://:memory:"]) == 2
    assert "age_range" in capsys.readouterr().err
