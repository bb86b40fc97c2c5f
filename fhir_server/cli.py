"""The ``evi-fhir`` command: serve, load."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

__all__ = ["main"]


def _settings(args: argparse.Namespace):
    from fhir_server.settings import Settings

    overrides = {
        "storage": getattr(args, "storage", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "base_url": getattr(args, "base_url", None),
        "max_body_size": getattr(args, "max_body_size", None),
    }
    # flags win over EVI_* environment variables, which win over defaults
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fhir_server.app import create_app

    settings = _settings(args)
    app = create_app(settings)
    print(f"evi-fhir serving {settings.public_base} (storage {settings.storage})", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=args.access_log)
    return 0


class _Progress:
    """A one-line progress bar on stderr (no dependency needed for this)."""

    def __init__(self, total: int):
        self.total, self.done, self.started = max(total, 1), 0, time.monotonic()

    def step(self, label: str) -> None:
        self.done += 1
        width = 30
        filled = int(width * self.done / self.total)
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {rate:6.1f} files/s {label[:40]:<40}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def _as_bundle(data: dict) -> dict:
    """A transaction Bundle for one file: bundles as they are, resources by PUT (id kept) or POST."""
    if data.get("resourceType") == "Bundle" and data.get("type") in ("transaction", "batch"):
        return data
    if data.get("resourceType") == "Bundle":
        resources = [e["resource"] for e in data.get("entry") or [] if isinstance(e, dict) and "resource" in e]
    else:
        resources = [data]
    entries = []
    for r in resources:
        if r.get("id"):
            entries.append({"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}})
        else:
            entries.append({"resource": r, "request": {"method": "POST", "url": r.get("resourceType", "")}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _load(args: argparse.Namespace) -> int:
    from fhir_server.app import build_runtime
    from fhir_server.engine import RequestContext, process_bundle
    from fhir_server.errors import FhirError

    root = Path(args.path)
    if not root.exists():
        print(f"evi-fhir load: {root} does not exist", file=sys.stderr)
        return 2
    files = sorted(p for p in root.rglob("*.json") if p.is_file()) if root.is_dir() else [root]
    settings = _settings(args)
    runtime = build_runtime(settings)
    ctx = RequestContext(base_url=settings.public_base)
    progress = _Progress(len(files))
    failures, entries = [], 0
    try:
        for path in files:
            try:
                data = orjson.loads(path.read_bytes())
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                result = process_bundle(runtime, ctx, _as_bundle(data), return_pref="minimal")
                entries += len(result.get("entry", []))
            except (FhirError, ValueError, orjson.JSONDecodeError) as exc:
                failures.append((path, getattr(exc, "message", str(exc))))
            progress.step(path.name)
    finally:
        progress.close()
        runtime.store.close()
    print(f"loaded {len(files) - len(failures)} of {len(files)} files ({entries} entries)", file=sys.stderr)
    for path, message in failures:
        print(f"  failed {path}: {message}", file=sys.stderr)
    return 1 if failures else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evi-fhir", description="FHIR R4 server for En väg in (EVI)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the FHIR server")
    serve.add_argument("--host", help="listen address (EVI_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (EVI_PORT, default 8080)")
    serve.add_argument("--storage", help="storage URL (EVI_STORAGE), e.g. sqlite:///var/lib/evi/evi.db")
    serve.add_argument("--base-url", help="public base URL (EVI_BASE_URL), default http://HOST:PORT/fhir")
    serve.add_argument("--max-body-size", type=int, help="largest request body in bytes (EVI_MAX_BODY_SIZE)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    serve.set_defaults(func=_serve)

    load = sub.add_parser("load", help="load a file or folder of resources/Bundles (a transaction per file)")
    load.add_argument("path")
    load.add_argument("--storage", help="storage URL (EVI_STORAGE)")
    load.set_defaults(func=_load)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
