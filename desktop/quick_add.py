"""Quick-add parsing: turns what a person types ("Eggs 6", "6 eggs", "2 kg flour") into an item to add."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Units a quantity may carry; plurals and spellings map to the form shown in the Unit column.
UNITS = {
    **{name: name for name in ("g", "kg", "mg", "ml", "cl", "dl", "l", "lb", "oz", "tsp", "tbsp")},
    "lbs": "lb",
    "gram": "g",
    "grams": "g",
    "kilo": "kg",
    "kilos": "kg",
    "litre": "l",
    "litres": "l",
    "liter": "l",
    "liters": "l",
    **{
        word: word for word in ("pack", "bag", "bottle", "can", "jar", "tin", "box", "bunch", "loaf", "dozen")
    },
    **{word + "s": word for word in ("pack", "bag", "bottle", "can", "jar", "tin", "cup")},
    "cup": "cup",
    "boxes": "box",
    "bunches": "bunch",
    "loaves": "loaf",
    "pc": "pc",
    "pcs": "pc",
    "piece": "pc",
    "pieces": "pc",
}

_NUMBER = r"\d+(?:[.,]\d+)?"
_TIMES = "x\u00d7"  # x and the multiplication sign
# "6", "6x", "x6", "\u00d76": a count, optionally marked as a multiplier.
_COUNT = re.compile(rf"^(?:[{_TIMES}]\s*)?({_NUMBER})(?:\s*[{_TIMES}])?$", re.IGNORECASE)
# "2kg" written without a space.
_GLUED_UNIT = re.compile(rf"^({_NUMBER})([^\d\s.,]+)$")


@dataclass(frozen=True)
class QuickAdd:
    """An item to add: its name, how many are needed, and the unit of that quantity ("" for none)."""

    name: str
    needed: int = 1
    unit: str = ""


def parse_quick_add(text: str) -> QuickAdd | None:
    """Return the item `text` describes, or None when it names nothing (empty, or a number alone).

    A quantity may lead ("6 eggs", "2 kg flour", "2 bags of rice") or trail ("Eggs 6", "flour 2 kg",
    "Eggs x6"). Quantities are whole numbers; a fractional one with a unit ("1.5 kg flour") becomes one
    of that size (unit "1.5 kg"). A name typed all in lower case gets a capital first letter.
    """
    words = _split_glued_units(text.split())
    if not words or _is_quantity_alone(words):
        return None
    parsed = _leading_quantity(words) or _trailing_quantity(words) or (words, "1", "")
    name_words, number, unit = parsed
    if name_words and name_words[0].casefold() == "of" and len(name_words) > 1:
        name_words = name_words[1:]
    name = " ".join(name_words)
    if not name:
        return None
    needed, unit = _whole_quantity(number, unit)
    if name == name.lower():
        name = name[0].upper() + name[1:]
    return QuickAdd(name, needed, unit)


def _is_quantity_alone(words: list[str]) -> bool:
    """Return whether the words are a number alone ("6", "x6") or a number and a unit ("2 kg")."""
    if _COUNT.match(words[0]) is None:
        return False
    return len(words) == 1 or (len(words) == 2 and words[1].casefold() in UNITS)


def _split_glued_units(words: list[str]) -> list[str]:
    """Split "2kg" into "2", "kg" when the letters are a known unit."""
    result: list[str] = []
    for word in words:
        glued = _GLUED_UNIT.match(word)
        if glued and glued.group(2).casefold() in UNITS:
            result += [glued.group(1), glued.group(2)]
        else:
            result.append(word)
    return result


def _leading_quantity(words: list[str]) -> tuple[list[str], str, str] | None:
    count = _COUNT.match(words[0])
    if count is None or len(words) < 2:
        return None
    unit = UNITS.get(words[1].casefold())
    if unit is not None and len(words) > 2:
        return words[2:], count.group(1), unit
    return words[1:], count.group(1), ""


def _trailing_quantity(words: list[str]) -> tuple[list[str], str, str] | None:
    if len(words) >= 3 and words[-1].casefold() in UNITS:
        count = _COUNT.match(words[-2])
        if count is not None:
            return words[:-2], count.group(1), UNITS[words[-1].casefold()]
    count = _COUNT.match(words[-1])
    if count is None or len(words) < 2:
        return None
    return words[:-1], count.group(1), ""


def _whole_quantity(number: str, unit: str) -> tuple[int, str]:
    """Return (needed, unit) for a typed number: a fraction with a unit is one item of that size."""
    value = float(number.replace(",", "."))
    if value.is_integer():
        return max(int(value), 1), unit
    if unit:
        return 1, f"{number} {unit}"
    return max(round(value), 1), unit
