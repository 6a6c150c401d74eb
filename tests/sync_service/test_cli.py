"""The `shoplist` CLI in real processes: JSON shapes, tables, and bad input that changes nothing."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from sync_service.home import Home
from sync_service.store import Store
from tests.sync_service.conftest import Shoplist, run_shoplist
from tests.sync_service.test_schema import make_version_1_store


def test_the_quick_start_round_trip_prints_the_documented_json(shoplist: Shoplist) -> None:
    created = shoplist("--json", "new", "Groceries").json()
    assert set(created) == {"id", "title"}
    assert created["title"] == "Groceries"
    shoplist("add", "Groceries", "Eggs", "--needed", "6")
    shown = shoplist("--json", "show", "Groceries").json()
    eggs = {"name": "Eggs", "needed": 6, "acquired": 0, "category": "", "unit": "", "note": ""}
    assert shown == {"id": created["id"], "title": "Groceries", "items": [eggs]}


def test_global_options_may_also_follow_the_command(shoplist: Shoplist) -> None:
    created = shoplist("new", "Groceries", "--json").json()
    assert shoplist("lists", "--json").json() == [{"id": created["id"], "title": "Groceries", "items": 0}]


def test_lists_prints_id_title_and_item_count(shoplist: Shoplist) -> None:
    list_id = shoplist("--json", "new", "Groceries").json()["id"]
    shoplist("add", list_id[:6], "Milk")
    shoplist("add", "groceries", "Eggs", "--needed", "6", "--acquired", "2")
    assert shoplist("--json", "lists").json() == [{"id": list_id, "title": "Groceries", "items": 2}]
    table = shoplist("lists").stdout.splitlines()
    assert table[0].split() == ["id", "title", "items"]
    assert table[1].split() == [list_id[:12], "Groceries", "2"]


def test_show_prints_a_table_for_people(shoplist: Shoplist) -> None:
    shoplist("new", "Groceries")
    shoplist("add", "Groceries", "Eggs", "--needed", "12", "--acquired", "6", "--category", "fresh")
    lines = shoplist("show", "Groceries").stdout.splitlines()
    assert lines[0].startswith("Groceries")
    assert lines[1].split() == ["item", "needed", "acquired", "category"]
    assert lines[2].split() == ["Eggs", "12", "6", "fresh"]


def test_set_remove_rename_and_delete(shoplist: Shoplist) -> None:
    list_id = shoplist("--json", "new", "Groceries").json()["id"]
    shoplist("add", "Groceries", "Milk", "--needed", "2")
    assert shoplist("--json", "set", "Groceries", "milk", "--acquired", "2").json()["item"]["acquired"] == 2
    assert shoplist("--json", "rename", "Groceries", "Weekend").json() == {"id": list_id, "title": "Weekend"}
    assert shoplist("--json", "remove", "Weekend", "Milk").json() == {"id": list_id, "removed": "Milk"}
    assert shoplist("--json", "show", "Weekend").json()["items"] == []
    assert shoplist("--json", "delete", list_id).json() == {"id": list_id, "deleted": True}
    assert shoplist("--json", "lists").json() == []


def assert_one_line_error(result: object, code: int, *fragments: str) -> None:
    assert result.code == code, result  # type: ignore[attr-defined]
    lines = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""  # type: ignore[attr-defined]


BAD_ARGUMENTS = {
    "negative quantity": (["add", "Groceries", "Eggs", "--needed", "-1"], "from 0 to"),
    "non-integer quantity": (["set", "Groceries", "Eggs", "--acquired", "two"], "whole number"),
    "fractional quantity": (["add", "Groceries", "Eggs", "--needed", "1.5"], "whole number"),
    "name over the length limit": (["add", "Groceries", "E" * 201], "at most 200 characters"),
    "empty name": (["add", "Groceries", "   "], "cannot be empty"),
    "empty title": (["new", ""], "cannot be empty"),
    "unknown command": (["frobnicate"], "invalid choice"),
}


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS), ids=list(BAD_ARGUMENTS))
def test_bad_arguments_are_usage_errors_that_change_nothing(
    shoplist: Shoplist, store: Store, case: str
) -> None:
    arguments, fragment = BAD_ARGUMENTS[case]
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Eggs", 6)
    before = store.view(list_id)
    assert_one_line_error(shoplist(*arguments), 2, fragment)
    assert store.view(list_id) == before
    assert len(store.lists()) == 1


def test_an_unknown_list_is_an_error_that_changes_nothing(shoplist: Shoplist) -> None:
    shoplist("new", "Groceries")
    before = shoplist("--json", "show", "Groceries").json()
    assert_one_line_error(shoplist("add", "Bakery", "Bread"), 1, "no list matches 'Bakery'")
    assert_one_line_error(shoplist("show", "Bakery"), 1, "no list matches")
    assert shoplist("--json", "show", "Groceries").json() == before


def test_removing_an_absent_item_is_an_error_that_changes_nothing(shoplist: Shoplist) -> None:
    shoplist("new", "Groceries")
    shoplist("add", "Groceries", "Eggs")
    before = shoplist("--json", "show", "Groceries").json()
    assert_one_line_error(shoplist("remove", "Groceries", "Milk"), 1, "no item called 'Milk'")
    assert shoplist("--json", "show", "Groceries").json() == before


def test_an_ambiguous_prefix_lists_the_candidates_and_changes_nothing(
    shoplist: Shoplist, postgres_database: str, tmp_path: Path
) -> None:
    home = Home(tmp_path / "home")
    home.prepare()
    with Store.attach(psycopg.connect(postgres_database, autocommit=True), home) as store:
        ids = [store.create(f"List {number}").id for number in range(17)]  # 17 ids, 16 first digits
    first_digits = [list_id[0] for list_id in ids]
    shared = next(digit for digit in first_digits if first_digits.count(digit) > 1)
    candidates = [list_id for list_id in ids if list_id.startswith(shared)]
    before = shoplist("--json", "show", candidates[0]).json()
    result = shoplist("add", shared, "Milk")
    assert_one_line_error(result, 1, f"matches {len(candidates)} lists", *(c[:12] for c in candidates))
    assert shoplist("--json", "show", candidates[0]).json() == before


def test_a_damaged_list_is_reported_and_its_stored_bytes_stay_as_they_were(
    shoplist: Shoplist, postgres_database: str
) -> None:
    shoplist("new", "Groceries")
    shoplist("add", "Groceries", "Eggs", "--needed", "6")
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute("UPDATE lists SET header = '\\x93a2534801'::bytea")
        snapshot = "SELECT header, (SELECT array_agg(record) FROM items) FROM lists"
        before = connection.execute(snapshot).fetchall()
        assert_one_line_error(shoplist("show", "Groceries"), 1, "damaged")
        assert_one_line_error(shoplist("add", "Groceries", "Milk"), 1, "damaged")
        assert connection.execute(snapshot).fetchall() == before
    assert shoplist("--json", "lists").json()[0]["title"] == "Groceries"


def test_a_home_that_is_not_a_writable_directory_is_an_error(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("not a directory")
    result = run_shoplist(not_a_directory / "home", "lists")
    assert_one_line_error(result, 1, "cannot create home", str(not_a_directory))
    assert_one_line_error(run_shoplist(not_a_directory, "new", "Groceries"), 1, "not a directory")
    assert not_a_directory.read_text() == "not a directory"


def test_the_cli_upgrades_a_version_1_store_in_place(shoplist: Shoplist, postgres_database: str) -> None:
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        make_version_1_store(connection)
    titles = [(entry["title"], entry["items"]) for entry in shoplist("--json", "lists").json()]
    assert titles == [("Groceries", 2), ("Party", 1)]
    shoplist("add", "Groceries", "Milk")
    milk = shoplist("--json", "show", "Groceries").json()["items"][1]
    assert (milk["name"], milk["needed"]) == ("Milk", 3)
