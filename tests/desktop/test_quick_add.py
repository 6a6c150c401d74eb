"""Quick-add parsing: what people type becomes a name, a quantity and a unit."""

from __future__ import annotations

import pytest

from desktop.quick_add import QuickAdd, parse_quick_add


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Eggs 6", QuickAdd("Eggs", 6)),
        ("6 eggs", QuickAdd("Eggs", 6)),
        ("2 kg flour", QuickAdd("Flour", 2, "kg")),
        ("2kg flour", QuickAdd("Flour", 2, "kg")),
        ("flour 2 kg", QuickAdd("Flour", 2, "kg")),
        ("Milk", QuickAdd("Milk", 1)),
        ("  Milk  ", QuickAdd("Milk", 1)),
        ("Eggs x6", QuickAdd("Eggs", 6)),
        ("6x eggs", QuickAdd("Eggs", 6)),
        ("Eggs \u00d712", QuickAdd("Eggs", 12)),
        ("2 bags of rice", QuickAdd("Rice", 2, "bag")),
        ("3 bottles olive oil", QuickAdd("Olive oil", 3, "bottle")),
        ("Olive oil 2 bottles", QuickAdd("Olive oil", 2, "bottle")),
        ("500 g butter", QuickAdd("Butter", 500, "g")),
        ("1.5 kg potatoes", QuickAdd("Potatoes", 1, "1.5 kg")),
        ("1,5 l milk", QuickAdd("Milk", 1, "1,5 l")),
        ("2 litres milk", QuickAdd("Milk", 2, "l")),
        ("iPhone charger", QuickAdd("iPhone charger", 1)),
        ("Chocolate chip cookies 3", QuickAdd("Chocolate chip cookies", 3)),
        ("7 Up", QuickAdd("Up", 7)),
        ("kg", QuickAdd("Kg", 1)),
        ("0 eggs", QuickAdd("Eggs", 1)),
    ],
)
def test_typed_text_parses_into_name_quantity_and_unit(typed: str, expected: QuickAdd) -> None:
    assert parse_quick_add(typed) == expected


@pytest.mark.parametrize("typed", ["", "   ", "6", "x6", "2 kg"])
def test_text_naming_no_item_parses_to_none(typed: str) -> None:
    assert parse_quick_add(typed) is None
