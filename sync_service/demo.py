"""A walk-through of offline merging: two replicas edit the same list apart, then exchange deltas."""

from __future__ import annotations

import argparse

from crdt import ShoppingList


def _table(shopping_list: ShoppingList) -> str:
    rows = sorted(shopping_list.items().items(), key=lambda row: row[0].casefold())
    width = max((len(name) for name, _ in rows), default=4)
    lines = [f"  {'item':<{width}}  needed  acquired"]
    lines += [f"  {name:<{width}}  {needed:>6}  {acquired:>8}" for name, (needed, acquired) in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the design's worked example: A and B edit offline, sync, and agree."""
    argparse.ArgumentParser(prog="shoplist-demo", description=__doc__).parse_args(argv)
    alice, bob = ShoppingList("alice-laptop"), ShoppingList("bob-phone")
    alice_deltas = [alice.set_title("Groceries"), alice.add_item("Milk", 2), alice.add_item("Eggs", 6)]
    bob_deltas = [bob.add_item("Bread", 1), bob.add_item("Eggs", 12, 6)]
    print("Offline, each replica edits its own copy.\n")
    print(f"Alice's copy:\n{_table(alice)}\n\nBob's copy:\n{_table(bob)}\n")
    for delta in bob_deltas:
        alice.merge(delta)
    for delta in alice_deltas + alice_deltas:  # deltas may arrive twice: merging is idempotent
        bob.merge(delta)
    sizes = [len(delta.to_bytes()) for delta in alice_deltas + bob_deltas]
    print(f"They exchange {len(sizes)} deltas ({sum(sizes)} bytes in all) and merge.\n")
    print(f"{alice.title!r}, as both now see it:\n{_table(alice)}\n")
    print(f"Converged: {alice == bob}. The two Eggs adds summed: 6 + 12 = {alice.items()['Eggs'][0]} needed.")
    return 0 if alice == bob else 1


if __name__ == "__main__":
    raise SystemExit(main())
