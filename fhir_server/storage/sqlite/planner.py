"""How a search runs on SQLite: which condition drives it, and how rows come in order.

``compile.py`` turns each AND-ed condition into a ``Part`` with two forms: a *probe* of one
resource (an EXISTS through the index table's owner index) and, for conditions on one
index table, a *driver* that lists matching rids in the table's lookup order. SQLite left
to itself turned every condition into an ``IN`` list and let the first drive: the intake
worklist's ``code=intake`` list held every Task (issue 16). Here:

- **Selectivity.** Each candidate driver is counted up to ``PROBE_CAP`` rows (a bounded
  count costs at most that many index rows); the smallest drives, ties broken by a prior
  (one reference target or one system-qualified code before a date range or a bare
  code). The other conditions become probes of each driven row. Rows are read through a
  streaming ``DISTINCT`` so the query stops as soon as its ``LIMIT`` is met.
- **Order by walking an index.** When no condition is small (every driver reached the
  cap), a search sorted by one date, by ``_lastUpdated`` or ``_id`` (or not sorted at
  all: type and id) reads the sort's own index in order and probes each row, stopping
  when the page is full, instead of sorting every match in a temporary B-tree. A date
  sort uses the resource's first value in sort order (the largest ``high`` descending,
  the smallest ``low`` ascending: R4 search.html#_sort) and only that row of each
  resource; resources without a value follow, by type and id, as in the sorted form.
- **Keyset cursors.** Every row comes with its position ``(phase, value, type, id)``;
  a later page starts after the cursor of the page before (``after``) instead of
  counting an ``OFFSET`` from the start, so deep pages cost what the first does. The
  position is the same in both forms, so a cursor made by one form is honoured by the
  other. ``high_water`` (the largest rid when the search started) leaves out resources
  created since, so a search's pages do not shift under it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.search.plan import SearchPlan, SortKey
from fhir_server.storage.sqlite.combos import NO_SORT
from fhir_server.storage.sqlite.compile import Part, compile_order
from fhir_server.storage.sqlite.values import Sql, kind

__all__ = ["Planned", "PROBE_CAP", "plan_sql"]

#: rows a bounded count reads at most when choosing the driver
PROBE_CAP = 5000
#: a page reads a sort's index in order only when it needs at most this many rows (and
#: no condition is small): walking for 2,000 rows of a sparse filter read every Task
WALK_NEED = 500


@dataclass
class Walk:
    """Reading a sort's index in order: the SQL pieces that differ by the sort."""

    #: FROM clause (``s`` is the walked index row when there is one)
    source: str
    source_args: list
    #: the position value of a row, or None (the order is type, id only)
    value: str | None
    descending: bool
    #: only one row of each resource (multi-valued dates)
    first_row: str = ""
    first_row_args: list | None = None
    #: the condition on ``r`` of the resources without a value, read after the others
    #: (a date sort), or None
    tail: str | None = None
    tail_args: list | None = None
    tail_source: str = "resource r"


@dataclass
class Planned:
    """A compiled search: the type condition, its parts, and how it may be sorted."""

    base: str
    base_args: list
    parts: list[Part]
    plan: SearchPlan
    order: str
    order_args: list
    #: the position value in the sorted form (an expression over ``r``), or None
    value: str | None
    value_args: list
    walk: Walk | None
    #: rows come with positions (one sort key the store names a value for, or none)
    positioned: bool
    _choice: tuple | None = None

    # -- the driver ----------------------------------------------------------------

    def choose(self, conn) -> tuple[Part | None, int]:
        """The part to drive from (None: scan the type) and its bounded count (counted
        once per compiled search: a page and its total agree on it)."""
        if self._choice is None:
            self._choice = self._choose(conn)
        return self._choice

    def _choose(self, conn) -> tuple[Part | None, int]:
        for part in self.parts:
            if part.combo is not None:  # a combined index: one range holds the matches
                return part, 0
        candidates = [p for p in self.parts if p.driver is not None]
        if not candidates:
            return None, PROBE_CAP
        if len(candidates) == 1 and self.walk is None:
            return candidates[0], PROBE_CAP
        best, best_key = None, None
        for part in candidates:
            n = conn.execute(f"SELECT COUNT(*) FROM ({part.driver} LIMIT {PROBE_CAP})", part.driver_args).fetchone()[0]
            key = (n, part.rank)
            if best_key is None or key < best_key:
                best, best_key = part, key
        return best, best_key[0]

    def _from_driver(self, driver: Part | None) -> tuple[str, list, list[Part]]:
        if driver is None:
            return "resource r", [], self.parts
        rest = [p for p in self.parts if p is not driver]
        source = f"(SELECT DISTINCT rid FROM ({driver.driver})) d CROSS JOIN resource r ON r.rid = d.rid"
        return source, list(driver.driver_args), rest

    @staticmethod
    def _where(base: str, base_args: list, parts: list[Part], high_water: int | None) -> tuple[str, list]:
        where, args = [base], list(base_args)
        if high_water is not None:
            where.append("r.rid <= ?")
            args.append(high_water)
        for p in parts:
            where.append(p.probe)
            args.extend(p.probe_args)
        return " AND ".join(where), args

    # -- counting ------------------------------------------------------------------

    def count(self, conn, cap: int | None = None) -> int:
        driver, _ = self.choose(conn) if self.parts else (None, 0)
        source, args, rest = self._from_driver(driver)
        where, where_args = self._where(self.base, self.base_args, rest, None)
        if driver is not None and self.plan.resource_type is not None and not any(p.needs_resource for p in rest):
            # index rows exist only for current resources, and a parameter id names its
            # type: the driver's rids need no resource row (issue 16: a third of the cost)
            source = f"(SELECT DISTINCT rid FROM ({driver.driver})) r"
            where, where_args = self._where("1", [], rest, None)
        inner = f"SELECT r.rid FROM {source} WHERE {where}"
        if cap is not None:
            return conn.execute(f"SELECT COUNT(*) FROM ({inner} LIMIT ?)", [*args, *where_args, cap]).fetchone()[0]
        return conn.execute(f"SELECT COUNT(*) FROM ({inner})", [*args, *where_args]).fetchone()[0]

    def estimate(self, conn) -> int:
        """``_total=estimate``: the exact count where one index range holds the answer
        (a combined index, or a single condition); otherwise the matches of the most
        selective condition alone, counted in its index without touching resources or
        probing the others (an upper bound: R4 lets an estimate be rough)."""
        driver, _ = self.choose(conn) if self.parts else (None, 0)
        if driver is None or driver.combo is not None or len(self.parts) == 1 or self.plan.resource_type is None:
            return self.count(conn)
        return conn.execute(f"SELECT COUNT(*) FROM (SELECT DISTINCT rid FROM ({driver.driver}))", driver.driver_args).fetchone()[0]

    # -- pages ---------------------------------------------------------------------

    def page(self, conn, limit: int, offset: int, after: list | None, high_water: int | None) -> list[tuple]:
        """Rows ``(type, id, cursor)`` of one page: after ``after`` (a cursor) and then
        ``offset`` rows on."""
        driver, n = self.choose(conn)
        if driver is not None and driver.combo is not None:
            combo_walk = self._combo_walk(driver)
            if combo_walk is not None:
                return self._walk_page(conn, limit, offset, after, high_water, combo_walk)
        walk = driver is None or (n >= PROBE_CAP and offset + limit <= WALK_NEED)
        if self.walk is not None and walk:
            return self._walk_page(conn, limit, offset, after, high_water, self.walk)
        return self._sorted_page(conn, driver, limit, offset, after, high_water)

    def _sorted_page(self, conn, driver, limit, offset, after, high_water) -> list[tuple]:
        source, args, rest = self._from_driver(driver)
        where, where_args = self._where(self.base, self.base_args, rest, high_water)
        if not self.positioned:  # several keys: compile.py's order over r, no positions
            sql = f"SELECT r.type, r.id FROM {source} WHERE {where} ORDER BY {self.order} LIMIT ? OFFSET ?"
            rows = conn.execute(sql, [*args, *where_args, *self.order_args, limit, offset]).fetchall()
            return [(t, i, None) for t, i in rows]
        value = self.value or "NULL"
        inner = f"SELECT r.type AS t, r.id AS i, ({value}) AS v FROM {source} WHERE {where}"
        descending = bool(self.plan.sort) and self.plan.sort[0].descending
        outer_where, outer_args = _after_sorted(after, descending, self.value)
        sql = (
            f"SELECT t, i, v FROM ({inner}) {outer_where} "
            f"ORDER BY {self.order} LIMIT ? OFFSET ?"
        )
        rows = conn.execute(sql, [*self.value_args, *args, *where_args, *outer_args, *self.order_args, limit, offset]).fetchall()
        return [(t, i, [0 if v is not None or self.value is None else 1, v, t, i]) for t, i, v in rows]

    def _combo_walk(self, part: Part) -> Walk | None:
        """The combined index read in its order: a descending sort by its sort parameter,
        one value per key (with several, a resource could come twice)."""
        cid, values, sort = part.combo
        if len(self.plan.sort) != 1 or any(len(v) != 1 for v in values):
            return None
        key = self.plan.sort[0]
        if key.param.code != sort or not key.descending:
            return None
        source = "idx_combo s CROSS JOIN resource r ON r.rid = s.rid"
        keys = " AND s.cid = ? AND s.k1 = ? AND s.k2 = ? AND s.k3 = ?"
        args = [cid, *(v[0] for v in values)]
        return Walk(source, [], "s.high", True, keys + " AND s.high > ?", [*args, NO_SORT],
                    keys + " AND s.high = ?", [*args, NO_SORT], source)

    def _walk_page(self, conn, limit, offset, after, high_water, w: Walk) -> list[tuple]:
        where, where_args = self._where(self.base, self.base_args, self.parts, high_water)
        rows: list[tuple] = []
        phase = after[0] if after else 0
        if phase == 0:
            cond, cond_args = _after_walk(after, w)
            value = w.value or "NULL"
            order = f"{w.value} {'DESC' if w.descending else 'ASC'}, r.type, r.id" if w.value else "r.type, r.id"
            sql = (
                f"SELECT r.type, r.id, {value} FROM {w.source} WHERE {where}{w.first_row}{cond} "
                f"ORDER BY {order} LIMIT ? OFFSET ?"
            )
            args = [*w.source_args, *where_args, *(w.first_row_args or []), *cond_args, limit, offset]
            rows = [(t, i, [0, v, t, i]) for t, i, v in conn.execute(sql, args).fetchall()]
            if len(rows) == limit or w.tail is None:
                return rows
            # the tail starts after the rows skipped by the offset past the walked ones
            if offset and not rows:
                counted = f"SELECT COUNT(*) FROM (SELECT 1 FROM {w.source} WHERE {where}{w.first_row}{cond})"
                offset -= conn.execute(counted, args[:-2]).fetchone()[0]
                offset = max(offset, 0)
            else:
                offset = 0
            after = None
        if w.tail is None:
            return rows
        cond = " AND (r.type, r.id) > (?, ?)" if after else ""
        sql = f"SELECT r.type, r.id FROM {w.tail_source} WHERE {where}{w.tail}{cond} ORDER BY r.type, r.id LIMIT ? OFFSET ?"
        args = [*where_args, *(w.tail_args or []), *(after[2:] if after else []), limit - len(rows), offset]
        return rows + [(t, i, [1, None, t, i]) for t, i in conn.execute(sql, args).fetchall()]


def _after_walk(after, w: Walk) -> tuple[str, list]:
    if not after:
        return "", []
    _, v, t, i = after
    if w.value is None:
        return " AND (r.type, r.id) > (?, ?)", [t, i]
    op = "<" if w.descending else ">"
    return f" AND ({w.value} {op} ? OR ({w.value} = ? AND (r.type, r.id) > (?, ?)))", [v, v, t, i]


def _after_sorted(after, descending: bool, value: str | None) -> tuple[str, list]:
    if not after:
        return "", []
    phase, v, t, i = after
    if value is None:
        return "WHERE (t, i) > (?, ?)", [t, i]
    if phase == 1:
        return "WHERE v IS NULL AND (t, i) > (?, ?)", [t, i]
    op = "<" if descending else ">"
    return f"WHERE (v IS NULL OR v {op} ? OR (v = ? AND (t, i) > (?, ?)))", [v, v, t, i]


def plan_sql(plan: SearchPlan, sql: Sql, base: str, base_args: list, parts: list[Part]) -> Planned:
    """A ``Planned`` search. Positions (and index walks) need one sort key the store can
    name a value for, or none; other sorts run in the sorted form alone and later pages
    count an offset."""
    key = plan.sort[0] if len(plan.sort) == 1 else None
    value, value_args, walk = None, [], None
    if not plan.sort or key is not None:
        value_sql, walk_sql = sql.child(), sql.child()
        value = _value(value_sql, key, plan) if key is not None else None
        walk = _walk(walk_sql, key, plan) if (value is not None or key is None) else None
        for child in (value_sql, walk_sql):
            sql.adopt(child)
        value_args = value_sql.args
    if not plan.sort or value is not None:
        direction = "DESC" if key is not None and key.descending else "ASC"
        return Planned(base, base_args, parts, plan, f"v IS NULL, v {direction}, t, i" if key else "t, i", [],
                       value, value_args, walk, True)
    order_sql = sql.child()
    order = compile_order(plan, order_sql)
    sql.adopt(order_sql)
    return Planned(base, base_args, parts, plan, order, order_sql.args, None, [], None, False)


def _value(sql: Sql, key: SortKey, plan: SearchPlan) -> str | None:
    """The sort value of resource ``r`` (None: not a sort this module positions)."""
    d = key.param
    if d.column:
        return "r.last_updated" if d.column == "last_updated" else "r.id"
    compiler = kind(d.type)
    if compiler.sort is None or plan.resource_type is None:
        return None
    column = compiler.sort[1] if key.descending else compiler.sort[0]
    aggregate = "MAX" if key.descending else "MIN"
    pid = sql.pid(plan.resource_type, d.code) or -1
    # ``+x.pid``: by the owner index (rid, pid), as compile.py's sort expression
    head = f"(SELECT {aggregate}({column}) FROM {compiler.table} x WHERE x.rid = r.rid AND +x.pid = {sql.bind(pid)}"
    return head + (compiler.sort_rows(sql) if compiler.sort_rows is not None else "") + ")"


#: of one resource's rows of the walked date parameter, only the first in sort order
_FIRST_DESC = (" AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = s.rid AND y.pid = s.pid "
               "AND (y.high > s.high OR (y.high = s.high AND y.low > s.low)))")
_FIRST_ASC = (" AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = s.rid AND y.pid = s.pid "
              "AND (y.low < s.low OR (y.low = s.low AND y.high < s.high)))")
_NO_DATE = " AND NOT EXISTS (SELECT 1 FROM idx_date y WHERE y.rid = r.rid AND y.pid = ?)"


def _walk(sql: Sql, key: SortKey | None, plan: SearchPlan) -> Walk | None:
    if plan.resource_type is None:
        return None
    if key is None:
        return Walk("resource r", [], None, False)
    d = key.param
    if d.column == "last_updated":
        return Walk("resource r INDEXED BY resource_type_updated", [], "r.last_updated", key.descending)
    if d.column == "id":
        return Walk("resource r", [], "r.id", key.descending)
    if d.type != "date":
        return None
    pid = sql.pid(plan.resource_type, d.code) or -1
    if key.descending:  # the primary key (pid, high, low, rid), read backwards
        source, value, first = "idx_date s CROSS JOIN resource r ON r.rid = s.rid", "s.high", _FIRST_DESC
    else:
        source, value, first = "idx_date s INDEXED BY idx_date_low CROSS JOIN resource r ON r.rid = s.rid", "s.low", _FIRST_ASC
    return Walk(source, [], value, key.descending, f" AND s.pid = ?{first}", [pid], _NO_DATE, [pid])
