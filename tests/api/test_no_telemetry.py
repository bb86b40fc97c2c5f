"""FastAPI's native OpenTelemetry spans stay off (app.py): a span carries the request's
URL and query, and a search's query may hold a child's personnummer. Checked with a
tracer provider that records every tracer asked for, in a process of its own (the
provider is global and can be set only once)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_configured_tracer_provider_gets_no_span_from_a_request(tmp_path):
    script = textwrap.dedent(f"""
        from opentelemetry import trace
        from opentelemetry.trace import NoOpTracer, TracerProvider

        asked = []

        class Recording(TracerProvider):
            def get_tracer(self, *args, **kwargs):
                asked.append(args)
                return NoOpTracer()

        trace.set_tracer_provider(Recording())

        from fastapi.testclient import TestClient
        from fhir_server.app import create_app
        from fhir_server.settings import Settings

        app = create_app(Settings(storage="sqlite:///{tmp_path}/evi.db"))
        with TestClient(app) as client:
            assert client.get("/fhir/Patient", params={{"identifier": "http://electronichealth.se/identifier/personnummer|201203040058"}}).status_code == 200
        print("tracers", len(asked))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("tracers 0"), done.stdout
