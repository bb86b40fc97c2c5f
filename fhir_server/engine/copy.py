"""Copy every resource with its full history from one store to another
(``evi-fhir copy``: SQLite -> MongoDB when a region outgrows one machine).

Versions are copied in write order in batches, each batch one unit of work on the
target. The copy is resumable: a version the target already holds is skipped,
and the cursor of the last copied batch is kept in a state file. Index entries
are rebuilt on the target from the current version of each resource.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import orjson

from fhir_server.search.extract import extract_index
from fhir_server.search.index import IndexSet
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.base import Store

__all__ = ["CopyReport", "copy_store"]


@dataclass(frozen=True)
class CopyReport:
    copied: int
    skipped: int
    source: dict[str, tuple[int, int]]
    target: dict[str, tuple[int, int]]

    @property
    def verified(self) -> bool:
        """Both stores hold the same number of current resources and versions per type."""
        return self.source == self.target


def copy_store(
    source: Store,
    target: Store,
    registry: SearchRegistry,
    base_url: str,
    *,
    batch: int = 500,
    state_file: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CopyReport:
    with source.unit_of_work(write=False) as uow:
        stats = uow.statistics()
    total = sum(v for _, v in stats.values())
    cursor = _read_state(state_file)
    with target.unit_of_work(write=False) as uow:
        # a fresh copy into an empty store need not look for what is already there
        resuming = cursor is not None or bool(uow.statistics())
    copied = skipped = 0
    while True:
        with source.unit_of_work(write=False) as uow:
            rows = uow.versions_since(cursor, batch)
            latest = {}
            for _, v in rows:
                current = uow.current(v.resource_type, v.id)
                latest[(v.resource_type, v.id)] = current.version_id if current else None
        if not rows:
            break
        with target.unit_of_work(write=True) as tw:
            for _, v in rows:
                if resuming and tw.version(v.resource_type, v.id, v.version_id) is not None:
                    skipped += 1
                    continue
                index = None
                if not v.deleted:
                    # only the version that is current in the source needs index entries
                    is_current = latest[(v.resource_type, v.id)] == v.version_id
                    index = extract_index(registry, orjson.loads(v.body), base_url) if is_current else IndexSet()
                tw.write(v, index)
                copied += 1
        cursor = rows[-1][0]
        _write_state(state_file, cursor)
        if progress:
            progress(copied + skipped, total)
    with target.unit_of_work(write=False) as uow:
        target_stats = uow.statistics()
    return CopyReport(copied, skipped, stats, target_stats)


def _read_state(state_file: Path | None) -> int | None:
    if state_file is None or not state_file.exists():
        return None
    return json.loads(state_file.read_text()).get("cursor")


def _write_state(state_file: Path | None, cursor: int) -> None:
    if state_file is not None:
        state_file.write_text(json.dumps({"cursor": cursor}))
