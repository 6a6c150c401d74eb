"""Undoable list edits, each a `do` and an `undo` run against the store, both as new CRDT operations.

Nothing here rewrites history: undoing an add decrements (or removes) what this replica added, undoing a
change moves each quantity back by the amount it moved and writes the old details again, and undoing a
remove writes the item back. Edits other people made in between survive, as they would any edit. Every
method runs on the store's thread, in order, so an undo always sees what its `do` recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crdt import ItemView, ShoppingList
from sync_service.store import ListSummary, Store

DETAILS = ("category", "unit", "note")


class Edit:
    """One undoable edit of a list. `do` runs first and again on redo; `undo` reverses it. An item edit
    leaves in `outcome` the item's key and what it is after the last `do` or `undo` (None once gone), so
    a window can show it before it reads the whole list again."""

    list_id: str
    outcome: tuple[str, ItemView | None] | None = None

    def describe(self) -> str:
        """Return what the edit does, for the Edit menu ("Undo add Eggs")."""
        raise NotImplementedError

    def do(self, store: Store) -> None:
        raise NotImplementedError

    def undo(self, store: Store) -> None:
        raise NotImplementedError


@dataclass
class AddItem(Edit):
    """Add quantities to an item, creating it if absent (the quick add)."""

    list_id: str
    name: str
    needed: int = 1
    acquired: int = 0
    details: dict[str, str] = field(default_factory=dict)
    created: bool = False
    details_before: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"add {self.name}"

    def do(self, store: Store) -> None:
        before = store.item(self.list_id, self.name)
        self.created = before is None
        self.details_before = _details_of(before) if before else {}
        after = store.add_item(self.list_id, self.name, self.needed, self.acquired, **self.details)
        self.outcome = (self.name, after)

    def undo(self, store: Store) -> None:
        current = store.item(self.list_id, self.name)
        if current is None:
            return  # removed meanwhile: nothing of ours is left to take back
        needed = max(current.needed - self.needed, 0)
        acquired = max(current.acquired - self.acquired, 0)
        if self.created and needed == 0 and acquired == 0:
            store.remove_item(self.list_id, self.name)
            self.outcome = (self.name, None)
            return
        restored = {name: self.details_before.get(name, "") for name in self.details}
        self.outcome = (self.name, store.set_item(self.list_id, self.name, needed, acquired, **restored))


@dataclass
class ChangeItem(Edit):
    """Set an item's quantities and details (in-place edits, check-off)."""

    list_id: str
    name: str
    needed: int | None = None
    acquired: int | None = None
    details: dict[str, str] = field(default_factory=dict)
    label: str = ""
    moved: dict[str, int] = field(default_factory=dict)
    before: ItemView | None = None

    def describe(self) -> str:
        return self.label or f"change {self.name}"

    def do(self, store: Store) -> None:
        self.before = before = store.item(self.list_id, self.name)
        after = store.set_item(self.list_id, self.name, self.needed, self.acquired, **self.details)
        self.outcome = (self.name, after)
        self.moved = {
            "needed": after.needed - (before.needed if before else 0),
            "acquired": after.acquired - (before.acquired if before else 0),
        }

    def undo(self, store: Store) -> None:
        current = store.item(self.list_id, self.name)
        if current is None or not self.moved:  # gone meanwhile, or the edit found nothing to change
            return
        if self.before is None:  # the change created the item: take it away again
            store.remove_item(self.list_id, self.name)
            self.outcome = (self.name, None)
            return
        old = _details_of(self.before)
        needed = max(current.needed - self.moved["needed"], 0)
        acquired = max(current.acquired - self.moved["acquired"], 0)
        details = {name: old[name] for name in self.details}
        self.outcome = (self.name, store.set_item(self.list_id, self.name, needed, acquired, **details))


@dataclass
class ToggleGot(ChangeItem):
    """Check an item off (acquired = needed) or, if it is got already, back on (acquired = 0); decided
    from what the store holds when the edit runs."""

    def describe(self) -> str:
        return f"check off {self.name}"

    def do(self, store: Store) -> None:
        if self.acquired is None:  # the first run decides; a redo repeats the same change
            current = store.item(self.list_id, self.name)
            if current is None:
                return
            got = current.needed > 0 and current.acquired >= current.needed
            self.acquired = 0 if got else current.needed
        super().do(store)


@dataclass
class RemoveItem(Edit):
    """Remove an item (what this replica has observed of it)."""

    list_id: str
    name: str
    before: ItemView | None = None

    def describe(self) -> str:
        return f"remove {self.name}"

    def do(self, store: Store) -> None:
        self.before = store.item(self.list_id, self.name)
        if self.before is not None:
            store.remove_item(self.list_id, self.name)
            self.outcome = (self.name, None)

    def undo(self, store: Store) -> None:
        if self.before is None:
            return
        item = self.before
        after = store.set_item(self.list_id, item.name, item.needed, item.acquired, **_details_of(item))
        self.outcome = (self.name, after)


@dataclass
class RenameList(Edit):
    """Give a list a new title."""

    list_id: str
    title: str
    title_before: str = ""

    def describe(self) -> str:
        return f"rename to {self.title}"

    def do(self, store: Store) -> None:
        self.title_before = store.load(self.list_id).title
        store.rename(self.list_id, self.title)

    def undo(self, store: Store) -> None:
        store.rename(self.list_id, self.title_before)


@dataclass
class NewList(Edit):
    """Create a list. Undo forgets it here; redo brings the same list back (same id, same state)."""

    title: str
    list_id: str = ""
    saved: ShoppingList | None = None
    created: ListSummary | None = None

    def describe(self) -> str:
        return f"new list {self.title}"

    def do(self, store: Store) -> None:
        if self.saved is None:
            self.created = store.create(self.title)
            self.list_id = self.created.id
        else:
            store.restore(self.list_id, self.saved)

    def undo(self, store: Store) -> None:
        self.saved = store.load(self.list_id)
        store.delete(self.list_id)


@dataclass
class DeleteList(Edit):
    """Forget a list on this replica. Undo brings it back from the state it had, as a local edit, so
    changes the delete dropped from the outbox still reach the cloud."""

    list_id: str
    title: str = ""
    saved: ShoppingList | None = None
    shared: bool = False

    def describe(self) -> str:
        return f"delete list {self.title}"

    def do(self, store: Store) -> None:
        self.saved = store.load(self.list_id)
        self.shared = any(summary.shared for summary in store.lists() if summary.id == self.list_id)
        store.delete(self.list_id)

    def undo(self, store: Store) -> None:
        if self.saved is None:
            return
        store.restore(self.list_id, self.saved)
        if self.shared:
            store.mark_shared(self.list_id)


def _details_of(item: ItemView) -> dict[str, str]:
    return {name: getattr(item, name) for name in DETAILS}
