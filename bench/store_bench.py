"""Local store benchmark: commit latency, `shoplist add` wall time warm and cold, empty vs 10k-item list."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from crdt import ShoppingList
from sync_service import postgres_server
from sync_service.home import Home
from sync_service.store import Store, open_store

SHOPLIST = Path(sys.executable).parent / "shoplist"


def timed(action: Callable[[], object]) -> float:
    """Return how long `action` took, in milliseconds."""
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def cli(home: Home, *arguments: str) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SHOPLIST_")}
    environment["SHOPLIST_KEYRING"] = "file"  # a temporary home: never the desktop's keyring
    subprocess.run([str(SHOPLIST), "--home", str(home.path), *arguments], check=True, env=environment,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def commit_latency(store: Store, list_id: str, writes: int) -> tuple[float, float]:
    """Return p50 and p99 (ms) of one local write: lock, merge, write, outbox, NOTIFY, commit."""
    samples = [timed(lambda: store.add_item(list_id, "Milk")) for _ in range(writes)]
    return percentile(samples, 0.5), percentile(samples, 0.99)


def big_list(store: Store, size: int) -> str:
    """Create a list of `size` items (merged in as one remote state) and return its id."""
    state = ShoppingList("bench-remote")
    state.set_title(f"{size} items")
    for number in range(size):
        state.add_item(f"item {number:05}", 1)
    list_id = store.create(f"{size} items").id
    store.merge_remote(list_id, state)
    return list_id


def measure(home: Home, runs: int, writes: int, size: int) -> dict[str, float]:
    """Return the median over `runs` of every figure."""
    figures: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    for _ in range(runs):
        fresh = Home(home.path / f"fresh-{len(figures.get('fresh', []))}")
        record("fresh", timed(lambda fresh=fresh: cli(fresh, "new", "Groceries")))  # type: ignore[misc]
        postgres_server.stop(fresh)
    with open_store(home) as store:
        empty = store.create("empty").id
        big = big_list(store, size)
        for _ in range(runs):
            p50, p99 = commit_latency(store, empty, writes)
            record("p50", p50)
            record("p99", p99)
            record(
                "empty", statistics.median(timed(lambda: store.add_item(empty, "Tea")) for _ in range(writes))
            )
            record("big", statistics.median(timed(lambda: store.add_item(big, "Tea")) for _ in range(writes)))
    for _ in range(runs):
        record("warm", statistics.median(timed(lambda: cli(home, "add", "empty", "Eggs")) for _ in range(5)))
        postgres_server.stop(home)
        record("cold", timed(lambda: cli(home, "add", "empty", "Eggs")))
    return {name: statistics.median(values) for name, values in figures.items()}


def table(figures: dict[str, float], runs: int, writes: int, size: int) -> str:
    """Return the markdown table of `figures` against the targets."""
    ratio = figures["big"] / figures["empty"]
    warm, cold, fresh = figures["warm"], figures["cold"], figures["fresh"]
    rows = [
        ("local write commit p50", "≤ 2 ms", f"{figures['p50']:.2f} ms", figures["p50"] <= 2),
        ("local write commit p99", "", f"{figures['p99']:.2f} ms", None),
        ("`shoplist add`, warm store (wall)", "≤ 250 ms", f"{warm:.0f} ms", warm <= 250),
        ("`shoplist add`, cold store: server stopped (wall)", "≤ 3 s", f"{cold:.0f} ms", cold <= 3000),
        ("first command in a new home: initdb + start (wall)", "≤ 3 s", f"{fresh:.0f} ms", fresh <= 3000),
        ("write into an empty list", "", f"{figures['empty']:.2f} ms", None),
        (
            f"write into a {size:,}-item list",
            "≤ 3x empty",
            f"{figures['big']:.2f} ms ({ratio:.2f}x)",
            ratio <= 3,
        ),
    ]
    lines = [
        f"Median of {runs} runs ({writes} writes per latency sample).",
        "",
        "| measure | target | measured | met |",
        "|---|---|---|---|",
    ]
    verdicts = {True: "yes", False: "**no**", None: ""}
    lines += [f"| {name} | {target} | {value} | {verdicts[met]} |" for name, target, value, met in rows]
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark in a throwaway home and print the table."""
    os.environ["SHOPLIST_KEYRING"] = "file"  # throwaway homes: never the desktop's keyring
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--size", type=int, default=10_000)
    options = parser.parse_args()
    home = Home(Path(tempfile.mkdtemp(prefix="shoplist-bench-")))
    try:
        print(table(measure(home, options.runs, options.writes, options.size), options.runs, options.writes,
                    options.size))  # fmt: skip
    finally:
        postgres_server.stop(home)
        shutil.rmtree(home.path, ignore_errors=True)


if __name__ == "__main__":
    main()
