"""The NDJSON files of one export job (Bulk Data IG: "Each file SHALL contain resources of
only one type"): ``{Type}.ndjson`` per resource type, ``error.ndjson`` for the
OperationOutcomes of the manifest's ``error`` list and ``deleted.ndjson`` for the
transaction Bundles of its ``deleted`` list, in the job's own directory.

Files only grow, by whole lines, and their sizes and line counts are part of the job's
saved state. A job resumed after its process died first cuts each file back to the size
of the last save (what was written after it is written again), so no line appears twice;
a file shorter than its saved size (the machine itself crashed before the disk had it)
cannot be resumed: ``OutputLost``, and the job starts over.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import BinaryIO

__all__ = ["OutputFiles", "OutputLost", "ERROR_FILE", "DELETED_FILE", "file_name", "is_file_name", "remove_directory"]

ERROR_FILE = "error.ndjson"
DELETED_FILE = "deleted.ndjson"
#: a resource type's file, the error file or the deleted file: nothing else is ever served
_NAME = re.compile(r"^(?:[A-Z][A-Za-z]{1,63}|error|deleted)\.ndjson$")


class OutputLost(Exception):
    """A file is shorter than the job's saved state says: it cannot be resumed."""


def file_name(resource_type: str) -> str:
    return f"{resource_type}.ndjson"


def is_file_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def remove_directory(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


class OutputFiles:
    def __init__(self, directory: Path, sizes: dict[str, list[int]] | None = None):
        """``sizes``: file name -> [bytes, lines] as last saved (a resumed job); files are
        cut back to them, and export files the state does not name are removed."""
        self.directory = directory
        self._sizes: dict[str, list[int]] = {k: list(v) for k, v in (sizes or {}).items()}
        self._open: dict[str, BinaryIO] = {}
        directory.mkdir(parents=True, exist_ok=True)
        for path in directory.iterdir():  # an export's own files only: the directory may be an operator's
            if is_file_name(path.name) and path.name not in self._sizes:
                path.unlink(missing_ok=True)
        for name, (size, _) in self._sizes.items():
            if size == 0:
                continue
            path = directory / name
            actual = path.stat().st_size if path.exists() else -1
            if actual < size:
                raise OutputLost(f"{name} holds {max(actual, 0)} bytes, the saved state says {size}")
            if actual > size:
                os.truncate(path, size)

    def append(self, name: str, lines: list[bytes]) -> None:
        """Whole lines (each ends in a newline) at the end of ``name``."""
        if not lines:
            return
        handle = self._open.get(name)
        if handle is None:
            handle = self._open[name] = open(self.directory / name, "ab")
        data = b"".join(lines)
        handle.write(data)
        size = self._sizes.setdefault(name, [0, 0])
        size[0] += len(data)
        size[1] += len(lines)

    def flush(self) -> None:
        """To the operating system: a process that dies after this loses nothing written."""
        for handle in self._open.values():
            handle.flush()

    def sizes(self) -> dict[str, list[int]]:
        return {k: list(v) for k, v in self._sizes.items()}

    def close(self) -> None:
        for handle in self._open.values():
            handle.close()
        self._open.clear()
