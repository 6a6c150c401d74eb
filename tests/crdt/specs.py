"""The law-harness specs of each CRDT: its operations as hypothesis strategies."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from crdt import CausalCounter, GCounter, ORSet, PNCounter, ShoppingList
from crdt.causal_counter import EMPTY_COUNTER
from tests.crdt.laws import CrdtSpec

NAMES = ("Milk", " milk ", "MILK", "Eggs", "Bread", "Olive  oil", "olive oil")
quantities = st.integers(0, 20)


def _mutable_merge(state: Any, other: Any) -> None:
    state.merge(other)


def _mutable_copy(state: Any, replica: str) -> Any:
    return state.copy(replica)


GCOUNTER = CrdtSpec(
    name="GCounter",
    empty=GCounter,
    operations=st.builds(lambda n: lambda c: c.increment(n), quantities),
    observe=lambda c: c.value(),
    merge=_mutable_merge,
    copy=_mutable_copy,
    round_trip=lambda c: GCounter.from_bytes(c.to_bytes(), c.replica),
)

PNCOUNTER = CrdtSpec(
    name="PNCounter",
    empty=PNCounter,
    operations=st.one_of(
        st.builds(lambda n: lambda c: c.increment(n), quantities),
        st.builds(lambda n: lambda c: c.decrement(n), quantities),
    ),
    observe=lambda c: c.value(),
    merge=_mutable_merge,
    copy=_mutable_copy,
    round_trip=lambda c: PNCounter.from_bytes(c.to_bytes(), c.replica),
)

ORSET = CrdtSpec(
    name="ORSet",
    empty=ORSet,
    operations=st.one_of(
        st.builds(lambda e: lambda s: s.add(e), st.sampled_from("abcd")),
        st.builds(lambda e: lambda s: s.remove(e), st.sampled_from("abcd")),
    ),
    observe=lambda s: s.value(),
    merge=_mutable_merge,
    copy=_mutable_copy,
    round_trip=lambda s: ORSet.from_bytes(s.to_bytes(), s.replica),
)


class CounterReplica:
    """A mutable holder that lets the immutable CausalCounter run in the harness as one replica."""

    def __init__(self, replica: str, value: CausalCounter = EMPTY_COUNTER) -> None:
        self.replica, self.value = replica, value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CounterReplica) and self.value == other.value

    def change(self, amount: int) -> CausalCounter:
        delta = self.value.changed_by(self.replica, amount)
        self.value = self.value.join(delta)
        return delta

    def reset(self) -> CausalCounter:
        delta = self.value.reset()
        self.value = self.value.join(delta)
        return delta


CAUSAL_COUNTER = CrdtSpec(
    name="CausalCounter",
    empty=CounterReplica,
    operations=st.one_of(
        st.builds(lambda n: lambda c: c.change(n), st.integers(-10, 10)),
        st.just(lambda c: c.reset()),
    ),
    observe=lambda c: c.value.raw_value,
    merge=lambda c, other: setattr(
        c, "value", c.value.join(other.value if isinstance(other, CounterReplica) else other)
    ),
    copy=lambda c, replica: CounterReplica(replica, c.value),
)


def _list_operation(kind: str, name: str, needed: int, acquired: int, detail: str) -> Any:
    if kind == "add":
        return lambda s: s.add_item(name, needed, acquired)
    if kind == "set":
        return lambda s: s.set_item(name, needed=needed, acquired=acquired if acquired % 2 else None)
    if kind == "detail":
        fields = [{"category": detail}, {"note": detail}, {"unit": detail, "note": detail * 2}][needed % 3]
        return lambda s: s.set_item(name, **fields)
    if kind == "title":
        return lambda s: s.set_title(f"List {detail}")
    return lambda s: s.remove_item(name)


SHOPPING_LIST = CrdtSpec(
    name="ShoppingList",
    empty=ShoppingList,
    operations=st.builds(
        _list_operation,
        st.sampled_from(("add", "add", "set", "remove", "detail", "detail", "title")),
        st.sampled_from(NAMES),
        quantities,
        quantities,
        st.sampled_from(("dairy", "bakery", "x")),
    ),
    observe=lambda s: (s.title, s.items(), sorted(s.entries())),
    merge=_mutable_merge,
    copy=_mutable_copy,
    round_trip=lambda s: ShoppingList.from_bytes(s.to_bytes(), s.replica),
)

ALL_SPECS = [GCOUNTER, PNCOUNTER, ORSET, CAUSAL_COUNTER, SHOPPING_LIST]
