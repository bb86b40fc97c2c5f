"""Worker threads for requests: the event loop never runs store work, validation or
search itself.

Readers and writers have thread pools of their own, so requests queueing for SQLite's
one write lock never take the threads that reads need; a pool's size bounds how many
of its requests run at once, the rest wait in its queue (no thread each). A request
waits for a worker no longer than its time budget (``Budget.check_time`` at the start
of its unit of work). SQLite and pymongo release the GIL while they wait on the
database, so reads run in parallel with a writer's commit; pure-Python work
(validation, building a large answer) shares the interpreter with the loop in short
slices instead of holding it.

Plain ``concurrent.futures`` pools with ``loop.run_in_executor``: anyio's
``to_thread`` with a CapacityLimiter cost several times more per request.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from starlette.requests import Request

__all__ = ["Workers", "workers_of"]


class Workers:
    def __init__(self, readers: int, writers: int):
        self._pools = {
            False: ThreadPoolExecutor(readers, thread_name_prefix="evi-read"),
            True: ThreadPoolExecutor(writers, thread_name_prefix="evi-write"),
        }

    async def run(self, writes: bool, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pools[writes], fn, *args)

    def shutdown(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


def workers_of(request: Request) -> Workers:
    return request.app.state.workers
