"""Conflict-free replicated data types for shopping lists: pure values, no I/O."""

from crdt.causal_counter import CausalCounter
from crdt.codec import DecodeError, UnsupportedVersionError
from crdt.dots import CausalContext, Dot
from crdt.gcounter import GCounter
from crdt.item import item_key
from crdt.orset import ORSet
from crdt.pncounter import PNCounter
from crdt.register import Register
from crdt.replica import new_replica_id
from crdt.shopping_list import ItemView, ShoppingList

__all__ = [
    "CausalContext",
    "CausalCounter",
    "DecodeError",
    "Dot",
    "GCounter",
    "ItemView",
    "ORSet",
    "PNCounter",
    "Register",
    "ShoppingList",
    "UnsupportedVersionError",
    "item_key",
    "new_replica_id",
]
