"""The HTTP access log without query strings: a search names what it looks for, and that
may be a child's personnummer (``Patient?identifier=...|191212121212``), which has no
place in an operator's log (the PDL access log records every access, with its query,
where only ``admin`` reads it: docs/audit.md).

uvicorn's access logger writes ``client - "METHOD path?query HTTP/x" status``; the filter
keeps the path and puts ``?…`` where the query was. Installed on the ``uvicorn.access``
logger when the app is made (each ``--workers`` process makes its own), and a filter
survives uvicorn's logging configuration, which replaces handlers but not filters.
"""

from __future__ import annotations

import logging

__all__ = ["QueryStringFilter", "install_access_log_filter"]

#: position of the request target in uvicorn's access-log arguments
_TARGET = 2


class QueryStringFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > _TARGET and isinstance(args[_TARGET], str):
            path, question, _ = args[_TARGET].partition("?")
            if question:
                record.args = (*args[:_TARGET], path + "?…", *args[_TARGET + 1:])
        return True


def install_access_log_filter(logger_name: str = "uvicorn.access") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, QueryStringFilter) for f in logger.filters):
        logger.addFilter(QueryStringFilter())
