"""Benchmark the CRDT core against a naive full-JSON-state baseline; prints a table of medians."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

from crdt import ShoppingList

REPLICAS = ("replica-a", "replica-b", "replica-c")
T = TypeVar("T")


def median_seconds(run: Callable[[], object], *, repeats: int, inner: int = 1) -> float:
    """Return the median over `repeats` runs of the mean time of `inner` calls to `run`."""
    return median_seconds_on(lambda: None, lambda _: run(), repeats=repeats, inner=inner)


def median_seconds_on(
    prepare: Callable[[], T], run: Callable[[T], object], *, repeats: int, inner: int = 1
) -> float:
    """Like median_seconds, but each run first gets a fresh subject from `prepare` (not timed)."""
    samples = []
    for _ in range(repeats):
        subject = prepare()
        start = time.perf_counter_ns()
        for _ in range(inner):
            run(subject)
        samples.append((time.perf_counter_ns() - start) / inner / 1e9)
    return statistics.median(samples)


def build_list(replica: str, size: int, prefix: str = "Item number") -> ShoppingList:
    shopping = ShoppingList(replica)
    shopping.set_title("Benchmark")
    for index in range(size):
        shopping.add_item(
            f"{prefix} {index}", 1 + index % 5, category=("dairy", "bakery", "produce")[index % 3]
        )
    return shopping


class NaiveList:
    """The baseline: per-item, per-replica counts in a dict; every write ships the whole list as JSON and
    a merge re-reads every item."""

    def __init__(self, replica: str) -> None:
        self.replica = replica
        self.items: dict[str, dict[str, dict[str, int]]] = {}

    def add_item(self, name: str, needed: int) -> str:
        """Apply one add and return what this design ships for it: the whole list."""
        self.apply_add(name, needed)
        return json.dumps(self.items)

    def apply_add(self, name: str, needed: int) -> None:
        counts = self.items.setdefault(name.casefold(), {"needed": {}, "acquired": {}, "name": {"": 0}})
        counts["needed"][self.replica] = counts["needed"].get(self.replica, 0) + needed

    def merge_json(self, payload: str) -> None:
        for key, theirs in json.loads(payload).items():
            mine = self.items.setdefault(key, {"needed": {}, "acquired": {}, "name": {"": 0}})
            for field in ("needed", "acquired"):
                for replica, count in theirs[field].items():
                    mine[field][replica] = max(mine[field].get(replica, 0), count)


def build_naive(replica: str, size: int) -> tuple[NaiveList, str]:
    naive = NaiveList(replica)
    for index in range(size):
        naive.apply_add(f"Item number {index}", 1 + index % 5)
    return naive, json.dumps(naive.items)


Row = tuple[str, str, str, str]


def measure(repeats: int, sizes: tuple[int, ...]) -> list[Row]:
    """Run every measurement and return the table rows."""
    rows: list[Row] = []
    for size in sizes:
        rows += _merge_rows(size, repeats)
    rows.append(_delta_merge_row(repeats))
    for size in (1000, 10_000):
        rows += _codec_rows(size, repeats)
    rows += _size_rows()
    rows.append(_context_row())
    return rows


def _merge_rows(size: int, repeats: int) -> list[Row]:
    ours = build_list(REPLICAS[0], size)
    ten_percent_changed = ours.copy(REPLICAS[1])
    for index in range(0, size, 10):
        ten_percent_changed.add_item(f"Item number {index}", 1)
    both_edited = build_list(REPLICAS[2], size)
    disjoint = build_list(REPLICAS[2], size, prefix="Other item")

    def merge_time(other: ShoppingList) -> str:
        return _ms(median_seconds_on(ours.copy, lambda mine: mine.merge(other), repeats=repeats))

    return [
        (
            f"full-state merge, {size:,} items, 10% changed",
            merge_time(ten_percent_changed),
            _ms(_naive_full_merge(size, repeats, replica=REPLICAS[1])),
            "1k ≤ 2 ms" if size == 1000 else "",
        ),
        (
            f"full-state merge, {size:,} items, all edited on both sides",
            merge_time(both_edited),
            _ms(_naive_full_merge(size, repeats, replica=REPLICAS[2])),
            "",
        ),
        (f"full-state merge, {size:,} items, all new to the receiver", merge_time(disjoint), "", ""),
    ]


def _delta_merge_row(repeats: int) -> Row:
    big = build_list(REPLICAS[0], 10_000)
    other = big.copy(REPLICAS[1])
    deltas = [other.add_item(f"Item number {index}", 1) for index in range(200)]
    cursor = iter(deltas * 1000)
    return (
        "merge a 1-op delta into a 10k-item list",
        _us(median_seconds(lambda: big.merge(next(cursor)), repeats=repeats, inner=200)),
        _ms(_naive_delta_merge(repeats)),
        "≤ 50 µs",
    )


def _codec_rows(size: int, repeats: int) -> list[Row]:
    shopping = build_list(REPLICAS[0], size)
    encoded = shopping.to_bytes()
    naive, payload = build_naive(REPLICAS[0], size)
    return [
        (
            f"encode {size:,} items",
            _ms(median_seconds(shopping.to_bytes, repeats=repeats)),
            _ms(median_seconds(lambda: json.dumps(naive.items), repeats=repeats)),
            "",
        ),
        (
            f"decode {size:,} items",
            _ms(median_seconds(lambda: ShoppingList.from_bytes(encoded, "r"), repeats=repeats)),
            _ms(median_seconds(lambda: json.loads(payload), repeats=repeats)),
            "",
        ),
    ]


def _size_rows() -> list[Row]:
    shopping = build_list(REPLICAS[0], 10_000)
    naive, payload = build_naive(REPLICAS[0], 10_000)
    encoded = len(shopping.to_bytes())
    text = sum(len(item.name.encode()) + 1 + len(item.category.encode()) + 1 for item in shopping.entries())
    delta = shopping.add_item("Item number 5000", 2)
    return [
        (
            "bytes per item encoded (10k list)",
            f"{encoded / 10_000:.1f} B",
            f"{len(payload.encode()) / 10_000:.1f} B",
            "≤ 40 B",
        ),
        ("  of which structure (all but the item's own text)", f"{(encoded - text) / 10_000:.1f} B", "", ""),
        (
            "size of a 1-op delta (10k list)",
            f"{len(delta.to_bytes())} B",
            f"{len(naive.add_item('Item number 5000', 2).encode()):,} B",
            "≤ 200 B",
        ),
    ]


def _naive_full_merge(size: int, repeats: int, *, replica: str) -> float:
    _, payload = build_naive(replica, size)
    return median_seconds_on(
        lambda: build_naive(REPLICAS[0], size)[0], lambda naive: naive.merge_json(payload), repeats=repeats
    )


def _naive_delta_merge(repeats: int) -> float:
    naive, _ = build_naive(REPLICAS[0], 10_000)
    other, _ = build_naive(REPLICAS[1], 10_000)
    payload = other.add_item("Item number 1", 1)  # the naive client ships the whole list for one edit
    return median_seconds(lambda: naive.merge_json(payload), repeats=repeats)


def _context_row() -> Row:
    replicas = [ShoppingList(name) for name in REPLICAS]
    for operation in range(10_000):
        author = replicas[operation % 3]
        delta = author.add_item(f"Item number {operation % 500}", 1)
        for replica in replicas:
            if replica is not author:
                replica.merge(delta)
    context = replicas[0].context
    entries = len(context.version_vector) + len(context.cloud)
    return ("causal context after 10k ops by 3 replicas", f"{entries} entries", "n/a", "O(replicas)")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7, help="runs per measurement; the median is shown")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    sizes = (100, 1000) if args.quick else (100, 1000, 10_000)
    rows = measure(args.repeats, sizes)
    header = ("measurement", "shoplist crdt", "naive JSON baseline", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    print(f"CRDT benchmark, median of {args.repeats} runs\n")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
