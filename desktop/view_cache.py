"""Keeps the items the window decoded, by their stored record, so a refresh decodes only what changed."""

from __future__ import annotations

from crdt import ItemView
from sync_service.errors import ListNotFoundError
from sync_service.store import ListView, Store


class ViewCache:
    """Per list, each stored item record's bytes and what they decode to (an ItemView, or None for a
    removed item's record). An item record is self-contained, so the same bytes always mean the same
    item; the header is still decoded each time, and every new record is checked against it. Used on
    the store thread only."""

    def __init__(self) -> None:
        self._decoded: dict[str, dict[bytes, ItemView | None]] = {}

    def view(self, store: Store, list_id: str) -> ListView:
        """Return the list as `Store.view` would, decoding only records not seen before.
        Raises ListNotFoundError, CorruptStateError."""
        try:
            header, rows = store.parts(list_id)
        except ListNotFoundError:
            self.forget(list_id)
            raise
        known = self._decoded.get(list_id, {})
        fresh = [(key, record) for key, record in rows if record not in known]
        partial = store.decode_parts(list_id, header, [record for _key, record in fresh])
        decoded = {record: known[record] for _key, record in rows if record in known}
        for key, record in fresh:
            decoded[record] = partial.item(key)
        self._decoded[list_id] = decoded
        items = [item for item in decoded.values() if item is not None]
        return ListView(list_id, partial.title, items)

    def forget(self, list_id: str) -> None:
        """Drop what is kept of a list."""
        self._decoded.pop(list_id, None)
