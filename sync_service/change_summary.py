"""What changed in a list, in words a notification can show: the difference between two states of one
list, and a grouper that turns a burst of remote edits into one notification per list (sans-io)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from crdt import ItemView, ShoppingList

MAX_NAMES_SHOWN = 3


@dataclass(frozen=True)
class ListChange:
    """Items added, removed, changed and checked off between two states of one list."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    acquired: tuple[str, ...] = ()
    renamed_to: str | None = None

    def is_empty(self) -> bool:
        """Return whether nothing a user would notice changed."""
        return not (self.added or self.removed or self.changed or self.acquired or self.renamed_to)

    def then(self, later: ListChange) -> ListChange:
        """Return the change made of this one followed by `later` (names listed once, latest kind wins)."""
        kinds: dict[str, str] = {}
        for change in (self, later):
            for kind in ("added", "removed", "changed", "acquired"):
                for name in getattr(change, kind):
                    combined = _combined_kind(kinds.get(name), kind)
                    if combined is None:
                        del kinds[name]
                    else:
                        kinds[name] = combined
        grouped: dict[str, list[str]] = {"added": [], "removed": [], "changed": [], "acquired": []}
        for name, kind in kinds.items():
            grouped[kind].append(name)
        return ListChange(
            **{kind: tuple(names) for kind, names in grouped.items()},
            renamed_to=later.renamed_to or self.renamed_to,
        )

    def describe(self) -> str:
        """Return one short line, e.g. "added Eggs, Milk; checked off Bread"."""
        parts = [
            _phrase(verb, names)
            for verb, names in (
                ("added", self.added),
                ("checked off", self.acquired),
                ("changed", self.changed),
                ("removed", self.removed),
            )
            if names
        ]
        if self.renamed_to:
            parts.append(f"renamed the list to {self.renamed_to}")
        return "; ".join(parts)


def list_change(before: ShoppingList, after: ShoppingList) -> ListChange:
    """Return what a user sees changed from `before` to `after` (two states of the same list)."""
    old = {view.name.casefold(): view for view in before.entries()}
    new = {view.name.casefold(): view for view in after.entries()}
    keys = old.keys() | new.keys()
    return items_change(
        {key: old.get(key) for key in keys}, {key: new.get(key) for key in keys}, before.title, after.title
    )


def items_change(
    before: Mapping[str, ItemView | None], after: Mapping[str, ItemView | None], title_before: str, title: str
) -> ListChange:
    """Return the change from the items `before` to `after` (key -> item, None where absent) and from
    one title to the other."""
    added, removed, acquired, changed = [], [], [], []
    for key in before.keys() | after.keys():
        then, now = before.get(key), after.get(key)
        if then == now:
            continue
        if then is None and now is not None:
            added.append(now.name)
        elif now is None and then is not None:
            removed.append(then.name)
        elif now is not None and then is not None:
            if now.acquired >= now.needed > 0 and then.acquired < then.needed:
                acquired.append(now.name)
            else:
                changed.append(now.name)
    return ListChange(
        added=tuple(sorted(added)),
        removed=tuple(sorted(removed)),
        changed=tuple(sorted(changed)),
        acquired=tuple(sorted(acquired)),
        renamed_to=title if title != title_before and title_before else None,
    )


@dataclass(frozen=True)
class Notification:
    """One notification to show: the list's title and what changed in it."""

    list_id: str
    title: str
    message: str


@dataclass
class NotificationGrouper:
    """Collects remote changes per list and releases one notification per list once the list has been
    quiet for `quiet_seconds` (or `max_wait_seconds` after its first change), so a burst is one toast."""

    quiet_seconds: float = 2.0
    max_wait_seconds: float = 10.0
    _waiting: dict[str, _Burst] = field(default_factory=dict)

    def on_change(self, now: float, list_id: str, title: str, change: ListChange) -> None:
        """Record a change another replica made to list `list_id`."""
        if change.is_empty():
            return
        burst = self._waiting.get(list_id)
        if burst is None:
            self._waiting[list_id] = _Burst(title, change, first=now, last=now)
        else:
            burst.title, burst.change, burst.last = title, burst.change.then(change), now

    def due(self, now: float) -> list[Notification]:
        """Return (and forget) the notifications whose burst is over."""
        ready = [list_id for list_id, burst in self._waiting.items() if self._is_over(burst, now)]
        return [self._release(list_id) for list_id in sorted(ready)]

    def next_due(self) -> float | None:
        """Return when `due` next has something to release, or None when nothing waits."""
        if not self._waiting:
            return None
        return min(
            min(burst.last + self.quiet_seconds, burst.first + self.max_wait_seconds)
            for burst in self._waiting.values()
        )

    def _is_over(self, burst: _Burst, now: float) -> bool:
        return now >= burst.last + self.quiet_seconds or now >= burst.first + self.max_wait_seconds

    def _release(self, list_id: str) -> Notification:
        burst = self._waiting.pop(list_id)
        return Notification(list_id, burst.title, _capitalised(burst.change.describe()))


@dataclass
class _Burst:
    title: str
    change: ListChange
    first: float
    last: float


def _combined_kind(earlier: str | None, later: str) -> str | None:
    """Return how to report an item that changed twice in one burst (None: not at all). An item added
    and then edited is still news as "added"; one added and removed again is no news."""
    if earlier == "added" and later in ("changed", "acquired"):
        return "added"
    if earlier == "added" and later == "removed":
        return None
    return later


def _phrase(verb: str, names: Iterable[str]) -> str:
    shown = list(names)
    if len(shown) <= MAX_NAMES_SHOWN:
        return f"{verb} {', '.join(shown)}"
    more = len(shown) - MAX_NAMES_SHOWN
    return f"{verb} {', '.join(shown[:MAX_NAMES_SHOWN])} and {more} more"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
