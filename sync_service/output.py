"""What the CLI prints: readable tables for people, and the JSON shapes other tools rely on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from crdt import ItemView
from sync_service.postgres_server import ServerStatus
from sync_service.store import ListSummary, ListView

ITEM_FIELDS = ("name", "needed", "acquired", "category", "unit", "note")


def to_json(value: Any) -> str:
    """Return `value` as one line of JSON (non-ASCII kept readable)."""
    return json.dumps(value, ensure_ascii=False)


def summary_json(summary: ListSummary) -> dict[str, Any]:
    """The `new` and `rename` shape: {"id", "title"}."""
    return {"id": summary.id, "title": summary.title}


def lists_json(summaries: Sequence[ListSummary]) -> list[dict[str, Any]]:
    """The `lists` shape: [{"id", "title", "items": <count>}]."""
    return [{"id": summary.id, "title": summary.title, "items": summary.items} for summary in summaries]


def item_json(item: ItemView) -> dict[str, Any]:
    """One item: {"name", "needed", "acquired", "category", "unit", "note"}."""
    return {field: getattr(item, field) for field in ITEM_FIELDS}


def list_json(view: ListView) -> dict[str, Any]:
    """The `show` shape: {"id", "title", "items": [item, ...]} with items by category, then name."""
    return {"id": view.id, "title": view.title, "items": [item_json(item) for item in view.items]}


def status_json(status: ServerStatus) -> dict[str, Any]:
    """The `store start|status` shape."""
    return {
        "running": status.running,
        "pid": status.pid,
        "data_dir": str(status.data_dir),
        "socket_dir": str(status.socket_dir),
        "log": str(status.log_file),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[str] = ()) -> str:
    """Return an aligned text table; columns named in `numeric` are right-aligned."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max([len(header), *(len(row[index]) for row in cells)]) for index, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if header in numeric else value.ljust(width)
            for header, value, width in zip(headers, values, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)])


def lists_text(summaries: Sequence[ListSummary]) -> str:
    """The `lists` table: id, title, number of items."""
    if not summaries:
        return "No lists yet. Create one with: shoplist new TITLE"
    rows = [(summary.id[:12], summary.title, summary.items) for summary in summaries]
    return table(("id", "title", "items"), rows, numeric=("items",))


def list_text(view: ListView) -> str:
    """The `show` view: the title, then the items (detail columns only when some item has them)."""
    heading = f"{view.title}  ({view.id[:12]})"
    if not view.items:
        return f"{heading}\n(no items)"
    headers = ["item", "needed", "acquired"]
    headers += [field for field in ("category", "unit", "note") if any(getattr(i, field) for i in view.items)]
    rows = [
        [getattr(item, "name" if header == "item" else header) for header in headers] for item in view.items
    ]
    return f"{heading}\n{table(headers, rows, numeric=('needed', 'acquired'))}"


def item_text(title: str, item: ItemView) -> str:
    """One line for `add` and `set`."""
    return f"{title}: {item.name}, {item.needed} needed, {item.acquired} acquired"


def status_text(status: ServerStatus) -> str:
    """The `store status` lines."""
    state = f"running (pid {status.pid})" if status.running else "stopped"
    return "\n".join(
        [
            f"store:      {state}",
            f"data:       {status.data_dir}",
            f"socket dir: {status.socket_dir}",
            f"log:        {status.log_file}",
        ]
    )
