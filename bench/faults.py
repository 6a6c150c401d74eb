"""Jepsen-style fault harness for the ring: a cluster of nodes (each in its own network namespace with its
own PostgreSQL) and proxies, clients writing unique items to shared lists, and a random schedule of faults
per seed: SIGKILL and restart of nodes and proxies, network partitions between nodes, slow links, joins and
leaves under load. After healing it checks that every acknowledged write is on every replica and visible
to every client, and measures the time to converge. Every schedule is reproducible from its seed; a failing
one prints its seed and history.

Network faults are real packet loss, made with the kernel (needs root: network namespaces, veth pairs and
a bridge; `iproute2` is installed with apt-get when missing):
  partition  each side gets a permanent neighbour entry for the other side's address pointing at a MAC no
             host has, so frames go nowhere and TCP sees silence, as on a cut cable;
  slow link  a token-bucket qdisc (tc tbf, 256 kbit/s, 200 ms queue) on the node's interface. This
             kernel has no netem, so a slow link is a thin pipe rather than added delay.
Without root the harness runs every node on 127.0.0.1, says so, and skips partitions and slow links.

  python bench/faults.py --schedules 100 --seed 1            # the long run (summary table at the end)
  python bench/faults.py --schedules 1 --seed 1234 --verbose  # replay one schedule
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crdt import ShoppingList
from crdt.replica import new_replica_id
from protocol.endpoints import address_of, split_endpoint, with_key
from protocol.messages import Kind, Message, decode, encode
from server import postgres, sockets
from server.capability import storage_id
from server.cli import ADMIN_KEY_ENV, request
from server.cluster import _stop_all as stop_all
from server.cluster import cluster_keys, free_ports, node_command
from server.keys import SECRET_SUFFIX, generate
from server.ring import build_ring

REPLICAS = 3
PARTITIONS = 256
NODE_PORT, PUBLISH_PORT = 7100, 7101
CONVERGE_LIMIT = 30.0
"""Seconds after the last heal before a replica still missing an acknowledged write counts it lost."""
NOWHERE_MAC = "02:00:00:de:ad:01"
KEYED_NODES, KEYED_PROXIES = 32, 4
"""Key pairs made before the ring starts (the members file every node loads lists them all): the most
nodes and proxies one run may start, joins included."""
CLIENT_KEYS = generate()


def log(text: str) -> None:
    """Print one harness line with a timestamp."""
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def _run(*command: str) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def namespaces_available() -> tuple[bool, str]:
    """Return whether this machine lets the harness build network namespaces, and why not if it cannot."""
    if os.geteuid() != 0:
        return False, "not running as root"
    if shutil.which("ip") is None and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "iproute2"], check=False, capture_output=True)
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return False, "iproute2 (ip, tc) is not installed"
    probe = f"slp{os.getpid() % 100000}"
    try:
        _run("ip", "netns", "add", probe)
    except subprocess.CalledProcessError as problem:
        return False, f"`ip netns add` failed: {problem.stderr.decode().strip()}"
    _run("ip", "netns", "del", probe)
    return True, ""


# ----- the network: namespaces, a bridge, and real faults -------------------------------------------------


class Network:
    """Hosts for nodes. `netns`: one namespace per node on a private bridge; else all on 127.0.0.1."""

    def __init__(self, netns: bool) -> None:
        self.netns = netns
        self.run_id = f"{os.getpid() % 0xFFFF:04x}"
        self.subnet = f"10.213.{20 + os.getpid() % 200}"
        self.bridge = f"sl{self.run_id}br"
        self.addresses: dict[str, str] = {}
        self.namespaces: dict[str, str] = {}
        self.cuts: set[tuple[str, str]] = set()
        self.slowed: set[str] = set()
        self._hosts = itertools.count(10)
        self._ports = iter(free_ports(400)) if not netns else None
        if netns:
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            _run("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")

    def add_host(self, name: str) -> tuple[str, str]:
        """Give `name` a place on the network; return its (request, publish) endpoints."""
        if not self.netns:
            assert self._ports is not None
            return f"tcp://127.0.0.1:{next(self._ports)}", f"tcp://127.0.0.1:{next(self._ports)}"
        if name not in self.namespaces:
            number = next(self._hosts)
            namespace, host_side = f"sl{self.run_id}{name}", f"sl{self.run_id}h{number}"
            address = f"{self.subnet}.{number}"
            _run("ip", "netns", "add", namespace)
            _run("ip", "link", "add", host_side, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            _run("ip", "link", "set", host_side, "master", self.bridge, "up")
            inside = ["ip", "netns", "exec", namespace]
            _run(*inside, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            _run(*inside, "ip", "link", "set", "eth0", "up")
            _run(*inside, "ip", "link", "set", "lo", "up")
            self.namespaces[name], self.addresses[name] = namespace, address
        address = self.addresses[name]
        return f"tcp://{address}:{NODE_PORT}", f"tcp://{address}:{PUBLISH_PORT}"

    def prefix(self, name: str) -> list[str]:
        """Return the command prefix that runs a process on `name`'s host."""
        return ["ip", "netns", "exec", self.namespaces[name]] if self.netns else []

    def cut(self, a: str, b: str) -> None:
        """Drop every packet between `a` and `b`, both ways."""
        for here, there in ((a, b), (b, a)):
            _run(
                *self.prefix(here),
                "ip",
                "neigh",
                "replace",
                self.addresses[there],
                "lladdr",
                NOWHERE_MAC,
                "dev",
                "eth0",
                "nud",
                "permanent",
            )
        self.cuts.add((a, b))

    def mend(self, a: str, b: str) -> None:
        """Let packets between `a` and `b` through again."""
        for here, there in ((a, b), (b, a)):
            with suppress(subprocess.CalledProcessError):
                _run(*self.prefix(here), "ip", "neigh", "del", self.addresses[there], "dev", "eth0")
        self.cuts.discard((a, b))

    def slow(self, name: str) -> None:
        """Make `name`'s link a thin pipe."""
        _run(
            *self.prefix(name),
            "tc",
            "qdisc",
            "replace",
            "dev",
            "eth0",
            "root",
            "tbf",
            "rate",
            "256kbit",
            "burst",
            "16kbit",
            "latency",
            "200ms",
        )
        self.slowed.add(name)

    def unslow(self, name: str) -> None:
        """Give `name` its full link back."""
        with suppress(subprocess.CalledProcessError):
            _run(*self.prefix(name), "tc", "qdisc", "del", "dev", "eth0", "root")
        self.slowed.discard(name)

    def close(self) -> None:
        """Remove every namespace, link and the bridge this network made."""
        if not self.netns:
            return
        for namespace in self.namespaces.values():
            with suppress(subprocess.CalledProcessError):
                _run("ip", "netns", "del", namespace)
        with suppress(subprocess.CalledProcessError):
            _run("ip", "link", "del", self.bridge)


# ----- the cluster: node and proxy processes --------------------------------------------------------------


@dataclass
class NodeProcess:
    """One node: where it lives, its data, and its process while it runs. `endpoint` carries the node's
    pinned key (`?key=`), as a seed or a request target."""

    node_id: str
    endpoint: str
    publish: str
    data: Path
    process: subprocess.Popen[bytes] | None = None
    leaving: bool = False
    joined: bool = True


@dataclass
class ProxyProcess:
    """One proxy and its process (`endpoint` with its pinned key, as clients use it)."""

    proxy_id: str
    endpoint: str
    publish: str
    process: subprocess.Popen[bytes] | None = None


class Cluster:
    """Starts, kills, restarts, joins and drains node and proxy processes."""

    def __init__(self, root: Path, network: Network, node_args: list[str]) -> None:
        self.root = root
        self.network = network
        self.node_args = node_args
        self.nodes: dict[str, NodeProcess] = {}
        self.proxies: dict[str, ProxyProcess] = {}
        self.seeds: list[str] = []
        self._logs: list[Any] = []
        self._numbers = itertools.count(1)
        self.keys = root / "keys"
        names = [f"n{i}" for i in range(1, KEYED_NODES + 1)] + [f"p{i}" for i in range(1, KEYED_PROXIES + 1)]
        self._public = {name: pair.public for name, pair in cluster_keys(self.keys, names).items()}
        self.admin_key_file = self.keys / f"admin{SECRET_SUFFIX}"
        """A member key: `request` uses it (through $SHOPLIST_SERVER_KEY) to talk to nodes directly."""

    def new_node(self) -> NodeProcess:
        """Create (not start) the next node."""
        node_id = f"n{next(self._numbers)}"
        endpoint, publish = self.network.add_host(node_id)
        node = NodeProcess(node_id, with_key(endpoint, self._public[node_id]), publish, self.root / node_id)
        self.nodes[node_id] = node
        return node

    def start_node(self, node: NodeProcess, *, join: str | None = None) -> None:
        """Start `node`'s process (a restart after SIGKILL reuses its data and its PostgreSQL)."""
        command = node_command(
            node.node_id,
            address_of(node.endpoint),
            node.publish,
            node.data,
            self.live_seeds(),
            "WARNING",
            self.keys,
        )
        if join:
            command += ["--join", join]
        log_file = (self.root / f"{node.node_id}.log").open("ab")
        self._logs.append(log_file)
        node.process = subprocess.Popen(
            [*self.network.prefix(node.node_id), *command, *self.node_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )

    def start_proxy(self, proxy: ProxyProcess) -> None:
        """Start `proxy`'s process on the harness's own network."""
        command = [
            sys.executable,
            "-m",
            "server.cli",
            "--log-level",
            "WARNING",
            "proxy",
            "--id",
            proxy.proxy_id,
            "--bind",
            address_of(proxy.endpoint),
            "--publish",
            proxy.publish,
            "--seeds",
            ",".join(self.live_seeds()),
            "--key",
            str(self.keys / f"{proxy.proxy_id}{SECRET_SUFFIX}"),
        ]
        log_file = (self.root / f"{proxy.proxy_id}.log").open("ab")
        self._logs.append(log_file)
        proxy.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file
        )

    def start(self, nodes: int, proxies: int) -> None:
        """Start a fresh ring and its proxies; return once every proxy sees every node and takes a write."""
        created = [self.new_node() for _ in range(nodes)]
        self.seeds = [node.endpoint for node in created]
        for node in created:
            self.start_node(node)
        ports = free_ports(2 * proxies)
        for index in range(proxies):
            proxy_id = f"p{index + 1}"
            proxy = ProxyProcess(
                proxy_id,
                with_key(f"tcp://127.0.0.1:{ports[2 * index]}", self._public[proxy_id]),
                f"tcp://127.0.0.1:{ports[2 * index + 1]}",
            )
            self.proxies[proxy.proxy_id] = proxy
            self.start_proxy(proxy)
        self.wait_ready(240.0)

    def live_seeds(self) -> list[str]:
        """Return seeds for a process starting now: the endpoints of the current ring members, as an
        operator would configure them (the first nodes may have left the ring long ago)."""
        members = [self.nodes[name].endpoint for name in self.ring_members() if self.nodes[name].process]
        return members or self.seeds

    def ring_members(self) -> list[str]:
        """Return the nodes the ring is made of now (started and not leaving)."""
        return sorted(n.node_id for n in self.nodes.values() if n.joined and not n.leaving)

    def wait_ready(self, within: float) -> None:
        """Wait until every proxy sees every ring member alive and a write through each succeeds."""
        deadline = time.monotonic() + within
        probe = ShoppingList("harness-probe").to_bytes()
        for proxy in self.proxies.values():
            while True:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster not ready in {within:g} s; logs in {self.root}")
                answer = request(proxy.endpoint, Kind.STATUS, 1.0)
                members = answer.fields.get("info", {}).get("members", []) if answer else []
                alive = {m["id"] for m in members if m["state"] == "alive"}
                if set(self.ring_members()) <= alive:
                    written = request(proxy.endpoint, Kind.WRITE, 3.0, body=probe, list="harness-probe")
                    if written is not None and written.kind is Kind.OK:
                        break
                time.sleep(0.3)

    def kill(self, process: subprocess.Popen[bytes] | None) -> None:
        """SIGKILL a process this harness started."""
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def node_status(self, node: NodeProcess, timeout: float = 1.0) -> dict[str, Any] | None:
        """Return a node's own status, or None when it does not answer."""
        answer = request(node.endpoint, Kind.STATUS, timeout)
        return answer.fields.get("info") if answer is not None and answer.kind is Kind.STATUS_REPLY else None

    def fetch(self, node: NodeProcess, list_id: str) -> ShoppingList | None:
        """Return `node`'s own copy of the list clients call `list_id` (None when it does not answer)."""
        answer = request(node.endpoint, Kind.FETCH, 2.0, list=storage_id(list_id))
        return (
            ShoppingList.from_bytes(answer.body) if answer is not None and answer.kind is Kind.STATE else None
        )

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and every PostgreSQL server the nodes left running."""
        stop_all([p.process for p in [*self.nodes.values(), *self.proxies.values()] if p.process])
        for node in self.nodes.values():
            postgres.stop_leftover(node.data / "postgres")
        for log_file in self._logs:
            log_file.close()


@contextmanager
def running_cluster(
    root: Path,
    *,
    nodes: int = 5,
    proxies: int = 2,
    netns: bool | None = None,
    node_args: list[str] | None = None,
) -> Iterator[Cluster]:
    """Run a cluster for the block (namespaces when possible unless `netns` says otherwise)."""
    if netns is None:
        netns, _ = namespaces_available()
    network = Network(netns)
    cluster = Cluster(root, network, node_args or [])
    before = os.environ.get(ADMIN_KEY_ENV)
    os.environ[ADMIN_KEY_ENV] = str(cluster.admin_key_file)  # for this process and the tools it runs
    try:
        cluster.start(nodes, proxies)
        yield cluster
    finally:
        cluster.stop()
        network.close()
        if before is None:
            os.environ.pop(ADMIN_KEY_ENV, None)
        else:
            os.environ[ADMIN_KEY_ENV] = before


# ----- clients --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One write a client tried: when, where, what, and whether the cluster acknowledged it."""

    at: float
    client: str
    list_id: str
    item: str
    acked: bool
    detail: str


def send_request(endpoints: list[str], message: Message, deadline: float) -> Message | None:
    """Send `message` to the first endpoint, failing over to the next after 2 s without an answer (Lazy
    Pirate: a fresh socket per attempt); return the reply or None."""
    context = zmq.Context.instance()
    for attempt in itertools.count():
        if time.monotonic() >= deadline:
            return None
        address, server_key = split_endpoint(endpoints[attempt % len(endpoints)])
        socket = sockets.configure(context.socket(zmq.DEALER))
        try:
            sockets.curve_client(socket, CLIENT_KEYS if server_key else None, server_key)
            socket.connect(address)
            socket.send_multipart(encode(message))
            wait = max(0.05, min(2.0, deadline - time.monotonic()))
            if socket.poll(int(wait * 1000)):
                answer = decode(socket.recv_multipart())
                if answer.kind is not Kind.ERROR or attempt > 6:
                    return answer
                time.sleep(0.1)
        finally:
            socket.close(0)
    return None


class Client(threading.Thread):
    """Writes unique items to the shared lists through its proxies until told to stop."""

    def __init__(self, name: str, proxies: list[str], lists: list[str], rate: float, seed: int) -> None:
        super().__init__(name=name, daemon=True)
        self.client = name
        self.proxies = proxies
        self.lists = lists
        self.rate = rate
        self.random = random.Random(seed)
        self.replica = new_replica_id()
        self.states: dict[str, ShoppingList] = {}
        self.outcomes: list[Outcome] = []
        self.stopping = threading.Event()
        self._numbers = itertools.count(1)

    def run(self) -> None:
        while not self.stopping.is_set():
            list_id = self.random.choice(self.lists)
            item = f"{self.client}-{next(self._numbers)}"
            state = self.states.setdefault(list_id, ShoppingList(self.replica))
            delta = state.add_item(item)
            message = Message(Kind.WRITE, uuid.uuid4().hex, {"list": list_id}, delta.to_bytes())
            answer = send_request(self.proxies, message, time.monotonic() + 6.0)
            acked = answer is not None and answer.kind is Kind.OK
            detail = "ok" if acked else (answer.fields.get("code", "?") if answer else "no answer")
            self.outcomes.append(Outcome(time.monotonic(), self.client, list_id, item, acked, str(detail)))
            self.stopping.wait(1.0 / self.rate)

    def read(self, list_id: str) -> ShoppingList | None:
        """Return the list as this client reads it through its proxies."""
        message = Message(Kind.READ, uuid.uuid4().hex, {"list": list_id})
        answer = send_request(self.proxies, message, time.monotonic() + 8.0)
        return (
            ShoppingList.from_bytes(answer.body) if answer is not None and answer.kind is Kind.STATE else None
        )


# ----- schedules ------------------------------------------------------------------------------------------


FAULT_KINDS = ("kill_node", "kill_proxy", "partition", "slow", "join", "leave")


@dataclass(frozen=True)
class Fault:
    """One fault: what, when it starts (seconds into the schedule), for how long, and whom it hits."""

    kind: str
    start: float
    duration: float
    choice: int


def make_schedule(seed: int, network_faults: bool) -> list[Fault]:
    """Return the faults of schedule `seed` (the same seed always gives the same faults)."""
    chooser = random.Random(seed)
    kinds = [k for k in FAULT_KINDS if network_faults or k not in ("partition", "slow")]
    count = chooser.randint(3, 5)
    faults = [
        Fault(
            chooser.choice(kinds),
            round(chooser.uniform(0.3, 4.0), 2),
            round(chooser.uniform(1.0, 3.5), 2),
            chooser.randrange(1 << 30),
        )
        for _ in range(count)
    ]
    return sorted(faults, key=lambda fault: fault.start)


@dataclass
class Result:
    """What one schedule did and found."""

    seed: int
    faults: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    acked: int = 0
    attempted: int = 0
    lost: int = 0
    lost_items: list[str] = field(default_factory=list)
    converged_after: float | None = None
    client_misses: int = 0
    history: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return whether nothing acknowledged was lost, every replica and client converged, and the cluster
        acknowledged writes at all (a schedule where nothing was acknowledged proves nothing)."""
        converged = self.converged_after is not None
        return self.lost == 0 and self.client_misses == 0 and converged and self.acked > 0


class Runner:
    """Runs schedules against one cluster, one after another."""

    def __init__(
        self, cluster: Cluster, *, clients: int = 3, lists: int = 4, rate: float = 8.0, min_nodes: int = 5
    ):
        self.cluster = cluster
        self.clients = clients
        self.lists = lists
        self.rate = rate
        self.min_nodes = min_nodes
        self.started = time.monotonic()
        self.all_acked: dict[str, set[str]] = {}

    def note(self, result: Result, text: str) -> None:
        """Add a line to the schedule's history."""
        result.history.append(f"{time.monotonic() - self.started:8.2f} {text}")

    def run(self, seed: int) -> Result:
        """Run schedule `seed`: load, faults, heal, check. Returns what it found."""
        result = Result(seed)
        faults = make_schedule(seed, self.cluster.network.netns)
        proxies = [p.endpoint for p in self.cluster.proxies.values()]
        list_ids = [f"s{seed}-list{index}" for index in range(self.lists)]
        clients = [
            Client(
                f"c{seed}x{index}",
                proxies[index % len(proxies) :] + proxies[: index % len(proxies)],
                list_ids,
                self.rate,
                seed * 100 + index,
            )
            for index in range(self.clients)
        ]
        self.note(result, f"schedule {seed}: {[(f.kind, f.start, f.duration) for f in faults]}")
        for client in clients:
            client.start()
        began = time.monotonic()
        undo: list[tuple[float, str, Any]] = []
        pending = list(faults)
        while pending or undo:
            now = time.monotonic() - began
            if pending and pending[0].start <= now:
                fault = pending.pop(0)
                healer = self.inject(fault, result)
                if healer is not None:
                    undo.append((fault.start + fault.duration, fault.kind, healer))
                    result.faults[fault.kind] = result.faults.get(fault.kind, 0) + 1
            for entry in sorted(undo):
                if entry[0] <= now:
                    undo.remove(entry)
                    entry[2]()
                    self.note(result, f"healed {entry[1]}")
            time.sleep(0.02)
        self.finish_joins_and_leaves(result)
        healed = time.monotonic()
        self.note(result, "every fault healed")
        for client in clients:
            client.stopping.set()
        for client in clients:
            client.join(10.0)
        acked: dict[str, set[str]] = {list_id: set() for list_id in list_ids}
        for client in clients:
            for outcome in client.outcomes:
                result.attempted += 1
                if outcome.acked:
                    acked[outcome.list_id].add(outcome.item)
                    result.acked += 1
        for list_id, items in acked.items():
            self.all_acked[list_id] = items
        self.check(result, acked, healed, clients)
        if not result.ok:
            misses = set(result.lost_items)
            for client in clients:
                for outcome in client.outcomes:
                    if outcome.item in misses:
                        self.note(result, f"write {outcome.item} to {outcome.list_id}: {outcome.detail}")
        return result

    # ----- faults --------------------------------------------------------------------------------------

    def _usable_nodes(self) -> list[NodeProcess]:
        return [
            n
            for n in self.cluster.nodes.values()
            if n.joined and not n.leaving and n.process and n.process.poll() is None
        ]

    def inject(self, fault: Fault, result: Result) -> Any:
        """Start `fault`; return the function that heals it (None when it could not apply now)."""
        cluster, network = self.cluster, self.cluster.network
        usable = self._usable_nodes()
        busy = {name for pair in network.cuts for name in pair} | network.slowed
        free = [n for n in usable if n.node_id not in busy]
        if fault.kind == "kill_node":
            running = [n for n in cluster.nodes.values() if n.process and n.process.poll() is None]
            victims = [n for n in running if n.node_id not in busy and (n in usable or n.leaving)]
            if len(usable) < len(cluster.ring_members()) or not victims:
                return self._skip(result, fault, "a node is already down")
            victim = victims[fault.choice % len(victims)]  # a leaving one too: its handoff must resume
            cluster.kill(victim.process)
            self.note(result, f"SIGKILL node {victim.node_id}")
            return lambda: (cluster.start_node(victim), self.note(result, f"restarted node {victim.node_id}"))
        if fault.kind == "kill_proxy":
            running = [p for p in cluster.proxies.values() if p.process and p.process.poll() is None]
            if len(running) < len(cluster.proxies):
                return self._skip(result, fault, "a proxy is already down")
            proxy = running[fault.choice % len(running)]
            cluster.kill(proxy.process)
            self.note(result, f"SIGKILL proxy {proxy.proxy_id}")
            return lambda: cluster.start_proxy(proxy)
        if fault.kind == "partition":
            if network.cuts or len(free) < 2:
                return self._skip(result, fault, "a partition is already in place")
            names = sorted(n.node_id for n in usable)
            random.Random(fault.choice).shuffle(names)
            minority = names[: max(1, len(names) // 3 + fault.choice % 2)]
            majority = [name for name in names if name not in minority]
            for a in minority:
                for b in majority:
                    network.cut(a, b)
            self.note(result, f"partition {minority} | {majority}")

            def mend() -> None:
                for a, b in list(network.cuts):
                    network.mend(a, b)

            return mend
        if fault.kind == "slow":
            if not free:
                return self._skip(result, fault, "no node free to slow")
            victim = free[fault.choice % len(free)]
            network.slow(victim.node_id)
            self.note(result, f"slow link on {victim.node_id}")
            return lambda: network.unslow(victim.node_id)
        if fault.kind == "join":
            if len(cluster.ring_members()) > self.min_nodes:
                return self._skip(result, fault, "a node joined already (the ring is above its base size)")
            if len(usable) < len(cluster.ring_members()):
                return self._skip(result, fault, "a node is down")
            node = cluster.new_node()
            cluster.start_node(node, join=usable[0].endpoint)
            self.note(result, f"join {node.node_id} through {usable[0].node_id}")
            return lambda: None
        if fault.kind == "leave":
            if len(cluster.ring_members()) <= self.min_nodes or len(free) < len(cluster.ring_members()):
                return self._skip(result, fault, "no spare node to leave, or a node is down")
            victim = free[fault.choice % len(free)]
            answer = request(victim.endpoint, Kind.LEAVE, 3.0)
            if answer is None or answer.kind is not Kind.OK:
                return self._skip(result, fault, f"{victim.node_id} refused to leave")
            victim.leaving = True
            self.note(result, f"leave {victim.node_id}")
            return lambda: None
        raise ValueError(f"unknown fault {fault.kind}")

    def _skip(self, result: Result, fault: Fault, why: str) -> None:
        result.skipped.append(f"{fault.kind}: {why}")
        self.note(result, f"skipped {fault.kind}: {why}")
        return None

    def finish_joins_and_leaves(self, result: Result) -> None:
        """Wait (bounded) for joining nodes to finish receiving and leaving ones to exit."""
        deadline = time.monotonic() + 90.0
        for node in list(self.cluster.nodes.values()):
            if node.leaving and node.joined and node.process is not None:
                try:
                    node.process.wait(max(1.0, deadline - time.monotonic()))
                    node.joined = False
                    self.note(result, f"{node.node_id} left (exit {node.process.returncode})")
                except subprocess.TimeoutExpired:
                    self.note(result, f"{node.node_id} still leaving after the deadline")
        for node in self.cluster.nodes.values():
            if not node.joined or node.leaving:
                continue
            while time.monotonic() < deadline:  # restarted nodes answer, joining ones have their data
                status = self.cluster.node_status(node)
                if status is not None and not status.get("handoff", {}).get("joining"):
                    break
                time.sleep(0.1)

    # ----- checks --------------------------------------------------------------------------------------

    def check(self, result: Result, acked: dict[str, set[str]], healed: float, clients: list[Client]) -> None:
        """Wait until every owner of every list holds every acknowledged item and all owners agree."""
        ring = build_ring(self.cluster.ring_members(), PARTITIONS)
        deadline = healed + CONVERGE_LIMIT
        missing: dict[str, set[str]] = {}
        while True:
            missing = {}
            converged = True
            for list_id, items in acked.items():
                states = []
                for owner in ring.preference_list(storage_id(list_id), REPLICAS):
                    state = self.cluster.fetch(self.cluster.nodes[owner], list_id)
                    held = set(state.items()) if state is not None else set()
                    states.append(held)
                    if items - held:
                        missing.setdefault(f"{list_id}@{owner}", set()).update(items - held)
                if missing or any(s != states[0] for s in states):
                    converged = False
            if converged:
                result.converged_after = round(time.monotonic() - healed, 3)
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        lost = {item for items in missing.values() for item in items}
        result.lost = len(lost)
        result.lost_items = sorted(lost)[:50]
        for where, items in sorted(missing.items()):
            self.note(result, f"{where} misses {len(items)} acknowledged items, e.g. {sorted(items)[:5]}")
        for client in clients:
            for list_id, items in acked.items():
                seen = client.read(list_id)
                absent = items - (set(seen.items()) if seen is not None else set())
                if absent:
                    result.client_misses += len(absent)
                    self.note(result, f"client {client.client} reads {list_id} without {len(absent)} items")

    def final_check(self) -> int:
        """Return how many items acknowledged in any schedule so far some owner no longer holds."""
        ring = build_ring(self.cluster.ring_members(), PARTITIONS)
        lost = 0
        for list_id, items in self.all_acked.items():
            for owner in ring.preference_list(storage_id(list_id), REPLICAS):
                state = self.cluster.fetch(self.cluster.nodes[owner], list_id)
                lost += len(items - (set(state.items()) if state is not None else set()))
        return lost


# ----- the run --------------------------------------------------------------------------------------------


def summarize(results: list[Result]) -> dict[str, Any]:
    """Return the summary row of a run: schedules, faults injected, writes acknowledged, lost, convergence."""
    times = [r.converged_after for r in results if r.converged_after is not None]
    faults: dict[str, int] = {}
    for result in results:
        for kind, count in result.faults.items():
            faults[kind] = faults.get(kind, 0) + count
    return {
        "schedules": len(results),
        "failed": sum(not r.ok for r in results),
        "faults": sum(faults.values()),
        "faults_by_kind": dict(sorted(faults.items())),
        "attempted": sum(r.attempted for r in results),
        "acknowledged": sum(r.acked for r in results),
        "lost": sum(r.lost for r in results),
        "client_misses": sum(r.client_misses for r in results),
        "converge_p50": round(statistics.median(times), 3) if times else None,
        "converge_max": round(max(times), 3) if times else None,
        "not_converged": sum(r.converged_after is None for r in results),
    }


def run_schedules(
    seeds: list[int],
    *,
    root: Path,
    nodes: int = 5,
    proxies: int = 2,
    clients: int = 3,
    netns: bool | None = None,
    out: Path | None = None,
    verbose: bool = False,
) -> tuple[list[Result], dict[str, Any]]:
    """Run the schedules `seeds` on one cluster; return every result and the summary."""
    available, why = namespaces_available()
    if netns is None:
        netns = available
    if not netns:
        log(f"network namespaces unavailable ({why or 'turned off'}): partitions and slow links are SKIPPED")
    results: list[Result] = []
    with running_cluster(root, nodes=nodes, proxies=proxies, netns=netns) as cluster:
        log(f"cluster ready: {nodes} nodes {'in namespaces' if netns else 'on 127.0.0.1'}, {proxies} proxies")
        runner = Runner(cluster, clients=clients, min_nodes=nodes)
        for seed in seeds:
            result = runner.run(seed)
            results.append(result)
            verdict = "ok" if result.ok else "FAILED"
            log(
                f"schedule {seed}: {verdict} faults={result.faults} acked={result.acked} lost={result.lost} "
                f"converged={result.converged_after}"
            )
            if not result.ok or verbose:
                print(f"--- seed {seed} history ---", flush=True)
                for line in result.history:
                    print(line, flush=True)
            if out is not None:
                with out.open("a") as handle:
                    handle.write(json.dumps({**result.__dict__, "ok": result.ok}) + "\n")
        final_lost = runner.final_check()
        log(f"final check over every schedule's lists: {final_lost} acknowledged items missing")
    summary = summarize(results)
    summary["final_lost"] = final_lost
    summary["netns"] = netns
    return results, summary


def main() -> int:
    """Run the harness from the command line; exit 1 if any schedule failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1, help="first seed; schedule k uses seed + k")
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--proxies", type=int, default=2)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--no-netns", action="store_true", help="run on 127.0.0.1 (no network faults)")
    parser.add_argument(
        "--data", type=Path, default=None, help="directory for the nodes (default: temporary)"
    )
    parser.add_argument("--out", type=Path, default=None, help="append one JSON line per schedule here")
    parser.add_argument("--verbose", action="store_true", help="print every schedule's history")
    args = parser.parse_args()
    root = args.data or Path(tempfile.mkdtemp(prefix="shoplist-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    seeds = [args.seed + k for k in range(args.schedules)]
    results, summary = run_schedules(
        seeds,
        root=root,
        nodes=args.nodes,
        proxies=args.proxies,
        clients=args.clients,
        netns=False if args.no_netns else None,
        out=args.out,
        verbose=args.verbose,
    )
    print(json.dumps(summary, indent=2))
    failed = [r.seed for r in results if not r.ok]
    if failed or summary["final_lost"]:
        print(f"FAILED seeds: {failed} (replay one with --schedules 1 --seed SEED --verbose)")
        return 1
    if args.data is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
