"""A simulated cluster: nodes, proxies and clients on one event queue and one network, with crashes,
restarts, joins and the checks the scenarios assert (view agreement, acknowledged writes kept)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from protocol.messages import Message
from server.gossip import Ack, GossipMessage, GossipSettings, Ping, PingRequest, Sync, wire_size
from server.membership import MemberRecord
from server.node_core import Config
from server.ring import Ring, build_ring
from server.sim.events import EventQueue
from server.sim.network import LinkModel, Network
from server.sim.nodes import Disk, SimClient, SimNode, SimProxy, message_size, table_sync


@dataclass(frozen=True)
class ClusterSettings:
    """One simulated cluster: its seed, size, ring and replication, network and failure model.
    `refused_when_down`: a send to a stopped process fails at once (a restart: the port refuses);
    otherwise it vanishes (a machine that died holds no connection to refuse)."""

    seed: int = 1
    partitions: int = 256
    config: Config = field(default_factory=Config)
    link: LinkModel = field(default_factory=LinkModel)
    gossip: GossipSettings = field(default_factory=GossipSettings)
    refused_when_down: bool = False


GOSSIP_KINDS = {kind: f"gossip.{kind.__name__.lower()}" for kind in (Ping, Ack, PingRequest, Sync)}


def node_name(index: int) -> str:
    """Return the id of the `index`th node (zero-padded so ids sort in creation order)."""
    return f"n{index:04d}"


class SimCluster:
    """Everything one simulation run holds."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self.seed = settings.seed
        self.config = settings.config
        self.gossip_settings = settings.gossip
        self.queue = EventQueue()
        self.random = random.Random(f"{settings.seed}:cluster")
        self.network = Network(self.queue, random.Random(f"{settings.seed}:network"), settings.link)
        self.nodes: dict[str, SimNode] = {}
        self.disks: dict[str, Disk] = {}
        self.incarnations: dict[str, int] = {}
        self.proxies: dict[str, SimProxy] = {}
        self.clients: list[SimClient] = []
        self.published = 0
        self._rings: dict[tuple[str, ...], Ring] = {}

    # ----- building ------------------------------------------------------------------------------

    def ring_for(self, members: list[str]) -> Ring:
        """Return build_ring(members), built once per member set (rings are immutable values)."""
        key = tuple(sorted(members))
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = build_ring(key, self.settings.partitions)
        return ring

    def bootstrap(self, count: int, names: list[str] | None = None) -> list[str]:
        """Start `count` nodes (named `names`, else n0000, n0001, ...) that all know each other (a static
        member list), and return their ids."""
        names = names or [node_name(index) for index in range(count)]
        self.ring_for(names)
        for name in names:
            self._start(name, seeds=names[:3])
        records = [self.nodes[name].membership.me for name in names]
        table = table_sync([record for record in records if record is not None])
        for name in names:
            self.nodes[name].know(table)
        return names

    def join(self, name: str, seeds: list[str]) -> SimNode:
        """Start a new node that knows only `seeds`."""
        return self._start(name, seeds)

    def _start(self, name: str, seeds: list[str]) -> SimNode:
        incarnation = self.incarnations.get(name, 0) + 1
        self.incarnations[name] = incarnation
        disk = self.disks.setdefault(name, Disk())
        node = SimNode(self, name, incarnation, seeds, disk)
        self.nodes[name] = node
        node.start()
        return node

    def crash(self, name: str) -> None:
        """Stop node `name` (its disk survives)."""
        self.nodes[name].up = False

    def restart(self, name: str) -> SimNode:
        """Start `name` again with a higher incarnation, its disk and its seeds."""
        seeds = [node for node in self.live_nodes() if node != name][:3]
        return self._start(name, seeds)

    def add_proxy(self, name: str) -> SimProxy:
        """Start a proxy."""
        proxy = SimProxy(self, name, self.config.replicas, self.live_nodes()[:3])
        self.proxies[name] = proxy
        proxy.start()
        return proxy

    def add_client(self, name: str, proxy: SimProxy, rate: float, lists: int, stop_at: float) -> SimClient:
        """Start a client writing `rate` items per virtual second until `stop_at`."""
        client = SimClient(self, name, proxy, rate, lists)
        self.clients.append(client)
        client.start(stop_at)
        return client

    # ----- carrying messages ---------------------------------------------------------------------

    def send_gossip(self, source: str, destination: str, message: GossipMessage) -> None:
        """Carry a gossip message (dropped if the destination is not running)."""
        kind = GOSSIP_KINDS[type(message)]

        def deliver() -> None:
            receiver = self.nodes.get(destination) or self.proxies.get(destination)
            if receiver is not None:
                receiver.on_gossip(source, message)

        self.network.send(source, destination, kind, wire_size(message), deliver)

    def send_request(self, source: str, destination: str, message: Message) -> None:
        """Carry a node-to-node request (REPLICATE, FETCH)."""
        target = self.nodes.get(destination)
        if target is None or (not target.up and self.settings.refused_when_down):
            sender = self.nodes[source]
            self.queue.after(
                0.0,
                f"unreachable {source}>{destination}",
                lambda: sender.on_unreachable(destination, message.request_id),
            )
            return
        self.network.send(
            source,
            destination,
            message.kind.value,
            message_size(message),
            lambda: target.on_replica_request(source, message),
        )

    def send_reply(self, source: str, destination: str, answer: Message) -> None:
        """Carry a replica's answer back to the coordinator that asked."""
        node = self.nodes[destination]
        self.network.send(
            source,
            destination,
            answer.kind.value,
            message_size(answer),
            lambda: node.on_reply(source, answer),
        )

    def forward(self, proxy: str, node: str, message: Message) -> None:
        """Carry a proxy's forward of a client request to a coordinator."""
        target = self.nodes.get(node)
        owner = self.proxies[proxy]
        if target is None or (not target.up and self.settings.refused_when_down):
            self.queue.after(
                0.0, f"unreachable {proxy}>{node}", lambda: owner.on_unreachable(node, message.request_id)
            )
            return
        self.network.send(
            proxy, node, message.kind.value, message_size(message), lambda: target.on_request(proxy, message)
        )

    def respond(self, node: str, origin: object, message: Message) -> None:
        """Carry a coordinator's answer to the proxy that forwarded the request."""
        proxy = self.proxies[str(origin)]
        self.network.send(
            node,
            proxy.proxy_id,
            message.kind.value,
            message_size(message),
            lambda: proxy.on_reply(node, message),
        )

    # ----- looking ---------------------------------------------------------------------------------

    def live_nodes(self) -> list[str]:
        """Return the ids of running nodes, sorted."""
        return sorted(name for name, node in self.nodes.items() if node.up)

    def views_agree(self) -> bool:
        """Return whether every running node holds the same member table (equal digests)."""
        digests = {self.nodes[name].gossip.digest for name in self.live_nodes()}
        return len(digests) == 1

    def records(self) -> list[MemberRecord]:
        """Return the member records of running nodes."""
        return [node.membership.me for node in self.nodes.values() if node.up and node.membership.me]

    def hints_outstanding(self) -> int:
        """Return how many hints all disks hold."""
        return sum(len(disk.hints) for disk in self.disks.values())

    def acknowledged(self) -> list[tuple[str, str]]:
        """Return (list, item) of every write a client saw acknowledged."""
        return [(write.list_id, write.item) for client in self.clients for write in client.acked]

    def write_copies(self, list_id: str, item: str) -> tuple[int, int]:
        """Return (owners holding `item` in `list_id`, hints holding it anywhere) on the current ring."""
        ring = self.ring_for(sorted(self.nodes))
        owners = ring.preference_list(list_id, self.config.replicas)
        held = sum(self.disks[owner].holds(list_id, item) for owner in owners)
        return held, self._hinted(list_id, item)

    def _hinted(self, list_id: str, item: str) -> int:
        from crdt import ShoppingList

        count = 0
        for disk in self.disks.values():
            for _, hint_list, body in disk.hints.values():
                if hint_list == list_id and item in ShoppingList.from_bytes(body, "sim-check"):
                    count += 1
        return count
