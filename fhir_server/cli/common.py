"""What the ``evi-fhir`` commands share: their settings (flags over ``EVI_*``) and a
progress bar."""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["settings_of", "Progress"]


def settings_of(args: argparse.Namespace):
    from fhir_server.settings import Settings

    overrides = {
        "storage": getattr(args, "storage", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "base_url": getattr(args, "base_url", None),
        "max_body_size": getattr(args, "max_body_size", None),
        "region_file": getattr(args, "region", None),
        "workers": getattr(args, "workers", None),
        "trust_proxy": getattr(args, "trust_proxy", None),
        "auth": getattr(args, "auth", None),
        "clients_file": getattr(args, "clients", None),
    }
    # flags win over EVI_* environment variables, which win over defaults
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


class Progress:
    """A one-line progress bar on stderr (no dependency needed for this)."""

    def __init__(self, total: int, unit: str = "files"):
        self.total, self.done, self.started, self.unit = max(total, 1), 0, time.monotonic(), unit

    def step(self, label: str) -> None:
        self.update(self.done + 1, label)

    def update(self, done: int, label: str) -> None:
        self.done = done
        width = 30
        filled = min(width, int(width * self.done / self.total))
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {rate:6.1f} "
                         f"{self.unit}/s {label[:40]:<40}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
