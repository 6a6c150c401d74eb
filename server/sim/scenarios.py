"""The scale scenarios of docs/scale.md run on the simulator: bootstrap ownership, one join, a mass crash
under loss, a rolling restart under load, a healed 50/50 split, and anti-entropy over many lists."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field

import msgpack

from protocol.messages import Kind, Message
from server.membership import Liveness, MemberRecord
from server.ring import Ring, build_ring
from server.sim.cluster import ClusterSettings, SimCluster, node_name
from server.sim.network import LinkModel
from server.sim.repair import RepairWorld, Traffic, base_state, wire_bytes

SAMPLES_PER_ROUND = 4


# ----- shared ------------------------------------------------------------------------------------------


@dataclass
class RunStats:
    """What every scenario reports about the run itself."""

    seed: int
    events: int
    virtual_seconds: float
    trace: str


def _stats(cluster: SimCluster) -> RunStats:
    queue = cluster.queue
    return RunStats(cluster.seed, queue.processed, queue.now, queue.trace_hash())


def _round(cluster: SimCluster) -> float:
    return cluster.gossip_settings.interval


def _run_rounds(cluster: SimCluster, rounds: float) -> None:
    cluster.queue.run_until(cluster.queue.now + rounds * _round(cluster))


def _gossip_totals(cluster: SimCluster) -> tuple[int, int]:
    traffic = cluster.network.traffic
    kinds = [kind for kind in traffic.messages if kind.startswith("gossip.")]
    return sum(traffic.messages[k] for k in kinds), sum(traffic.bytes[k] for k in kinds)


def legacy_gossip_bytes_per_round(nodes: int) -> int:
    """Return what full-table gossip (the protocol the nodes ran before this one) sends per node per round
    on an `nodes` cluster: its whole table of `[id, endpoint, publish, incarnation, heartbeat]` records
    to every peer, and as many tables back."""
    old_records = [[r.node_id, r.endpoint, r.publish, r.incarnation, 0] for r in _records(nodes)]
    table = len(msgpack.packb({"members": old_records}))
    return 2 * (nodes - 1) * table


def _records(nodes: int) -> list[MemberRecord]:
    return [
        MemberRecord(node_name(i), f"tcp://10.0.{i // 250}.{i % 250}:7101", f"tcp://10.0.0.{i}:7102", 1)
        for i in range(nodes)
    ]


# ----- (a) bootstrap -----------------------------------------------------------------------------------


@dataclass
class Bootstrap:
    """(a) Ownership after n nodes start, and the gossip cost of a quiet cluster."""

    nodes: int
    partitions: int
    fair: float
    owned_min: int
    owned_max: int
    replica_min: int
    replica_max: int
    owned: list[int]
    quiet_messages_per_node_round: float
    quiet_bytes_per_node_round: float
    legacy_bytes_per_node_round: int
    run: RunStats

    def worst_deviation(self) -> float:
        """Return the largest |owned - fair| / fair over nodes."""
        return max(abs(self.owned_min - self.fair), abs(self.owned_max - self.fair)) / self.fair


def bootstrap(nodes: int, partitions: int, seed: int = 1, quiet_rounds: int = 10) -> Bootstrap:
    """Start `nodes` nodes on `partitions` partitions; measure ownership and quiet gossip."""
    cluster = SimCluster(ClusterSettings(seed=seed, partitions=partitions))
    names = cluster.bootstrap(nodes)
    ring = cluster.ring_for(names)
    owned = Counter(ring.owners)
    replicas = _replica_counts(ring, cluster.config.replicas)
    _run_rounds(cluster, 2)
    messages_before, bytes_before = _gossip_totals(cluster)
    _run_rounds(cluster, quiet_rounds)
    messages_after, bytes_after = _gossip_totals(cluster)
    per = nodes * quiet_rounds
    return Bootstrap(
        nodes,
        partitions,
        partitions / nodes,
        min(owned.values()),
        max(owned.values()),
        min(replicas.values()),
        max(replicas.values()),
        sorted(owned[name] for name in names),
        (messages_after - messages_before) / per,
        (bytes_after - bytes_before) / per,
        legacy_gossip_bytes_per_round(nodes),
        _stats(cluster),
    )


def _replica_counts(ring: Ring, replicas: int) -> Counter[str]:
    """Return, per node, how many partitions it holds a replica of (it is in their preference list)."""
    counts: Counter[str] = Counter()
    for partition in range(ring.partitions):
        counts.update(itertools.islice(ring.iter_successors_from(partition), replicas))
    return counts


# ----- (b) one join ------------------------------------------------------------------------------------


@dataclass
class Join:
    """(b) One node joins an n-node ring."""

    nodes: int
    partitions: int
    rounds_to_agree: float
    seconds_to_agree: float
    moved: int
    optimal: float
    replica_moves: int
    moved_if_id_sorts_first: int
    moved_if_id_sorts_middle: int
    gossip_bytes_per_node_round: float
    run: RunStats


def join(nodes: int, partitions: int, seed: int = 1, limit_rounds: int = 200) -> Join:
    """Bootstrap `nodes`, let one more join through two seeds, and time agreement."""
    cluster = SimCluster(ClusterSettings(seed=seed, partitions=partitions))
    names = cluster.bootstrap(nodes)
    _run_rounds(cluster, 2)
    _, bytes_before = _gossip_totals(cluster)
    newcomer = node_name(nodes)
    start = cluster.queue.now
    cluster.join(newcomer, names[:2])
    sample = _round(cluster) / SAMPLES_PER_ROUND
    while not (cluster.views_agree() and len(cluster.nodes[names[-1]].membership.table) > nodes):
        if cluster.queue.now - start > limit_rounds * _round(cluster):
            break
        cluster.queue.run_until(cluster.queue.now + sample)
    elapsed = cluster.queue.now - start
    _, bytes_after = _gossip_totals(cluster)
    before, after = cluster.ring_for(names), cluster.ring_for([*names, newcomer])
    first = cluster.ring_for([*names, "a-joiner"])
    middle = cluster.ring_for([*names, f"{names[nodes // 2]}-joiner"])
    replicas = cluster.config.replicas
    return Join(
        nodes,
        partitions,
        elapsed / _round(cluster),
        elapsed,
        _moved(before, after),
        partitions / (nodes + 1),
        _replica_moves(before, after, replicas),
        _moved(before, first),
        _moved(before, middle),
        (bytes_after - bytes_before) / (nodes + 1) / max(elapsed / _round(cluster), 1e-9),
        _stats(cluster),
    )


def _moved(before: Ring, after: Ring) -> int:
    return sum(old != new for old, new in zip(before.owners, after.owners, strict=True))


def _replica_moves(before: Ring, after: Ring, replicas: int) -> int:
    """Return how many (partition, replica) copies land on a node that did not hold them."""
    moves = 0
    for partition in range(before.partitions):
        old = set(itertools.islice(before.iter_successors_from(partition), replicas))
        moves += sum(
            node not in old for node in itertools.islice(after.iter_successors_from(partition), replicas)
        )
    return moves


# ----- (c) mass crash under loss -----------------------------------------------------------------------


@dataclass
class Crash:
    """(c) 10% of the nodes crash at once under message loss and jitter."""

    nodes: int
    crashed: int
    loss: float
    suspect_rounds: list[float]  # per (observer, crashed) pair: rounds until it stopped routing there
    dead_rounds: list[float]  # per pair: rounds until it held the node dead
    undetected_pairs: int
    false_suspicions: int
    probes_of_live: int
    refutations: int
    preference_lists_restored: float
    run: RunStats

    def false_suspicion_rate(self) -> float:
        """Return false suspicions per probe of a live node."""
        return self.false_suspicions / max(self.probes_of_live, 1)


def crash(
    nodes: int,
    partitions: int,
    seed: int = 1,
    fraction: float = 0.1,
    loss: float = 0.01,
    limit_rounds: int = 60,
) -> Crash:
    """Bootstrap `nodes`, crash `fraction` of them at once, and time each observer's detection."""
    link = LinkModel(loss=loss, jitter=0.003)
    cluster = SimCluster(ClusterSettings(seed=seed, partitions=partitions, link=link))
    names = cluster.bootstrap(nodes)
    _run_rounds(cluster, 5)
    victims = sorted(cluster.random.sample(names, max(1, round(nodes * fraction))))
    for victim in victims:
        cluster.crash(victim)
    start = cluster.queue.now
    observers = [name for name in names if name not in victims]
    suspect, dead = _detect(cluster, observers, victims, start, limit_rounds)
    counters = [cluster.nodes[name].gossip.counters for name in observers]
    false = sum(c.suspected[name] for c in counters for name in observers)
    probes = sum(c.probes for c in counters)
    return Crash(
        nodes,
        len(victims),
        loss,
        sorted(suspect.values()),
        sorted(dead.values()),
        len(observers) * len(victims) - len(dead),
        false,
        probes,
        sum(c.refutations for c in counters),
        _restored(cluster, observers, victims),
        _stats(cluster),
    )


def _detect(
    cluster: SimCluster, observers: list[str], victims: list[str], start: float, limit_rounds: int
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """Sample every observer's view until each holds every victim dead (or the limit passes)."""
    interval = _round(cluster)
    waiting = {(o, v) for o in observers for v in victims}
    suspect: dict[tuple[str, str], float] = {}
    dead: dict[tuple[str, str], float] = {}
    while waiting and cluster.queue.now - start < limit_rounds * interval:
        cluster.queue.run_until(cluster.queue.now + interval / SAMPLES_PER_ROUND)
        elapsed = (cluster.queue.now - start) / interval
        for pair in sorted(waiting):
            state = cluster.nodes[pair[0]].membership.liveness(pair[1])
            if state is not Liveness.ALIVE and pair not in suspect:
                suspect[pair] = elapsed
            if state is Liveness.DEAD:
                dead[pair] = elapsed
                waiting.discard(pair)
    return suspect, dead


def _restored(cluster: SimCluster, observers: list[str], victims: list[str], keys: int = 200) -> float:
    """Return the share of (observer, key) pairs whose live preference list avoids every victim."""
    gone = set(victims)
    good = 0
    for observer in observers:
        node = cluster.nodes[observer]
        ring = node.ring.ring
        for key in range(keys):
            live = (n for n in ring.iter_successors(f"list-{key}") if node.membership.is_up(n))
            good += not gone.intersection(itertools.islice(live, cluster.config.replicas))
    return good / (len(observers) * keys)


# ----- (d) rolling restart and (e) split under load ----------------------------------------------------


@dataclass
class Sample:
    """The cluster at one moment of a loaded scenario."""

    at: float
    acknowledged: int
    lost: int
    under_replicated: int
    below_read_quorum: int
    hints: int


@dataclass
class Load:
    """(d) or (e): acknowledged writes, losses and hints over time."""

    nodes: int
    sent: int
    acknowledged: int
    refused: int
    lost: int
    under_replicated: int
    below_read_quorum: int
    hints_peak: int
    hints_left: int
    seconds_to_agree: float | None
    seconds_to_read_safe: float | None
    samples: list[Sample] = field(default_factory=list)
    run: RunStats | None = None


def _loaded_cluster(
    nodes: int,
    partitions: int,
    seed: int,
    proxies: int,
    rate: float,
    lists: int,
    stop_at: float,
    *,
    refused: bool,
) -> SimCluster:
    link = LinkModel(loss=0.01, jitter=0.003)
    cluster = SimCluster(
        ClusterSettings(seed=seed, partitions=partitions, link=link, refused_when_down=refused)
    )
    cluster.bootstrap(nodes)
    for index in range(proxies):
        proxy = cluster.add_proxy(f"proxy{index}")
        cluster.add_client(f"client{index}", proxy, rate / proxies, lists, stop_at)
    return cluster


class _Sampler:
    """Samples acknowledged, lost and under-replicated writes and hints once per virtual second."""

    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self.samples: list[Sample] = []
        self._complete: set[tuple[str, str]] = set()

    def run_until(self, until: float) -> None:
        """Run the cluster to `until`, sampling each second."""
        while self.cluster.queue.now < until:
            self.cluster.queue.run_until(min(until, self.cluster.queue.now + 1.0))
            self.samples.append(self.sample())

    def sample(self) -> Sample:
        """Return the cluster's state now."""
        lost = under = below = 0
        config = self.cluster.config
        safe = config.replicas - config.read_quorum + 1  # copies every read quorum meets
        acknowledged = self.cluster.acknowledged()
        for write in acknowledged:
            if write in self._complete:
                continue
            held, hinted = self.cluster.write_copies(*write)
            if held == config.replicas:
                self._complete.add(write)
            elif held + hinted == 0:
                lost += 1
            else:
                under += 1
                below += held < safe
        hints = self.cluster.hints_outstanding()
        return Sample(self.cluster.queue.now, len(acknowledged), lost, under, below, hints)

    def agreed(self) -> bool:
        """Return whether every acknowledged write is on all of its N owners."""
        last = self.samples[-1]
        return last.lost == 0 and last.under_replicated == 0

    def read_safe(self) -> bool:
        """Return whether every acknowledged write is on enough owners for any read quorum, hint-free."""
        last = self.samples[-1]
        return last.lost == 0 and last.below_read_quorum == 0 and last.hints == 0


def _load_result(cluster: SimCluster, sampler: _Sampler, since: float, limit: float) -> Load:
    agree, read_safe = _settle(sampler, since, limit)
    last = sampler.samples[-1]
    return Load(
        len(cluster.nodes),
        sum(c.sent for c in cluster.clients),
        last.acknowledged,
        sum(c.refused for c in cluster.clients),
        last.lost,
        last.under_replicated,
        last.below_read_quorum,
        max(s.hints for s in sampler.samples),
        last.hints,
        agree,
        read_safe,
        sampler.samples,
        _stats(cluster),
    )


def _settle(sampler: _Sampler, since: float, limit: float) -> tuple[float | None, float | None]:
    """Run until every acknowledged write is on all its owners, or `limit` s pass; return how long after
    `since` that took, and how long until every write was safe for any read quorum without hints."""
    cluster = sampler.cluster
    read_safe: float | None = None
    while cluster.queue.now < since + limit:
        sampler.run_until(cluster.queue.now + 1.0)
        if read_safe is None and sampler.read_safe():
            read_safe = cluster.queue.now - since
        if sampler.agreed():
            return cluster.queue.now - since, read_safe
    return None, read_safe


def rolling_restart(
    nodes: int,
    partitions: int,
    seed: int = 1,
    down_for: float = 2.0,
    gap: float = 3.0,
    rate: float = 20.0,
    lists: int = 200,
    settle_limit: float = 120.0,
) -> Load:
    """Restart every node in turn (down `down_for` s, one every `gap` s) under client load."""
    warmup = 3.0
    stop_at = warmup + nodes * gap + down_for
    cluster = _loaded_cluster(nodes, partitions, seed, 2, rate, lists, stop_at, refused=True)
    sampler = _Sampler(cluster)
    sampler.run_until(warmup)
    for index, name in enumerate(sorted(cluster.nodes)):
        _schedule_restart(cluster, name, warmup + index * gap, down_for)
    sampler.run_until(stop_at)
    return _load_result(cluster, sampler, stop_at, settle_limit)


def _schedule_restart(cluster: SimCluster, name: str, at: float, down_for: float) -> None:
    def stop() -> None:
        cluster.crash(name)

    def start() -> None:
        cluster.restart(name)

    cluster.queue.at(at, f"stop {name}", stop)
    cluster.queue.at(at + down_for, f"start {name}", start)


def split(
    nodes: int,
    partitions: int,
    seed: int = 1,
    split_for: float = 60.0,
    rate: float = 20.0,
    lists: int = 200,
    settle_limit: float = 120.0,
) -> Load:
    """Split the ring into two halves, each with a proxy and a client, for `split_for` s, then heal."""
    start = 3.0
    heal = start + split_for
    cluster = _loaded_cluster(nodes, partitions, seed, 2, rate, lists, heal, refused=False)
    names = sorted(cluster.nodes)
    halves = [set(names[0::2]) | {"proxy0"}, set(names[1::2]) | {"proxy1"}]
    cluster.network.split(start, heal, halves)
    sampler = _Sampler(cluster)
    sampler.run_until(heal)
    return _load_result(cluster, sampler, heal, settle_limit)


# ----- (f) anti-entropy --------------------------------------------------------------------------------

REPAIR_KINDS = {"fetch", "state", "replicate", "ok"}
DIGEST_KINDS = {"digest", "digest_reply"}


@dataclass
class AntiEntropyRun:
    """(f) Anti-entropy repairs lists one replica got and the others missed."""

    nodes: int
    lists: int
    partitions: int
    diverged: int
    seconds_to_agree: float | None
    digest_messages: int
    digest_bytes: int
    repair_messages: int
    repair_bytes: int
    lists_repaired: int
    exchanges: int
    exchanges_failed: int
    in_sync_messages_per_second: float
    in_sync_bytes_per_second: float
    copy_bytes: int  # one list's state on the wire: what shipping every copy would cost per copy
    run: RunStats

    def bytes_per_repaired_list(self) -> float:
        """Return all bytes until agreement over the lists that differed."""
        return (self.digest_bytes + self.repair_bytes) / max(self.diverged, 1)


def anti_entropy(
    nodes: int,
    lists: int,
    partitions: int,
    seed: int = 1,
    divergence: float = 0.001,
    limit: float = 300.0,
    in_sync_window: float = 10.0,
) -> AntiEntropyRun:
    """Load `lists` lists on `nodes` nodes (N copies each), give one copy of `divergence` of them a
    write the others missed, run every node's anti-entropy until all copies agree, then measure the
    traffic of `in_sync_window` s with nothing left to repair."""
    replicas = 3
    world = RepairWorld(build_ring([node_name(i) for i in range(nodes)], partitions), replicas, seed)
    list_ids = world.load(lists)
    chooser = random.Random(f"{seed}:diverge")
    diverged = sorted(chooser.sample(list_ids, max(1, round(lists * divergence))))
    world.diverge(diverged, chooser)
    world.start()
    agreed: float | None = None
    while world.queue.now < limit:
        world.queue.run_until(world.queue.now + 1.0)
        if world.agree(diverged):
            agreed = world.queue.now
            break
    digest, repair = Traffic.of(world.network, DIGEST_KINDS), Traffic.of(world.network, REPAIR_KINDS)
    totals = world.totals()
    before = Traffic.of(world.network)
    world.queue.run_until(world.queue.now + in_sync_window)
    after = Traffic.of(world.network)
    sample = Message(Kind.STATE, "f1", {}, base_state(list_ids[0]).to_bytes())
    return AntiEntropyRun(
        nodes,
        lists,
        partitions,
        len(diverged),
        agreed,
        digest.messages,
        digest.bytes,
        repair.messages,
        repair.bytes,
        totals["lists_repaired"],
        totals["exchanges"],
        totals["exchanges_failed"],
        (after.messages - before.messages) / in_sync_window,
        (after.bytes - before.bytes) / in_sync_window,
        wire_bytes(sample),
        RunStats(seed, world.queue.processed, world.queue.now, world.queue.trace_hash()),
    )
