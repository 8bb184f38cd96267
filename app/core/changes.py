"""What an operation changed: the one record every act returns and the window's one
``changed`` signal carries, so each view decides for itself whether to redraw (a recharge
updates the tree, the room's panel and the room table at once)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Changes:
    #: rooms and shops whose account, balance, occupants or meters changed
    nodes: frozenset[int] = frozenset()
    #: the campus itself (nodes, meters, occupants): the window reloads its index
    campus: bool = False
    tariffs: bool = False
    operators: bool = False
    settings: bool = False
    alarms: bool = False
    #: every act appends to the audit log
    audit: bool = True

    def __or__(self, other: Changes) -> Changes:
        return Changes(self.nodes | other.nodes, self.campus or other.campus,
                       self.tariffs or other.tariffs, self.operators or other.operators,
                       self.settings or other.settings, self.alarms or other.alarms,
                       self.audit or other.audit)

    @classmethod
    def of_nodes(cls, *node_ids: int | None, **flags: bool) -> Changes:
        return cls(nodes=frozenset(n for n in node_ids if n is not None), **flags)


NOTHING = Changes(audit=False)
