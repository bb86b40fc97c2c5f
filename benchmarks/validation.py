"""Cost of profile validation: an evi-referral ServiceRequest per second, base R4
validation only vs base + the evi-referral profile, as a plain validation loop and as
full in-process creates with EVI_ENFORCE_PROFILES off and on. A script that prints numbers.

    .venv/bin/python benchmarks/validation.py [--n 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
REGION = 'name = "benchmark"\nevi_unit = "Organization/evi-vgr"\n'


def _example() -> dict:
    for path in sorted((ROOT / "examples" / "valid").glob("ServiceRequest-*.json")):
        resource = json.loads(path.read_text())
        if any("evi-referral" in p for p in (resource.get("meta") or {}).get("profile", [])):
            return resource
    raise SystemExit("no evi-referral example in examples/valid")


def _rate(n: int, fn) -> float:
    fn()  # warm-up: compiles the profile once
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    from fhir_server.app import build_runtime
    from fhir_server.conformance.validator import Validator, local_value_sets
    from fhir_server.conformance import ig_directory, ig_resources
    from fhir_server.engine import RequestContext, create
    from fhir_server.model import parse_json, validate_resource
    from fhir_server.settings import Settings

    referral = _example()
    body = orjson.dumps({k: v for k, v in referral.items() if k != "id"})
    guide = ig_resources(ig_directory())
    validator = Validator([r for r in guide if r.get("resourceType") == "StructureDefinition"], local_value_sets(guide))

    base_only = _rate(n, lambda: validate_resource(parse_json(body)))
    with_profile = _rate(n, lambda: validator.validate(validate_resource(parse_json(body))))
    print(f"machine: nproc={os.cpu_count()} CPython {platform.python_version()}; n={n}; resource: {referral['id']}")
    print(f"validate  base R4 only        {base_only:8.0f} /s")
    print(f"validate  base + evi-referral {with_profile:8.0f} /s   ({with_profile / base_only:.2f}x)")
    ctx = RequestContext(base_url="http://127.0.0.1:8080/fhir")
    rates = {}
    for enforce in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            # a referral starts an intake, which needs the region's EVI unit: named in a region file
            region = Path(tmp) / "region.toml"
            region.write_text(REGION)
            runtime = build_runtime(Settings(storage=f"sqlite://{tmp}/v.db", enforce_profiles=enforce,
                                             region_file=str(region)))

            def one():
                with runtime.work(ctx, write=True) as work:
                    create(work, "ServiceRequest", parse_json(body))

            rates[enforce] = _rate(n, one)
            runtime.store.close()
    print(f"create    enforcement off     {rates[False]:8.0f} /s")
    print(f"create    enforcement on      {rates[True]:8.0f} /s   ({rates[True] / rates[False]:.2f}x)")


if __name__ == "__main__":
    main()
