"""The pending file of a SQLite access log: where a request's AuditEvents are made durable
before its answer leaves, until they are sealed and stored in the log (``audit.py``).

One file per process beside the log (``evi.db-audit-pending-<uuid>``), held under an
exclusive ``flock`` for the process's life: a file whose lock can be taken belongs to a
process that is gone, and its records are recovered by the next process that opens the
log. A record is one ``write()`` of a request's entries; once ``write()`` has returned,
the bytes are the operating system's and survive a crash of the process (kill -9), as a
SQLite commit with ``synchronous = NORMAL`` does.

A record: 4 bytes length and 4 bytes CRC-32 of the payload (little endian), then the
payload, JSON ``[number, [[patient, recorded, content], ...]]``. Numbers start at 1 in
each file. A torn last record (the operating system crashed while it was written: its
request was never answered) fails its length or CRC and ends the file's reading.
"""

from __future__ import annotations

import fcntl
import glob
import os
import struct
import uuid
import zlib
from typing import Iterator, Sequence

import orjson

from fhir_server.storage.audit import AuditEntry

__all__ = ["PendingFile", "read_records", "orphans", "INFIX"]

#: between the log's path and a pending file's id
INFIX = "-pending-"
_HEAD = struct.Struct("<II")


class PendingFile:
    """This process's pending file, open for appending and locked."""

    def __init__(self, log_path: str):
        self.path = f"{log_path}{INFIX}{uuid.uuid4().hex}"
        self.name = os.path.basename(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
        #: the number of the last record written
        self.last = 0
        self.size = 0

    def write(self, entries: Sequence[AuditEntry]) -> int:
        """One record of ``entries`` (their contents JSON values), durable against a crash
        of the process when this returns; its number."""
        number = self.last + 1
        payload = orjson.dumps([number, entries], default=tuple)  # AuditEntry: a named tuple
        data = _HEAD.pack(len(payload), zlib.crc32(payload)) + payload
        written = os.write(self._fd, data)
        if written != len(data):  # a short write (a full disk): this record cannot be read back
            raise OSError(f"the access log's pending file took {written} of {len(data)} bytes")
        self.last, self.size = number, self.size + written
        return number

    def close(self, *, remove: bool) -> None:
        """``remove``: every record is stored in the log, the file is no longer needed."""
        if remove:
            os.unlink(self.path)
        os.close(self._fd)


def read_records(fd: int) -> Iterator[tuple[int, list[AuditEntry]]]:
    """The records of a pending file, in order, up to the first torn or damaged one."""
    with os.fdopen(os.dup(fd), "rb") as file:
        file.seek(0)
        data = file.read()
    at = 0
    while at + _HEAD.size <= len(data):
        length, crc = _HEAD.unpack_from(data, at)
        payload = data[at + _HEAD.size:at + _HEAD.size + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            return
        try:
            number, entries = orjson.loads(payload)
            yield number, [AuditEntry(*entry) for entry in entries]
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return
        at += _HEAD.size + length


def orphans(log_path: str, own: str | None) -> Iterator[tuple[str, int]]:
    """(path, an open descriptor holding its lock) of each pending file whose process is
    gone; the caller recovers it and closes the descriptor. A file another live process
    holds, or that another recovery holds, is passed by."""
    for path in sorted(glob.glob(glob.escape(log_path) + INFIX + "*")):
        if os.path.basename(path) == own:
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # recovered meanwhile by another process
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if not os.path.exists(path):  # recovered and removed between our open and our lock
            os.close(fd)
            continue
        yield path, fd
