"""``evi-fhir serve``: the server, in one process or several on one database."""

from __future__ import annotations

import argparse
import sys

import orjson

from fhir_server.cli.common import settings_of

__all__ = ["add_serve", "settings_environment"]


def _serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from fhir_server.app import create_app, uvicorn_options
    from fhir_server.security import unsafe_without_auth, with_token_secret

    settings = settings_of(args)
    refusal = unsafe_without_auth(settings, args.insecure_no_auth)
    if refusal:
        print(f"evi-fhir serve: {refusal}", file=sys.stderr)
        return 2
    if settings.auth == "smart":  # a bad setup stops here, before any process starts
        settings, made_up = with_token_secret(settings)
        if made_up:
            print("evi-fhir serve: no EVI_TOKEN_SECRET: access tokens are signed with a secret made up at this "
                  "start and do not survive a restart", file=sys.stderr)
    options = dict(
        host=settings.host, port=settings.port, log_level=args.log_level, access_log=args.access_log,
        **uvicorn_options(settings),
    )
    print(f"evi-fhir serving {settings.public_base} (storage {settings.storage}, auth {settings.auth}, "
          f"{settings.workers} process{'es' if settings.workers > 1 else ''})", file=sys.stderr)
    if settings.workers > 1 and ":memory:" in settings.storage:
        print("evi-fhir serve: --workers needs a shared database (a file or MongoDB), not sqlite://:memory:",
              file=sys.stderr)
        return 2
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    # several processes on one database: each builds its app from the same settings,
    # handed over as EVI_* variables (what a flag said wins, as in this process)
    os.environ.update(settings_environment(settings))
    uvicorn.run("fhir_server.app:create_app", factory=True, workers=settings.workers, **options)
    return 0


def settings_environment(settings) -> dict[str, str]:
    """``settings`` as the EVI_* variables that make ``Settings()`` equal to it."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        env[f"EVI_{name.upper()}"] = text
    return env


def add_serve(sub) -> argparse.ArgumentParser:
    serve = sub.add_parser("serve", help="start the FHIR server")
    serve.add_argument("--host", help="listen address (EVI_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (EVI_PORT, default 8080)")
    serve.add_argument("--storage", help="storage URL (EVI_STORAGE), e.g. sqlite:///var/lib/evi/evi.db")
    serve.add_argument("--base-url", help="pin the public base URL (EVI_BASE_URL); default: links follow each request's Host")
    serve.add_argument("--max-body-size", type=int, help="largest request body in bytes (EVI_MAX_BODY_SIZE)")
    serve.add_argument("--region", help="the region's configuration file (EVI_REGION_FILE), e.g. regions/kalmar.toml")
    serve.add_argument("--workers", type=int, help="server processes on the one database (EVI_WORKERS, default 1)")
    serve.add_argument("--trust-proxy", action="store_const", const=True,
                       help="believe Forwarded / X-Forwarded-* headers (EVI_TRUST_PROXY): only behind your own proxy")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    serve.set_defaults(func=_serve)
    return serve
