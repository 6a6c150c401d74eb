"""The node core on an in-memory network: quorum writes, sloppy quorum with hints, reads, read repair."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crdt import ShoppingList
from protocol.messages import Kind, Message
from server.node_core import Config, Handoff, HandoffState
from tests.server.fakes import FakeNetwork

NAMES = ["n1", "n2", "n3", "n4", "n5"]


def _write(
    network: FakeNetwork, coordinator: str, list_id: str, delta: ShoppingList, request_id: str
) -> Message:
    network.request(coordinator, Message(Kind.WRITE, request_id, {"list": list_id}, delta.to_bytes()))
    network.run()
    return next(answer for answer in network.answers if answer.request_id == request_id)


def _holders(network: FakeNetwork, list_id: str, item: str) -> set[str]:
    return {
        name for name, node in network.nodes.items() if item in node.lists.get(list_id, ShoppingList("x"))
    }


def test_a_write_is_acknowledged_once_and_stored_on_all_n_replicas() -> None:
    network = FakeNetwork(NAMES)
    answer = _write(network, "n1", "groceries", ShoppingList("alice").add_item("Milk", 2), "w1")
    assert answer.kind is Kind.OK
    assert len([a for a in network.answers if a.request_id == "w1"]) == 1
    owners = network.nodes["n1"].core.ring().preference_list("groceries", 3)
    assert _holders(network, "groceries", "Milk") == set(owners)
    assert network.published == ["groceries"]


def test_a_write_with_a_down_owner_succeeds_and_leaves_a_hint_for_it() -> None:
    network = FakeNetwork(NAMES)
    owners = network.nodes["n1"].core.ring().preference_list("groceries", 3)
    network.kill(owners[1])
    answer = _write(network, owners[0], "groceries", ShoppingList("alice").add_item("Eggs", 6), "w1")
    assert answer.kind is Kind.OK
    hints = [(name, hint) for name, node in network.nodes.items() for hint in node.hints]
    assert [hint[0] for _, hint in hints] == [owners[1]]
    assert hints[0][0] not in owners  # a stand-in past the preference list took it


def test_a_write_is_refused_when_fewer_than_w_nodes_are_alive() -> None:
    network = FakeNetwork(["n1", "n2", "n3"])
    network.kill("n2")
    network.kill("n3")
    answer = _write(network, "n1", "groceries", ShoppingList("alice").add_item("Tea"), "w1")
    assert answer.kind is Kind.ERROR
    assert answer.fields["code"] == "unavailable"


def test_on_three_nodes_a_live_owner_keeps_the_hint_for_a_dead_one() -> None:
    network = FakeNetwork(["n1", "n2", "n3"])
    network.kill("n3")
    assert _write(network, "n1", "groceries", ShoppingList("alice").add_item("Tea"), "w1").kind is Kind.OK
    assert [hint[0] for node in network.nodes.values() for hint in node.hints] == ["n3"]


@given(seed=st.integers(0, 10_000), drop=st.sampled_from([0.0, 0.2]), duplicate=st.sampled_from([0.0, 0.5]))
def test_every_write_gets_exactly_one_answer_despite_dropped_and_duplicated_replies(
    seed: int, drop: float, duplicate: float
) -> None:
    network = FakeNetwork(NAMES, seed=seed)
    network.drop, network.duplicate = drop, duplicate
    shopping = ShoppingList("alice")
    for number in range(5):
        network.request(
            f"n{number % 5 + 1}",
            Message(Kind.WRITE, f"w{number}", {"list": "l"}, shopping.add_item(f"item{number}").to_bytes()),
        )
    network.run()
    for _ in range(30):
        network.advance(0.1)
    answered = sorted(answer.request_id for answer in network.answers)
    assert answered == [f"w{number}" for number in range(5)]
    for answer in network.answers:
        if answer.kind is Kind.OK:  # acknowledged: at least W = 2 nodes hold it (as data or a hint)
            number = int(answer.request_id[1:])
            holders = _holders(network, "l", f"item{number}")
            hinted = {n for n, node in network.nodes.items() for hint in node.hints if hint[1] == "l"}
            assert len(holders | hinted) >= 2


def test_a_slow_owner_is_hinted_around_after_the_hint_delay() -> None:
    network = FakeNetwork(NAMES)
    network.drop = 1.0  # no reply ever comes back
    network.request(
        "n1", Message(Kind.WRITE, "w1", {"list": "l"}, ShoppingList("a").add_item("Jam").to_bytes())
    )
    network.run()
    network.drop = 0.0
    network.advance(Config().hint_after)
    assert any(node.hints for node in network.nodes.values())


def test_an_owner_still_slow_after_the_quorum_answered_is_hinted_around_only_at_the_deadline() -> None:
    network = FakeNetwork(["n1", "n2", "n3"])
    network.silent = {"n3"}
    answer = _write(network, "n1", "l", ShoppingList("a").add_item("Jam"), "w1")
    assert answer.kind is Kind.OK
    network.advance(Config().hint_after)
    assert not any(node.hints for node in network.nodes.values())
    network.advance(Config().timeout)
    assert [hint[0] for node in network.nodes.values() for hint in node.hints] == ["n3"]


def test_a_dropped_connection_to_a_silent_owner_hints_around_it_at_once() -> None:
    network = FakeNetwork(["n1", "n2", "n3"])
    network.silent = {"n3"}
    answer = _write(network, "n1", "l", ShoppingList("a").add_item("Jam"), "w1")
    assert answer.kind is Kind.OK
    coordinator = network.nodes["n1"].core
    network.queue += [("n1", effect) for effect in coordinator.on_node_lost(network.now, "n3")]
    network.run()
    assert [hint[0] for node in network.nodes.values() for hint in node.hints] == ["n3"]
    assert not coordinator.membership.is_up("n3")


def test_a_read_merges_replicas_and_repairs_the_stale_one() -> None:
    network = FakeNetwork(["n1", "n2", "n3"])
    alice = ShoppingList("alice")
    network.nodes["n1"].lists["l"] = ShoppingList("r")
    network.nodes["n1"].lists["l"].merge(alice.add_item("Milk", 2))
    network.nodes["n2"].lists["l"] = ShoppingList("r")
    network.nodes["n2"].lists["l"].merge(alice.add_item("Bread", 1))
    network.request("n3", Message(Kind.READ, "r1", {"list": "l"}))
    network.run()
    answer = next(a for a in network.answers if a.request_id == "r1")
    assert answer.kind is Kind.STATE
    assert set(ShoppingList.from_bytes(answer.body).items()) <= {"Milk", "Bread"}
    for name in ("n1", "n2", "n3"):
        assert network.nodes[name].lists["l"].items() == {"Milk": (2, 0), "Bread": (1, 0)}


def test_a_read_fails_cleanly_when_too_few_replicas_answer() -> None:
    network = FakeNetwork(["n1", "n2", "n3"])
    network.kill("n2")
    network.kill("n3")
    network.request("n1", Message(Kind.READ, "r1", {"list": "l"}))
    network.run()
    network.advance(Config().timeout)
    assert [a.fields.get("code") for a in network.answers if a.request_id == "r1"] == ["unavailable"]


def test_hint_handoff_starts_only_for_live_owners_and_returns_to_idle() -> None:
    network = FakeNetwork(["n1", "n2", "n3"])
    network.kill("n3")
    handoff = Handoff()
    membership = network.nodes["n1"].core.membership
    assert handoff.due({"n3": 2}, membership) == []
    network.revive("n3")
    assert handoff.due({"n3": 2, "n2": 0}, membership) == ["n3"]
    assert handoff.due({"n3": 2}, membership) == []  # already sending
    assert handoff.step("n3", "done") is HandoffState.IDLE
    assert handoff.step("n3", "done") is HandoffState.IDLE  # not in the table: ignored
