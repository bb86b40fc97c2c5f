"""Worker threads for requests: the event loop never runs store work, validation or
search itself.

Readers and writers have limiters of their own, so requests queueing for SQLite's one
write lock never take the threads that reads need. A request waits for a worker no
longer than its time budget (``Budget.check_time`` at the start of its unit of work).
SQLite and pymongo release the GIL while they wait on the database, so reads run in
parallel with a writer's commit; pure-Python work (validation, building a large
answer) shares the interpreter with the loop in short slices instead of holding it.
"""

from __future__ import annotations

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.requests import Request

__all__ = ["Workers", "workers_of"]


class Workers:
    def __init__(self, readers: int, writers: int):
        self._sizes = {False: readers, True: writers}
        self._limiters: dict[bool, CapacityLimiter] = {}

    def _limiter(self, writes: bool) -> CapacityLimiter:
        # made on first use: a limiter belongs to the event loop that runs the server
        found = self._limiters.get(writes)
        if found is None:
            found = self._limiters[writes] = CapacityLimiter(self._sizes[writes])
        return found

    async def run(self, writes: bool, fn, *args):
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter(writes))


def workers_of(request: Request) -> Workers:
    return request.app.state.workers
