"""A node's storage on a real PostgreSQL: what a group commit writes is on disk (a fresh Storage with an
empty cache reads it back), removals delete their rows, hints live until handed back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import psycopg
import pytest

from crdt import ShoppingList
from server import storage as storage_module
from server.storage import StaleWriteError, Storage


def with_storage(
    uri: str, scenario: Callable[[Storage], Awaitable[None]], cache_bytes: int = storage_module.CACHE_BYTES
) -> None:
    async def run() -> None:
        storage = Storage(uri, cache_bytes)
        await storage.open()
        try:
            await scenario(storage)
        finally:
            await storage.close()

    asyncio.run(run())


@pytest.fixture
def uri(database_factory: Callable[[], str]) -> str:
    return database_factory()


def test_merged_lists_are_read_back_by_a_storage_that_starts_cold(uri: str) -> None:
    alice = ShoppingList("alice")
    deltas = [alice.add_item(f"thing {number}", number + 1) for number in range(30)]

    async def write(storage: Storage) -> None:
        # Concurrent merges into two lists share group commits; each returns only once it is durable.
        await asyncio.gather(*(storage.merge(f"list-{index % 2}", d) for index, d in enumerate(deltas)))

    async def read(storage: Storage) -> None:
        for index in (0, 1):
            stored = await storage.read(f"list-{index}")
            expected = {f"thing {n}": (n + 1, 0) for n in range(index, 30, 2)}
            assert stored.items() == expected

    with_storage(uri, write)
    with_storage(uri, read)


def test_a_removed_item_is_gone_after_a_restart_and_others_stay(uri: str) -> None:
    alice = ShoppingList("alice")

    async def write(storage: Storage) -> None:
        await storage.merge("groceries", alice.add_item("Milk", 2))
        await storage.merge("groceries", alice.add_item("Eggs", 6))
        await storage.merge("groceries", alice.remove_item("Milk"))

    async def read(storage: Storage) -> None:
        assert (await storage.read("groceries")).items() == {"Eggs": (6, 0)}

    with_storage(uri, write)
    with_storage(uri, read)


def test_hints_are_kept_per_owner_until_deleted(uri: str) -> None:
    body = ShoppingList("alice").add_item("Salt").to_bytes()

    async def write(storage: Storage) -> None:
        await asyncio.gather(
            storage.add_hint("n2", "groceries", body),
            storage.add_hint("n2", "party", body),
            storage.add_hint("n3", "groceries", body),
        )

    async def hand_back(storage: Storage) -> None:
        assert await storage.hint_counts() == {"n2": 2, "n3": 1}
        held = await storage.hints_for("n2")
        assert sorted(list_id for _, list_id, _ in held) == ["groceries", "party"]
        assert all(stored == body for _, _, stored in held)
        await storage.delete_hints([hint_id for hint_id, _, _ in held])
        assert await storage.hint_counts() == {"n3": 1}

    with_storage(uri, write)
    with_storage(uri, hand_back)


def test_a_write_the_database_refuses_does_not_fail_the_others_of_its_group_commit(uri: str) -> None:
    async def scenario(storage: Storage) -> None:
        # Queued together, so one group commit holds all three; PostgreSQL text cannot hold a NUL.
        results = await asyncio.gather(
            storage.add_hint("n1", "list-a", b"first"),
            storage.add_hint("bad\x00owner", "list-a", b"refused"),
            storage.add_hint("n1", "list-b", b"second"),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], Exception)
        assert [body for _, _, body in await storage.hints_for("n1")] == [b"first", b"second"]

    with_storage(uri, scenario)


class HeldWriter:
    """Holds the group-commit writer before its next write until released (and can fail that write), so
    a test can act while a write is queued but not yet on disk."""

    def __init__(self, storage: Storage, fail_first: bool = False) -> None:
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()
        self._fail_first = fail_first
        self._write = storage._write_batch
        storage._write_batch = self._held  # type: ignore[method-assign]

    async def _held(self, batch: list[storage_module._Job]) -> None:
        self.waiting.set()
        await self.release.wait()
        if self._fail_first:
            self._fail_first = False
            raise psycopg.OperationalError("the database went away")
        await self._write(batch)


def test_a_list_with_a_write_in_flight_stays_cached_so_the_next_write_builds_on_it(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found live: with more lists in use than the cache holds, a list was evicted while its write was
    # still queued; the next write reloaded it from disk and wrote a header without the first write's
    # dots, while the first write's item rows still landed: the stored list no longer decoded.
    monkeypatch.setattr(storage_module, "CACHE_LISTS", 1)
    alice = ShoppingList("alice")
    first, second = alice.add_item("Milk"), alice.add_item("Eggs")

    async def write(storage: Storage) -> None:
        held = HeldWriter(storage)
        pending = asyncio.create_task(storage.merge("groceries", first))
        await held.waiting.wait()
        await storage.read("other")  # loads a second list into the cache of one
        following = asyncio.create_task(storage.merge("groceries", second))
        held.release.set()
        await asyncio.gather(pending, following)

    async def read(storage: Storage) -> None:
        assert await storage.read("groceries") == alice

    with_storage(uri, write)
    with_storage(uri, read)


def test_a_write_built_on_a_failed_write_of_the_same_list_fails_too(uri: str) -> None:
    # The second write was merged into the cached copy that holds the first: written alone, its header
    # would claim the first write's dots while the first write's item rows never landed.
    alice = ShoppingList("alice")
    kept = alice.add_item("Bread")
    first, second = alice.add_item("Milk"), alice.add_item("Eggs")

    async def write(storage: Storage) -> None:
        await storage.merge("groceries", kept)
        held = HeldWriter(storage, fail_first=True)
        pending = asyncio.create_task(storage.merge("groceries", first))
        await held.waiting.wait()
        following = asyncio.create_task(storage.merge("groceries", second))
        while not storage._queue.qsize():
            await asyncio.sleep(0)  # let the second merge queue its write behind the held one
        held.release.set()
        results = await asyncio.gather(pending, following, return_exceptions=True)
        assert isinstance(results[0], psycopg.OperationalError)
        assert isinstance(results[1], StaleWriteError)
        assert (await storage.read("groceries")).items() == {"Bread": (1, 0)}
        retried = await storage.merge("groceries", second)  # a retry reloads from disk and lands
        assert retried.items() == {"Bread": (1, 0), "Eggs": (1, 0)}

    async def read(storage: Storage) -> None:
        expected = ShoppingList("reader")
        expected.merge(kept)
        expected.merge(second)
        assert await storage.read("groceries") == expected

    with_storage(uri, write)
    with_storage(uri, read)


def test_a_read_that_overlaps_a_write_does_not_cache_the_rows_from_before_it(uri: str) -> None:
    # Found live: a read missed the cache and queried the disk, a write of the same list loaded, merged
    # and committed meanwhile, then the read cached its older rows; the next write built on those wrote a
    # header without the first write's dots next to its item rows, and the list no longer decoded.
    alice = ShoppingList("alice")
    first, second = alice.add_item("Milk"), alice.add_item("Eggs")
    lists = [f"list-{number}" for number in range(40)]

    async def write(storage: Storage) -> None:
        await asyncio.gather(
            *(task for name in lists for task in (storage.read(name), storage.merge(name, first)))
        )
        await asyncio.gather(*(storage.merge(name, second) for name in lists))

    async def read(storage: Storage) -> None:
        for name in lists:
            assert await storage.read(name) == alice

    with_storage(uri, write)
    with_storage(uri, read)


def big_list(writer: str, items: int) -> ShoppingList:
    """Return a list of `items` items, a third of them removed again, written by `writer`."""
    state = ShoppingList(writer)
    for number in range(items):
        state.merge(state.add_item(f"item {number} of {writer}", number % 9 + 1))
        if number % 3 == 0:
            state.merge(state.remove_item(f"item {number} of {writer}"))
    return state


def test_the_cache_keeps_the_lists_it_holds_within_its_memory_budget(uri: str) -> None:
    # A hostile writer can make lists as big as it likes: the cache is bounded by memory, not by count.
    budget = 200_000
    lists = {f"list-{number}": big_list(f"w{number}", 40) for number in range(30)}

    async def scenario(storage: Storage) -> None:
        for list_id, state in lists.items():
            await storage.merge(list_id, state)
            assert storage.cache_status()["bytes"] <= budget
        assert 0 < storage.cache_status()["lists"] < len(lists)
        for list_id, state in lists.items():  # evicted lists load back from disk
            assert await storage.read(list_id) == state
            assert storage.cache_status()["bytes"] <= budget

    with_storage(uri, scenario, cache_bytes=budget)


def test_the_cache_counts_a_list_as_the_size_it_has_on_disk_after_every_kind_of_write(uri: str) -> None:
    # The size follows each merge from the records it rewrites (added, overwritten, removed items and the
    # header): it must equal the size a cold storage computes from the stored rows.
    alice = ShoppingList("alice")
    deltas = [
        alice.add_item("Milk", 2),
        alice.add_item("Eggs", 6),
        ShoppingList("bob").add_item("Bread"),
        alice.set_item("Milk", 3, category="dairy"),
        alice.remove_item("Eggs"),
        alice.set_title("Weekend"),
        big_list("carol", 25),
        alice.remove_item("Milk"),
    ]
    seen: list[int] = []

    async def write(storage: Storage) -> None:
        for delta in deltas:
            await storage.merge("groceries", delta)
        seen.append(storage.cache_status()["bytes"])

    async def read(storage: Storage) -> None:
        await storage.read("groceries")
        assert storage.cache_status()["bytes"] == seen[0]

    with_storage(uri, write)
    with_storage(uri, read)


def test_a_list_bigger_than_the_whole_cache_is_still_merged_and_read(uri: str) -> None:
    huge = big_list("alice", 60)
    more = ShoppingList("bob").add_item("one more")

    async def scenario(storage: Storage) -> None:
        await storage.merge("huge", huge)
        merged = await storage.merge("huge", more)
        assert "one more" in merged
        await storage.read("other")  # evicts the huge list, now idle
        assert storage.cache_status()["lists"] == 1
        stored = await storage.read("huge")
        assert "one more" in stored and stored.items() == merged.items()

    with_storage(uri, scenario, cache_bytes=10_000)


def test_lists_with_writes_in_flight_stay_cached_over_the_memory_budget(uri: str) -> None:
    # As with the count bound: evicting a list whose write is queued would make the next write build on
    # disk rows without it.
    first = {f"list-{number}": big_list(f"w{number}", 20) for number in range(4)}
    second = {list_id: ShoppingList("late").add_item(f"late in {list_id}") for list_id in first}

    async def write(storage: Storage) -> None:
        held = HeldWriter(storage)
        pending = [asyncio.create_task(storage.merge(list_id, state)) for list_id, state in first.items()]
        await held.waiting.wait()
        while storage.cache_status()["lists"] < len(first):
            await asyncio.sleep(0)
        assert storage.cache_status()["bytes"] > storage.cache_bytes
        await storage.read("other")
        assert storage.cache_status()["lists"] >= len(first)
        pending += [asyncio.create_task(storage.merge(list_id, delta)) for list_id, delta in second.items()]
        held.release.set()
        await asyncio.gather(*pending)

    async def read(storage: Storage) -> None:
        for list_id, state in first.items():
            expected = state.copy()
            expected.merge(second[list_id])
            assert await storage.read(list_id) == expected

    with_storage(uri, write, cache_bytes=1)
    with_storage(uri, read)


def test_no_lock_is_left_behind_for_the_lists_read_and_written(uri: str) -> None:
    # Reads of made-up list ids from a hostile client must not leave one lock each behind for good.
    delta = ShoppingList("alice").add_item("Milk")

    async def scenario(storage: Storage) -> None:
        await asyncio.gather(
            *(storage.read(f"made-up-{number}") for number in range(200)),
            *(storage.merge(f"list-{number % 5}", delta) for number in range(20)),
            storage.stored_digests([f"list-{number}" for number in range(5)]),
        )
        assert storage._locks == {}

    with_storage(uri, scenario)


def test_a_failed_write_is_forgotten_once_no_write_of_its_list_is_in_flight(uri: str) -> None:
    alice = ShoppingList("alice")

    async def scenario(storage: Storage) -> None:
        held = HeldWriter(storage, fail_first=True)
        pending = asyncio.create_task(storage.merge("groceries", alice.add_item("Milk")))
        await held.waiting.wait()
        held.release.set()
        with pytest.raises(psycopg.OperationalError):
            await pending
        assert storage._epochs == {}
        assert (await storage.merge("groceries", alice.add_item("Eggs"))).items() == {"Eggs": (1, 0)}

    with_storage(uri, scenario)
