"""Ring scale benchmark on the deterministic simulator: scenarios (a)-(f) of docs/scale.md, each printed as
a table with its targets, and the plots in docs/scale/. `--quick` runs CI sizes."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.sim import scenarios
from server.sim.cluster import ClusterSettings, SimCluster
from server.sim.network import LinkModel
from server.sim.scenarios import AntiEntropyRun, Bootstrap, Crash, Join, Load, RunStats

PLOTS = Path(__file__).resolve().parent.parent / "docs" / "scale"
T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs."""

    sweep: tuple[int, ...]
    partitions: int
    load_nodes: int  # (d)
    split_nodes: int  # (e)
    split_seconds: float
    restart_gap: float
    repair_nodes: int
    repair_lists: int
    settle_seconds: float


FULL = Sizes((10, 30, 100, 300, 1000), 16_384, 100, 1000, 60.0, 3.0, 100, 1_000_000, 30.0)
QUICK = Sizes((10, 50), 1_024, 20, 20, 20.0, 3.0, 50, 20_000, 30.0)


@dataclass
class Speed:
    """Simulated events per second of CPU and of wall time, over every run."""

    events: int = 0
    cpu: float = 0.0
    wall: float = 0.0
    runs: list[tuple[str, int, float]] = field(default_factory=list)

    def timed(self, name: str, run: Callable[[], T]) -> T:
        """Run `run`, adding its events and times; return its result."""
        cpu, wall = time.process_time(), time.perf_counter()
        result = run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stats: RunStats = result.run  # type: ignore[attr-defined]
        self.events += stats.events
        self.cpu += cpu
        self.wall += wall
        self.runs.append((name, stats.events, cpu))
        print(
            f"  {name}: seed {stats.seed}, {stats.events:,} events, {stats.virtual_seconds:.1f} s virtual, "
            f"{cpu:.1f} s CPU, trace {stats.trace[:16]}",
            file=sys.stderr,
        )
        return result


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return a Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of `samples` (nan when empty)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


# ----- scenarios ---------------------------------------------------------------------------------------


def run_bootstrap(sizes: Sizes, seed: int, speed: Speed) -> list[Bootstrap]:
    results = [
        speed.timed(f"a n={n}", lambda n=n: scenarios.bootstrap(n, sizes.partitions, seed))
        for n in sizes.sweep
    ]
    print(f"\n### (a) Bootstrap ownership, Q = {sizes.partitions:,}, N = 3\n")
    print(
        table(
            [
                "n",
                "fair Q/n",
                "owned min",
                "owned max",
                "worst vs fair",
                "replica min",
                "replica max",
                "quiet gossip msgs/node/round",
                "quiet gossip B/node/round",
                "full-table gossip B/node/round",
            ],
            [
                [
                    r.nodes,
                    r.fair,
                    r.owned_min,
                    r.owned_max,
                    f"{r.worst_deviation():.1%}",
                    r.replica_min,
                    r.replica_max,
                    r.quiet_messages_per_node_round,
                    r.quiet_bytes_per_node_round,
                    r.legacy_bytes_per_node_round,
                ]
                for r in results
            ],
        )
    )
    return results


def run_join(sizes: Sizes, seed: int, speed: Speed) -> list[Join]:
    results = [
        speed.timed(f"b n={n}", lambda n=n: scenarios.join(n, sizes.partitions, seed)) for n in sizes.sweep
    ]
    print(f"\n### (b) One node joins, Q = {sizes.partitions:,}\n")
    print(
        table(
            [
                "n",
                "rounds to agree",
                "target 2·log2(n)",
                "virtual s",
                "partitions moved",
                "optimal Q/(n+1)",
                "moved / optimal (id sorts last)",
                "id sorts first",
                "id sorts in the middle",
                "target",
                "replica copies moved",
                "gossip B/node/round",
            ],
            [
                [
                    r.nodes,
                    r.rounds_to_agree,
                    2 * math.log2(r.nodes),
                    r.seconds_to_agree,
                    r.moved,
                    r.optimal,
                    r.moved / r.optimal,
                    r.moved_if_id_sorts_first / r.optimal,
                    r.moved_if_id_sorts_middle / r.optimal,
                    "≤ 1.10",
                    r.replica_moves,
                    r.gossip_bytes_per_node_round,
                ]
                for r in results
            ],
        )
    )
    return results


def run_crash(sizes: Sizes, seed: int, speed: Speed) -> list[Crash]:
    results = [
        speed.timed(f"c n={n}", lambda n=n: scenarios.crash(n, sizes.partitions, seed)) for n in sizes.sweep
    ]
    print("\n### (c) 10% crash at once, 1% loss, jittered latency (times in heartbeat intervals)\n")
    print(
        table(
            [
                "n",
                "crashed",
                "routed around p50",
                "p99",
                "declared dead p50",
                "p99",
                "pairs undetected",
                "false suspicions",
                "per probe",
                "refutations",
                "preference lists restored",
            ],
            [
                [
                    r.nodes,
                    r.crashed,
                    percentile(r.suspect_rounds, 0.5),
                    percentile(r.suspect_rounds, 0.99),
                    percentile(r.dead_rounds, 0.5),
                    percentile(r.dead_rounds, 0.99),
                    r.undetected_pairs,
                    r.false_suspicions,
                    f"{r.false_suspicion_rate():.4%}",
                    r.refutations,
                    f"{r.preference_lists_restored:.1%}",
                ]
                for r in results
            ],
        )
    )
    return results


def run_load(sizes: Sizes, seed: int, speed: Speed) -> tuple[Load, Load]:
    n, m, settle = sizes.load_nodes, sizes.split_nodes, sizes.settle_seconds
    restart = speed.timed(
        f"d n={n}",
        lambda: scenarios.rolling_restart(
            n, sizes.partitions, seed, gap=sizes.restart_gap, settle_limit=settle
        ),
    )
    split = speed.timed(
        f"e n={m}",
        lambda: scenarios.split(
            m, sizes.partitions, seed, split_for=sizes.split_seconds, settle_limit=settle
        ),
    )
    print(
        f"\n### (d) rolling restart, n = {n}, one node every {sizes.restart_gap:g} s, and "
        f"(e) {sizes.split_seconds:g} s 50/50 split, n = {m}; 20 writes/s\n"
    )
    print(
        table(
            [
                "scenario",
                "n",
                "writes sent",
                "acknowledged",
                "refused",
                "acknowledged lost",
                "hints peak",
                "hints left",
                "on < N owners at end",
                "below read quorum",
                "s to read-safe",
                "s to all N agree",
            ],
            [
                [
                    name,
                    r.nodes,
                    r.sent,
                    r.acknowledged,
                    r.refused,
                    r.lost,
                    r.hints_peak,
                    r.hints_left,
                    r.under_replicated,
                    r.below_read_quorum,
                    _maybe(r.seconds_to_read_safe),
                    _maybe(r.seconds_to_agree),
                ]
                for name, r in (("(d) rolling restart", restart), ("(e) split + heal", split))
            ],
        )
    )
    return restart, split


def run_anti_entropy(sizes: Sizes, seed: int, speed: Speed) -> AntiEntropyRun:
    n, lists = sizes.repair_nodes, sizes.repair_lists
    result = speed.timed(f"f n={n}", lambda: scenarios.anti_entropy(n, lists, sizes.partitions, seed))
    print(f"\n### (f) anti-entropy, n = {n}, {lists:,} lists, 0.1% diverged, Q = {sizes.partitions:,}\n")
    full = lists * 3 * result.copy_bytes
    print(
        table(
            [
                "lists",
                "copies that missed a write",
                "s until every copy agrees",
                "digest msgs",
                "digest bytes",
                "repair msgs",
                "repair bytes",
                "bytes per differing list",
                "all copies shipped once (bytes)",
                "lists repaired",
                "exchanges",
                "in sync: msgs/s",
                "in sync: B/s per node",
            ],
            [
                [
                    result.lists,
                    result.diverged,
                    _maybe(result.seconds_to_agree),
                    result.digest_messages,
                    result.digest_bytes,
                    result.repair_messages,
                    result.repair_bytes,
                    result.bytes_per_repaired_list(),
                    full,
                    result.lists_repaired,
                    result.exchanges,
                    result.in_sync_messages_per_second,
                    result.in_sync_bytes_per_second / result.nodes,
                ]
            ],
        )
    )
    return result


def _maybe(value: float | None) -> str:
    return "not within the settle limit" if value is None else f"{value:.0f}"


@dataclass(frozen=True)
class Throughput:
    """Events the event loop ran per CPU second on a large ring, setup excluded."""

    nodes: int
    events: int
    cpu: float

    def rate(self) -> float:
        """Return events per CPU second."""
        return self.events / max(self.cpu, 1e-9)


def run_throughput(nodes: int, partitions: int, seed: int) -> Throughput:
    """Time only the event loop: `nodes` nodes, 1% loss, 20 quiet rounds, 10% crash, 30 more rounds."""
    link = LinkModel(loss=0.01, jitter=0.003)
    cluster = SimCluster(ClusterSettings(seed=seed, partitions=partitions, link=link))
    names = cluster.bootstrap(nodes)
    interval = cluster.gossip_settings.interval
    start_events, cpu = cluster.queue.processed, time.process_time()
    cluster.queue.run_until(20 * interval)
    for name in names[::10]:  # every tenth node
        cluster.crash(name)
    cluster.queue.run_until(50 * interval)
    result = Throughput(nodes, cluster.queue.processed - start_events, time.process_time() - cpu)
    print(
        f"\n### Simulator speed\n\n{result.events:,} events of a {nodes}-node ring (1% loss, 10% crashed) "
        f"in {result.cpu:.1f} s CPU: {result.rate():,.0f} events/s",
        flush=True,
    )
    return result


# ----- targets -----------------------------------------------------------------------------------------


def targets(
    a: list[Bootstrap],
    b: list[Join],
    c: list[Crash],
    d: Load | None,
    e: Load | None,
    speed: Speed,
    throughput: Throughput,
) -> None:
    """Print each target at the largest n run, met or not."""
    rows: list[list[Any]] = []
    big_a, big_b, big_c = a[-1], b[-1], c[-1]
    rows.append(
        [
            f"ownership within ±10% of fair (n={big_a.nodes})",
            f"{big_a.worst_deviation():.1%}",
            big_a.worst_deviation() <= 0.10,
        ]
    )
    bound = 2 * math.log2(big_b.nodes)
    rows.append(
        [
            f"join: views agree within 2·log2(n) = {bound:.1f} rounds",
            f"{big_b.rounds_to_agree:.2f}",
            big_b.rounds_to_agree <= bound,
        ]
    )
    for where, moved in (
        ("last", big_b.moved),
        ("first", big_b.moved_if_id_sorts_first),
        ("in the middle", big_b.moved_if_id_sorts_middle),
    ):
        rows.append(
            [
                f"join: partitions moved ≤ 1.1 x optimal (new id sorts {where})",
                f"{moved / big_b.optimal:.2f}x",
                moved <= 1.1 * big_b.optimal,
            ]
        )
    routed, dead = percentile(big_c.suspect_rounds, 0.99), percentile(big_c.dead_rounds, 0.99)
    rows.append(["detection p99 ≤ 10 intervals (routed around)", f"{routed:.2f}", routed <= 10])
    rows.append(["detection p99 ≤ 10 intervals (declared dead everywhere)", f"{dead:.2f}", dead <= 10])
    rate = big_c.false_suspicion_rate()
    rows.append(["false suspicions ≤ 0.1% at 1% loss", f"{rate:.4%}", rate <= 0.001])
    quiet = [r.quiet_bytes_per_node_round for r in a]
    rows.append(
        [
            "quiet gossip per node per round O(1) in n",
            f"{min(quiet):.0f}-{max(quiet):.0f} B for n = {a[0].nodes}-{a[-1].nodes}",
            max(quiet) <= 1.5 * min(quiet),
        ]
    )
    for name, load in (("(d)", d), ("(e)", e)):
        if load is not None:
            rows.append([f"{name}: 0 acknowledged writes lost", str(load.lost), load.lost == 0])
    rate = throughput.rate()
    rows.append(
        [
            f"≥ 100k simulated events/s (event loop, n={throughput.nodes}, one core)",
            f"{rate:,.0f}",
            rate >= 100_000,
        ]
    )
    print("\n### Targets\n")
    print(table(["target", "measured", "met"], [[t, m, "yes" if ok else "**no**"] for t, m, ok in rows]))
    print(
        f"\nAll scenarios, setup and checks included: {speed.events:,} events, {speed.cpu:.1f} s CPU, "
        f"{speed.wall:.1f} s wall"
    )


# ----- plots -------------------------------------------------------------------------------------------


def plot(
    a: list[Bootstrap], b: list[Join], c: list[Crash], d: Load | None, e: Load | None, folder: Path
) -> list[Path]:
    """Write the PNGs; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(figure: Any, name: str) -> None:
        path = folder / name
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        pyplot.close(figure)
        written.append(path)

    figure, axes = pyplot.subplots(figsize=(6, 4))
    sizes = [r.nodes for r in b]
    axes.plot(sizes, [r.rounds_to_agree for r in b], "o-", label="measured: every view agrees")
    axes.plot(sizes, [2 * math.log2(n) for n in sizes], "--", label="target 2·log2(n)")
    axes.set_xscale("log")
    axes.set_xlabel("nodes n (log)")
    axes.set_ylabel("gossip rounds after the join")
    axes.set_title("One join: rounds until every view agrees")
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    save(figure, "join_convergence.png")

    big = a[-1]
    figure, axes = pyplot.subplots(figsize=(6, 4))
    low, high = min(big.owned), max(big.owned)
    axes.hist(big.owned, bins=range(low, high + 2), align="left", rwidth=0.8)
    for bound in (0.9 * big.fair, 1.1 * big.fair):
        axes.axvline(bound, color="red", linestyle="--")
    axes.axvline(big.fair, color="black", linestyle=":")
    axes.set_xlabel(f"partitions owned (fair {big.fair:.1f}, red: ±10%)")
    axes.set_ylabel("nodes")
    axes.set_title(f"Ownership at n = {big.nodes}, Q = {big.partitions:,}")
    save(figure, "ownership.png")

    crash = c[-1]
    figure, axes = pyplot.subplots(figsize=(6, 4))
    for samples, label in (
        (crash.suspect_rounds, "routed around (suspect)"),
        (crash.dead_rounds, "declared dead"),
    ):
        ordered = sorted(samples)
        total = crash.crashed * (crash.nodes - crash.crashed)
        axes.step(ordered, [(i + 1) / total for i in range(len(ordered))], where="post", label=label)
    axes.axvline(10, color="red", linestyle="--", label="target p99 ≤ 10")
    axes.set_xlabel("heartbeat intervals after the crash")
    axes.set_ylabel("share of (observer, crashed node) pairs")
    axes.set_title(f"Failure detection, n = {crash.nodes}, {crash.crashed} crashed, 1% loss")
    axes.legend()
    axes.grid(True, alpha=0.3)
    save(figure, "detection_cdf.png")

    for load, name, title in (
        (d, "rolling_restart.png", "(d) rolling restart under load"),
        (e, "split_heal.png", "(e) 50/50 split, then heal"),
    ):
        if load is None:
            continue
        figure, axes = pyplot.subplots(figsize=(7, 4))
        at = [s.at for s in load.samples]
        axes.plot(at, [s.hints for s in load.samples], label="hints outstanding")
        axes.plot(at, [s.under_replicated for s in load.samples], label="acknowledged, on < N owners")
        axes.plot(at, [s.lost for s in load.samples], label="acknowledged and lost", linewidth=2.5)
        axes.set_xlabel("virtual seconds")
        axes.set_ylabel("writes")
        axes.set_title(f"{title}, n = {load.nodes}")
        axes.legend(loc="upper right")
        axes.grid(True, alpha=0.3)
        save(figure, name)
    return written


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print the tables, write the plots; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI sizes (n = 10, 50; Q = 1,024)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", default="", help="comma-separated n for (a)-(c), e.g. 10,100")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--plots", type=Path, default=PLOTS)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.sizes:
        sizes = Sizes(
            tuple(int(n) for n in args.sizes.split(",")),
            sizes.partitions,
            sizes.load_nodes,
            sizes.split_nodes,
            sizes.split_seconds,
            sizes.restart_gap,
            sizes.repair_nodes,
            sizes.repair_lists,
            sizes.settle_seconds,
        )
    print(f"# ring_sim seed {args.seed}, {'quick' if args.quick else 'full'} sizes")
    speed = Speed()
    a = run_bootstrap(sizes, args.seed, speed)
    b = run_join(sizes, args.seed, speed)
    c = run_crash(sizes, args.seed, speed)
    d, e = run_load(sizes, args.seed, speed)
    f = run_anti_entropy(sizes, args.seed, speed)
    throughput = run_throughput(sizes.sweep[-1], sizes.partitions, args.seed)
    targets(a, b, c, d, e, speed, throughput)
    print(f"\n(f): {f.lists_repaired:,} repairs, {f.exchanges_failed} exchanges failed")
    print("\n### Events per CPU second, per scenario (setup and checks included)\n")
    print(
        table(
            ["scenario", "events", "CPU s", "events/s", "target"],
            [[name, events, cpu, events / max(cpu, 1e-9), "≥ 100,000"] for name, events, cpu in speed.runs],
        )
    )
    if args.no_plots:
        return 0
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("\nno plots: matplotlib is missing (pip install -e '.[bench]')")
        return 0
    for path in plot(a, b, c, d, e, args.plots):
        print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
