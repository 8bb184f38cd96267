"""Set-based sums of the stored energy (``DailyEnergy``, ``IntervalEnergy``) under a node of the
campus tree, for the energy analysis (``core/energy_analysis``).

Every question names a node and reaches the meters under it with one recursive query over the
tree (a room, a floor, a building or the whole campus alike), so the campus's 10,000 rooms cost
one statement, not 10,000. Plain SQL that SQLite and PostgreSQL both run; answers are tuples
and dicts of integers (Wh), never rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.storage.models import database

ROOM_KINDS = ("room", "shop")
#: Rows of a VALUES list per statement (three parameters each, well under every limit).
VALUES_CHUNK = 300


def _p() -> str:
    return database.param


def _subtree() -> str:
    p = _p()
    return ("WITH RECURSIVE sub(id) AS (SELECT " + p + " UNION ALL "
            "SELECT n.id FROM node n JOIN sub ON n.parent_id = sub.id) ")


def _rows(sql: str, params: Iterable) -> list[tuple]:
    return list(database.execute_sql(sql, tuple(params)).fetchall())


def node_exists(node_id: int) -> tuple[str, str, str] | None:
    """(kind, name, code) of a node, or None."""
    found = _rows(f"SELECT kind, name, code FROM node WHERE id = {_p()}", [node_id])
    return tuple(found[0]) if found else None  # type: ignore[return-value]


def node_labels() -> dict[int, tuple[int | None, str, str, str]]:
    """{node id: (parent id, kind, name, code)} of the whole tree (labels for rankings)."""
    return {r[0]: (r[1], r[2], r[3], r[4])
            for r in _rows("SELECT id, parent_id, kind, name, code FROM node", [])}


def rooms_under(node_id: int) -> list[int]:
    """The rooms and shops under ``node_id`` (itself if it is one)."""
    p = _p()
    return [r[0] for r in _rows(
        _subtree() + f"SELECT n.id FROM sub JOIN node n ON n.id = sub.id "
        f"WHERE n.kind IN ({p}, {p}) ORDER BY n.id", [node_id, *ROOM_KINDS])]


def daily_totals(node_id: int, first: str, last: str) -> dict[str, int]:
    """{local day: Wh} the meters under the node used, days ``first``..``last`` (ISO)."""
    p = _p()
    return {day: int(wh) for day, wh in _rows(
        _subtree() + "SELECT d.day, SUM(d.energy_wh) FROM sub "
        "JOIN meter m ON m.node_id = sub.id "
        f"JOIN daily_energy d ON d.meter_id = m.id AND d.day >= {p} AND d.day <= {p} "
        "GROUP BY d.day", [node_id, first, last])}


def interval_totals(node_id: int, t0: int, t1: int) -> dict[int, int]:
    """{interval start: Wh} under the node for intervals starting in [t0, t1)."""
    p = _p()
    return {int(s): int(wh) for s, wh in _rows(
        _subtree() + "SELECT i.start, SUM(i.energy_wh) FROM sub "
        "JOIN meter m ON m.node_id = sub.id "
        f"JOIN interval_energy i ON i.meter_id = m.id AND i.start >= {p} AND i.start < {p} "
        "GROUP BY i.start", [node_id, t0, t1])}


def room_totals(node_id: int, first: str, last: str) -> dict[int, int]:
    """{room node id: Wh} of every room under the node with use on days ``first``..``last``."""
    p = _p()
    return {int(n): int(wh) for n, wh in _rows(
        _subtree() + "SELECT m.node_id, SUM(d.energy_wh) FROM sub "
        "JOIN meter m ON m.node_id = sub.id "
        f"JOIN daily_energy d ON d.meter_id = m.id AND d.day >= {p} AND d.day <= {p} "
        "GROUP BY m.node_id", [node_id, first, last])}


def room_days(room_ids: list[int], first: str, last: str) -> list[tuple[int, str, int]]:
    """(room, day, Wh) of ``room_ids`` on days ``first``..``last``, by room then day."""
    if not room_ids:
        return []
    p = _p()
    marks = ", ".join([p] * len(room_ids))
    return _rows(  # millions of rows for a year of the campus: as the driver gives them
        "SELECT m.node_id, d.day, CAST(SUM(d.energy_wh) AS BIGINT) FROM meter m "
        f"JOIN daily_energy d ON d.meter_id = m.id AND d.day >= {p} AND d.day <= {p} "
        f"WHERE m.node_id IN ({marks}) GROUP BY m.node_id, d.day ORDER BY m.node_id, d.day",
        [first, last, *room_ids])


def relay_events(node_id: int, t0: float, t1: float) -> list[tuple[int, int, float, str, str]]:
    """(meter, room, t, action, reason) of the relay moves of the meters under the node between
    ``t0`` and ``t1``, by meter then time: the station's automatic trips and closes
    (``ControlLog``, when queued), every trip a meter confirmed (an operator's too: ``Outbox``,
    reason ``operator``, when applied) and every close sent to a meter (when queued)."""
    p = _p()
    return [(int(m), int(n), float(t), a, r) for m, n, t, a, r in _rows(
        _subtree() + "SELECT c.meter_id, m.node_id, c.t, c.action, c.reason FROM sub "
        "JOIN meter m ON m.node_id = sub.id "
        f"JOIN control_log c ON c.meter_id = m.id AND c.t >= {p} AND c.t < {p} "
        "UNION ALL "
        "SELECT o.meter_id, m.node_id, o.updated_at, 'trip', 'operator' FROM sub "
        "JOIN meter m ON m.node_id = sub.id "
        "JOIN outbox o ON o.meter_id = m.id AND o.action = 'trip' AND o.state = 'applied' "
        f"AND o.updated_at >= {p} AND o.updated_at < {p} "
        "UNION ALL "
        "SELECT o.meter_id, m.node_id, o.created_at, 'close', '' FROM sub "
        "JOIN meter m ON m.node_id = sub.id "
        f"JOIN outbox o ON o.meter_id = m.id AND o.action = 'close' AND o.state <> 'withdrawn' "
        f"AND o.created_at >= {p} AND o.created_at < {p} "
        "ORDER BY 1, 3", [node_id, t0, t1, t0, t1, t0, t1])]


def meter_spans(spans: list[tuple[int, int, int]]) -> dict[tuple[int, int], int]:
    """{(meter, span start): Wh} used in whole intervals inside each (meter, start, end)."""
    out: dict[tuple[int, int], int] = {}
    p = _p()
    for k in range(0, len(spans), VALUES_CHUNK):
        chunk = spans[k:k + VALUES_CHUNK]
        values = ", ".join([f"({p}, {p}, {p})"] * len(chunk))
        params = [x for span in chunk for x in span]
        for m, a, wh in _rows(
                f"WITH s(meter_id, a, b) AS (VALUES {values}) "
                "SELECT s.meter_id, s.a, SUM(i.energy_wh) FROM s "
                "JOIN interval_energy i ON i.meter_id = s.meter_id AND i.start >= s.a "
                "AND i.start + 900 <= s.b GROUP BY s.meter_id, s.a", params):
            out[(int(m), int(a))] = int(wh)
    return out


def room_use_in_spans(node_id: int, spans: list[tuple[int, int]], min_wh: int,
                      tariff_group: str | None = None) -> list[tuple[int, int, int]]:
    """(room, span start, Wh) of the rooms under the node (of ``tariff_group``'s open accounts
    only, when given) that used at least ``min_wh`` in whole intervals inside a span."""
    if not spans:
        return []
    p = _p()
    values = ", ".join([f"({p}, {p})"] * len(spans))
    group = ""
    params: list = [node_id, *[x for s in spans for x in s]]
    if tariff_group is not None:
        group = (f" AND m.node_id IN (SELECT a.node_id FROM account a WHERE a.tariff_group = {p}"
                 " AND a.closed_at IS NULL)")
        params.append(tariff_group)
    params.append(min_wh)
    return [(int(n), int(a), int(wh)) for n, a, wh in _rows(
        _subtree().rstrip() + f", s(a, b) AS (VALUES {values}) "
        "SELECT m.node_id, s.a, SUM(i.energy_wh) FROM s, sub "
        "JOIN meter m ON m.node_id = sub.id "
        "JOIN interval_energy i ON i.meter_id = m.id AND i.start >= s.a AND i.start + 900 <= s.b "
        f"WHERE 1 = 1{group} GROUP BY m.node_id, s.a HAVING SUM(i.energy_wh) >= {p}", params)]


def has_data(node_id: int, first: str, last: str) -> bool:
    p = _p()
    return bool(_rows(
        _subtree() + "SELECT 1 FROM sub JOIN meter m ON m.node_id = sub.id "
        f"JOIN daily_energy d ON d.meter_id = m.id AND d.day >= {p} AND d.day <= {p} LIMIT 1",
        [node_id, first, last]))
