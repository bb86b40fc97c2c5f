"""The product's examples against the product's profiles, with the profile validator.

* ``examples/valid/*`` and the transaction Bundles of ``examples/scenarios/*`` validate
  clean (no error, no warning) against the profiles they claim and their base types;
* each ``examples/invalid/<name>.json`` fails with exactly the errors its
  ``<name>.expected.json`` lists: same FHIRPath location and constraint key, and a
  message containing the expected phrase -- whether the profile is claimed in
  ``meta.profile`` or handed to ``validate`` explicitly;
* the validator keeps up with writes: throughput on an evi-referral is measured and
  printed (``pytest -s``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fhir_server.conformance import ig_directory, ig_resources
from fhir_server.conformance.validator import Validator, local_value_sets

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
REFERRAL = EXAMPLES / "valid" / "ServiceRequest-referral-general-ella.json"


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _examples(folder: str, expected: bool = False) -> list[Path]:
    return sorted(p for p in (EXAMPLES / folder).glob("*.json") if p.name.endswith(".expected.json") == expected)


@pytest.fixture(scope="module")
def validator() -> Validator:
    guide = ig_resources(ig_directory())
    assert guide, "the implementation guide (profiles/) was not found"
    return Validator(guide, local_value_sets(guide))


def _problems(issues) -> list[str]:
    return [f"{i.severity} {i.expression} [{i.constraint}]: {i.message}" for i in issues
            if i.severity in ("error", "warning")]


@pytest.mark.parametrize("path", _examples("valid"), ids=lambda p: p.name)
def test_valid_example_is_clean(validator, path):
    resource = _read(path)
    for url in resource.get("meta", {}).get("profile", []):
        assert validator.known_profile(url), url
    assert _problems(validator.validate(resource)) == []


@pytest.mark.parametrize("path", _examples("scenarios"), ids=lambda p: p.name)
def test_scenario_bundle_is_clean(validator, path):
    bundle = _read(path)
    assert _problems(validator.validate(bundle)) == []
    claimed = [e["resource"] for e in bundle["entry"] if e["resource"].get("meta", {}).get("profile")]
    assert claimed, "a scenario should exercise the profiles"


@pytest.mark.parametrize("path", _examples("invalid"), ids=lambda p: p.stem)
def test_invalid_example_fails_with_exactly_its_expected_errors(validator, path):
    resource = _read(path)
    expected = _read(path.with_name(f"{path.stem}.expected.json"))
    for issues in (validator.validate(resource), validator.validate(resource, [expected["profile"]])):
        errors = [i for i in issues if i.severity == "error"]
        assert {(i.expression, i.constraint) for i in errors} == \
            {(e["expression"], e["constraint"]) for e in expected["errors"]}, _problems(issues)
        for e in expected["errors"]:
            messages = [i.message for i in errors if (i.expression, i.constraint) == (e["expression"], e["constraint"])]
            assert any(e["message_contains"].lower() in m.lower() for m in messages), (e, messages)
            if e["constraint"]:
                assert all(m.startswith(e["constraint"] + ": ") for m in messages)


def test_validation_throughput_on_a_referral(validator):
    referral = _read(REFERRAL)
    assert _problems(validator.validate(referral)) == []
    rounds = 300
    start = time.perf_counter()
    for _ in range(rounds):
        validator.validate(referral)
    rate = rounds / (time.perf_counter() - start)
    print(f"\nprofile validation of an evi-referral: {rate:.0f} resources/s")
    assert rate > 100  # a floor far below the measured rate: catches only gross regressions
