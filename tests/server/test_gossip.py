"""The SWIM gossip core: probes and acks, indirect probes, suspicion to death, refutation, digest-first
anti-entropy, and a quiet cluster's traffic staying the same whatever its size."""

from __future__ import annotations

import random

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from server.gossip import (
    Ack,
    Claim,
    Gossip,
    GossipSettings,
    Outgoing,
    Ping,
    PingRequest,
    Sync,
    Watcher,
    _News,
    rumour_of,
    wire_form,
    wire_size,
)
from server.membership import Evidence, Liveness, MemberRecord, Membership

NEVER = float("inf")


def _gossip(name: str, seeds: list[str] | None = None, settings: GossipSettings | None = None) -> Gossip:
    record = MemberRecord(name, f"tcp://{name}:1", f"tcp://{name}:2", 1)
    membership = Membership(record, 0.0)
    return Gossip(membership, seeds or [], random.Random(name), 0.0, settings or GossipSettings())


def _cluster(count: int, settings: GossipSettings | None = None) -> dict[str, Gossip]:
    nodes = {f"n{i}": _gossip(f"n{i}", settings=settings) for i in range(count)}
    table = Sync(tuple(node.rumours[node.me] for node in nodes.values()), 0, answer=False)
    for node in nodes.values():
        node.on_message(0.0, "boot", table)
    return nodes


def _deliver(nodes: dict[str, Gossip], sender: str, out: list[Outgoing], now: float, down: set[str]) -> int:
    """Deliver messages (and their answers) at once; return how many were sent."""
    sent = 0
    queue = [(sender, item) for item in out]
    while queue:
        source, item = queue.pop(0)
        sent += 1
        if item.to in nodes and item.to not in down:
            queue += [(item.to, answer) for answer in nodes[item.to].on_message(now, source, item.message)]
    return sent


def _run(
    nodes: dict[str, Gossip], rounds: int, start: float = 0.0, down: frozenset[str] = frozenset()
) -> int:
    sent = 0
    step = GossipSettings().interval / 4
    for tick in range(rounds * 4):
        now = start + tick * step
        for name, node in nodes.items():
            if name not in down:
                sent += _deliver(nodes, name, node.tick(now), now, set(down))
    return sent


def test_a_quiet_cluster_agrees_and_sends_one_ping_and_one_ack_per_probe() -> None:
    nodes = _cluster(20, GossipSettings(probes_per_round=1))
    sent = _run(nodes, 10)
    assert len({node.digest for node in nodes.values()}) == 1
    assert 1.8 <= sent / (20 * 10) <= 2.2
    assert all(node.counters.suspected.total() == 0 for node in nodes.values())


def test_a_quiet_ping_is_the_same_size_in_a_cluster_of_ten_or_of_a_hundred() -> None:
    small, large = _cluster(10), _cluster(100)
    _run(small, 8)
    _run(large, 8)
    pings = [node.tick(2.0)[-1].message for node in (small["n1"], large["n1"])]
    sizes = {len(str(wire_form(ping))) for ping in pings}
    assert all(isinstance(ping, Ping) and ping.news == () for ping in pings)
    assert max(sizes) - min(sizes) <= 4  # only the digest's digits differ


def test_a_silent_member_is_pinged_indirectly_then_suspected_then_declared_dead_everywhere() -> None:
    nodes = _cluster(8)
    _run(nodes, 2)
    _run(nodes, 30, start=0.4, down=frozenset({"n3"}))
    for name, node in nodes.items():
        if name != "n3":
            assert node.claim("n3") is Claim.DEAD
            assert node.membership.liveness("n3") is Liveness.DEAD


def test_a_member_asked_to_relay_pings_the_target_and_relays_its_ack() -> None:
    nodes = _cluster(3)
    out = nodes["n1"].on_message(1.0, "n0", PingRequest(5, "n2", ()))
    assert [(o.to, type(o.message)) for o in out] == [("n2", Ping)]
    ping = out[0].message
    assert isinstance(ping, Ping)
    ack = nodes["n2"].on_message(1.0, "n1", ping)[0].message
    relayed = nodes["n1"].on_message(1.0, "n2", ack)
    assert len(relayed) == 1 and relayed[0].to == "n0"
    assert isinstance(relayed[0].message, Ack) and relayed[0].message.seq == 5
    assert relayed[0].message.about == "n2"


def test_a_member_that_hears_itself_suspected_refutes_with_a_higher_incarnation() -> None:
    nodes = _cluster(3)
    accused = nodes["n1"].rumours["n1"]
    rumour = type(accused)(accused.record, Claim.SUSPECT)
    nodes["n0"].on_message(1.0, "n2", Sync((rumour,), 0, answer=False))
    assert nodes["n0"].membership.liveness("n1") is Liveness.SUSPECT
    nodes["n1"].on_message(1.0, "n0", Ping(1, nodes["n0"].digest, (rumour,)))
    assert nodes["n1"].membership.me is not None and nodes["n1"].membership.me.incarnation == 2
    assert nodes["n1"].counters.refutations == 1
    _run(nodes, 10, start=1.0)
    assert nodes["n0"].claim("n1") is Claim.ALIVE and nodes["n0"].membership.is_up("n1")


def test_a_joiner_that_knows_only_a_seed_gets_the_whole_table_and_everyone_learns_it() -> None:
    nodes = _cluster(10)
    nodes["new"] = _gossip("new", seeds=["n0"])
    _run(nodes, 12)
    assert len({node.digest for node in nodes.values()}) == 1
    assert all(node.claim("new") is Claim.ALIVE for node in nodes.values())


def test_nodes_that_started_together_and_met_different_seeds_first_become_one_ring() -> None:
    names = [f"n{i}" for i in range(5)]
    nodes = {name: _gossip(name, seeds=list(names)) for name in names}
    for island in (["n0", "n1"], ["n2", "n3", "n4"]):  # each met only its own island's seeds
        table = Sync(tuple(nodes[name].rumours[name] for name in island), 0, answer=False)
        for name in island:
            nodes[name].on_message(0.0, "boot", table)
    assert nodes["n0"].claim("n2") is None
    _run(nodes, 20)
    assert len({node.digest for node in nodes.values()}) == 1
    assert all(node.claim(other) is Claim.ALIVE for node in nodes.values() for other in names)


def test_a_node_stops_asking_seeds_once_every_seed_is_a_member() -> None:
    nodes = _cluster(4)
    nodes["n0"] = _gossip("n0", seeds=["tcp://n1:1", "n2"])  # a seed by address and one by id
    nodes["n0"].on_message(0.0, "boot", Sync(tuple(n.rumours[n.me] for n in nodes.values()), 0, False))
    asks = [
        item for tick in range(80) for item in nodes["n0"].tick(tick * 0.05) if isinstance(item.message, Sync)
    ]
    assert asks == []


def test_digests_differ_exactly_when_the_tables_do_and_merging_is_order_free() -> None:
    one, two = _cluster(4), _cluster(4)
    assert one["n0"].digest == two["n3"].digest
    extra = _gossip("x").rumours["x"]
    one["n0"].on_message(0.0, "n1", Sync((extra,), 0, answer=False))
    assert one["n0"].digest != two["n3"].digest
    two["n3"].on_message(0.0, "n1", Sync((extra,), 0, answer=False))
    assert one["n0"].digest == two["n3"].digest
    assert one["n0"].view() == two["n3"].view()


def test_probing_two_members_per_round_pings_two_distinct_members_and_still_agrees() -> None:
    nodes = _cluster(10, GossipSettings(probes_per_round=2))
    pings = [o for o in nodes["n0"].tick(1.0) if isinstance(o.message, Ping)]
    assert len({o.to for o in pings}) == 2
    sent = _run(nodes, 10, start=1.0)
    assert 3.6 <= sent / (10 * 10) <= 4.4
    assert len({node.digest for node in nodes.values()}) == 1


def test_a_leaving_member_spreads_its_leaving_record_with_a_newer_incarnation() -> None:
    nodes = _cluster(6)
    nodes["n2"].leave()
    _run(nodes, 10)
    assert len({node.digest for node in nodes.values()}) == 1
    assert all(node.membership.table["n2"].leaving for node in nodes.values())
    assert all(node.membership.ring_members() == ["n0", "n1", "n3", "n4", "n5"] for node in nodes.values())
    assert nodes["n0"].rumours["n2"].record.incarnation == 2


def _watch(nodes: dict[str, Gossip], watcher: Watcher, now: float, down: frozenset[str]) -> int:
    """Run one watcher round against `nodes`; return how many member records its answers carried."""
    records = 0
    for outgoing in watcher.tick(now):
        if outgoing.to in down or outgoing.to not in nodes:
            continue
        for answer in nodes[outgoing.to].on_message(now, "proxy", outgoing.message):
            assert isinstance(answer.message, Sync)
            records += len(answer.message.rumours)
            watcher.on_message(now, outgoing.to, answer.message)
    return records


def test_a_watcher_learns_the_table_from_a_seed_then_costs_only_digests_until_it_changes() -> None:
    nodes = _cluster(20)
    watcher = Watcher(Membership(None, 0.0), ["n4"], random.Random(1), 0.0)
    first = _watch(nodes, watcher, 0.0, frozenset())
    assert watcher.digest == nodes["n0"].digest
    assert all(watcher.membership.is_up(name) for name in nodes)
    quiet = _watch(nodes, watcher, 0.2, frozenset())
    assert first > 0 and quiet == 0  # once the tables agree, only digests go out and come back
    assert watcher.membership.ring_members() == sorted(nodes)


def test_a_watcher_sees_a_member_the_nodes_declared_dead_and_one_that_joined() -> None:
    nodes = _cluster(8)
    watcher = Watcher(Membership(None, 0.0), ["n0"], random.Random(2), 0.0)
    _watch(nodes, watcher, 0.0, frozenset())
    nodes["new"] = _gossip("new", seeds=["n0"])
    down = frozenset({"n3"})
    step = GossipSettings().interval
    for tick in range(40):
        now = 0.4 + tick * step / 4
        for name, node in nodes.items():
            if name not in down:
                _deliver(nodes, name, node.tick(now), now, set(down))
        _watch(nodes, watcher, now, down)
    assert watcher.claim("n3") is Claim.DEAD and not watcher.membership.is_up("n3")
    assert watcher.claim("new") is Claim.ALIVE and watcher.membership.is_up("new")
    assert "new" in watcher.membership.ring_members()


def test_a_member_answers_a_watchers_digest_with_its_digest_alone_which_proves_it_alive() -> None:
    nodes = _cluster(5)
    watcher = Watcher(Membership(None, 0.0), ["n1"], random.Random(3), 0.0)
    _watch(nodes, watcher, 0.0, frozenset())
    watcher.membership.observe("n2", Evidence.UNREACHABLE, 0.1)  # the proxy's connection to n2 dropped
    answers = nodes["n2"].on_message(0.2, "proxy", Sync((), watcher.digest, answer=True))
    assert [type(answer.message) for answer in answers] == [Sync]
    assert answers[0].message == Sync((), nodes["n2"].digest, answer=False)
    watcher.on_message(0.2, "n2", answers[0].message)
    assert watcher.membership.is_up("n2")


@given(
    st.lists(
        st.tuples(st.sampled_from(["put", "take"]), st.sampled_from("abcdefgh"), st.integers(1, 6)),
        max_size=60,
    )
)
def test_news_takes_the_members_with_most_sends_left_first_ties_by_id_as_a_full_sort_would(
    steps: list[tuple[str, str, int]],
) -> None:
    news, model = _News(), {}
    for step, node, number in steps:
        if step == "put":
            news.put(node, number)
            model[node] = number
            continue
        expected = sorted(model.items(), key=lambda item: (-item[1], item[0]))[:number]
        assert news.take(number) == [name for name, _ in expected]
        for name, left in expected:
            if left <= 1:
                del model[name]
            else:
                model[name] = left - 1
        assert len(news) == len(model)


def test_wire_size_is_the_packed_size_of_every_message_kind_and_of_a_table_sent_twice() -> None:
    records = [
        MemberRecord(f"n{i:03d}", f"tcp://10.0.0.{i}:7101", f"tcp://10.0.0.{i}:7102", 1) for i in range(80)
    ]
    rumours = tuple(rumour_of(record, Claim.ALIVE) for record in records)
    table = Sync(rumours, 12345, True)
    messages = [
        Ping(7, 2**63, rumours[:5]),
        Ack(8, "n001", 99, rumours[:32]),
        PingRequest(9, "n002", ()),
        table,
        Sync(rumours, 12345, False),
        table,
    ]
    for message in messages:
        assert wire_size(message) == len(msgpack.packb(wire_form(message)))
