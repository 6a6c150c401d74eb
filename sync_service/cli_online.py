"""The `shoplist` commands that talk to the cloud: share, reshare, join, pull, sync, status, config
proxies."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sync_service.errors import EnvironmentProblem, ListNotFoundError, ShoplistError, UsageError

if TYPE_CHECKING:
    from sync_service.home import Home
    from sync_service.proxies import ProxyChoice
    from sync_service.store import ListSummary, Store

T = TypeVar("T")
Say = Callable[[argparse.Namespace, Callable[[], str], Callable[[], Any]], None]


class CloudUnreachable(EnvironmentProblem):
    """The cloud did not answer; nothing local was changed."""


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the online commands through the CLI's `command(name, summary, takes_list=)` helper."""
    command("share", "print the share code that lets others open this list")
    command("reshare", "give a list a new share code; the old code then opens an empty list")
    command("join", "add a shared list to this computer by its code", takes_list=False).add_argument(
        "code", metavar="CODE", help="the share code, e.g. SL-1234-…"
    )
    command("pull", "fetch the cloud's copy of a list now")
    sync = command("sync", "push local changes and pull every list once", takes_list=False)
    sync.add_argument("--timeout", type=float, default=30.0, metavar="S", help="give up after S seconds")
    command("status", "show the sync state: service, proxies, pending changes, secrets", takes_list=False)


def share(arguments: argparse.Namespace, store: Store, say: Say) -> None:
    """Print the list's share code and mark the list shared."""
    from sync_service.share_code import share_code

    target = store.find(arguments.list)
    code = share_code(target.id)
    store.mark_shared(target.id)
    pending = sum(1 for entry in store.outbox() if entry.list_id == target.id)
    hint = (
        "" if not pending else "\n(its latest changes reach the cloud at the next sync: run `shoplist sync`)"
    )
    say(
        arguments,
        lambda: f"Share code of {target.title!r}: {code}{hint}",
        lambda: {"id": target.id, "title": target.title, "code": code},
    )


def reshare(arguments: argparse.Namespace, store: Store, home: Home, say: Say) -> None:
    """Give a list a new share code and print it; the old code then opens an empty list."""
    old = store.find(arguments.list)
    moved, code = reshare_list(store, home, old.id)
    say(
        arguments,
        lambda: f"New share code of {moved.title!r}: {code}\n(the old code now opens an empty list)",
        lambda: {"id": moved.id, "old_id": old.id, "title": moved.title, "code": code},
    )


def reshare_list(store: Store, home: Home, list_id: str) -> tuple[ListSummary, str]:
    """Revoke the list's share code: move the list to a new random id keeping its CRDT state (merged
    with the cloud's copy), push it, clear the old list in the cloud, forget the old list here, and
    return the new list and its code.

    Needs the cloud: raises CloudUnreachable, before changing anything, when it does not answer. If it
    stops answering after the move, raises ShoplistError naming the new code; the clearing of the old
    list then waits in its outbox for the next sync.
    """
    from sync_service.share_code import share_code

    title = store.find(list_id).title
    cloud_state = _with_cloud(home, lambda client: client.read(list_id))
    moved, clear = store.reshare(list_id, cloud_state)
    code = share_code(moved.id)

    async def push(client: Any) -> None:
        await client.write(moved.id, store.load(moved.id))
        if not clear.is_empty():
            await client.write(list_id, clear)

    try:
        _with_cloud(home, push)
    except ShoplistError as problem:
        raise ShoplistError(
            f"{title!r} has the new code {code}, but the cloud did not take the change ({problem});"
            " the old code shows the old items until the next sync; delete the emptied old list"
            f" ({list_id[:12]}) after it"
        ) from None
    store.delete(list_id)  # its clearing is in the cloud: its outbox holds nothing else to send
    return moved, code


def join(arguments: argparse.Namespace, store: Store, home: Home, say: Say) -> None:
    """Fetch the list a share code names and add it to this home."""
    summary = join_by_code(store, home, arguments.code)
    say(
        arguments,
        lambda: f"Joined {summary.title!r} ({summary.items} items)",
        lambda: {"id": summary.id, "title": summary.title, "items": summary.items},
    )


def join_by_code(store: Store, home: Home, code: str) -> ListSummary:
    """Fetch the list `code` names from the cloud, add it to the home marked shared, and return it.

    Raises UsageError on a mistyped code, ListNotFoundError if the cloud lacks the list, CloudUnreachable.
    """
    from sync_service.share_code import ShareCodeError, list_id_of

    try:
        list_id = list_id_of(code)
    except ShareCodeError as error:
        raise UsageError(str(error)) from None
    state = _with_cloud(home, lambda client: client.read(list_id))
    if state.is_empty():
        raise ListNotFoundError("the cloud holds no list with that code (has its owner synced it yet?)")
    store.merge_remote(list_id, state)
    store.mark_shared(list_id)
    return next(summary for summary in store.lists() if summary.id == list_id)


def pull(arguments: argparse.Namespace, store: Store, home: Home, say: Say) -> None:
    """Merge the cloud's copy of one list into this home."""
    target = store.find(arguments.list)
    state = _with_cloud(home, lambda client: client.read(target.id))
    if not state.is_empty():
        store.merge_remote(target.id, state)
    view = store.view(target.id)
    say(
        arguments,
        lambda: f"Pulled {view.title!r}: {len(view.items)} items",
        lambda: {"id": target.id, "title": view.title, "items": len(view.items)},
    )


def sync(arguments: argparse.Namespace, home: Home, say: Say) -> None:
    """Push every local change and pull every list once; fail if the cloud does not answer."""
    from sync_service.cloud_link import CloudLink
    from sync_service.keychain import client_keys
    from sync_service.store import open_store
    from sync_service.syncer import Syncer

    endpoints = _proxies(home).endpoints

    def finished(syncer: Syncer) -> bool:
        status = syncer.status
        return status is not None and status.state in ("synced", "offline", "error")

    keys = client_keys(home)

    async def run() -> Syncer:
        link = CloudLink(endpoints, keys=keys)
        syncer = Syncer(lambda: open_store(home), link)
        try:
            await asyncio.wait_for(syncer.run(until=finished), arguments.timeout)
        except TimeoutError:
            raise CloudUnreachable(f"sync did not finish within {arguments.timeout:g} s") from None
        finally:
            link.close()
        return syncer

    status = asyncio.run(run()).status
    assert status is not None
    if status.state == "error":
        raise ShoplistError(f"{status.detail}; {status.pending} local change(s) are kept")
    if status.state == "offline":
        raise CloudUnreachable(
            f"the cloud is unreachable ({status.detail}); {status.pending} local change(s) are kept"
            " and will be sent later"
        )
    say(arguments, lambda: "Everything is synced.", lambda: {"state": status.state, "pending": 0})


def status(arguments: argparse.Namespace, store: Store, home: Home, say: Say) -> None:
    """Show whether the sync service runs, what it last reported, what waits to be sent, and where the
    home's secrets are."""
    from sync_service.keychain import secrets_report

    proxies = _proxies(home, required=False)
    reported = store.sync_status()
    running = store.sync_service_running()
    pending: dict[str, int] = {}
    for entry in store.outbox():
        pending[entry.list_id] = pending.get(entry.list_id, 0) + 1
    titles = {summary.id: summary.title for summary in store.lists()}
    data = {
        "service_running": running,
        "state": reported.state if reported else None,
        "detail": reported.detail if reported else "",
        "last_sync": reported.last_sync.isoformat() if reported and reported.last_sync else None,
        "proxies": list(proxies.endpoints),
        "proxies_from": proxies.source,
        "pending": sum(pending.values()),
        "lists": [
            {"id": list_id, "title": titles.get(list_id, ""), "pending": count}
            for list_id, count in sorted(pending.items())
        ],
        "secrets": secrets_report(home).to_json(),
    }
    say(arguments, lambda: _status_text(data), lambda: data)


def config_proxies(arguments: argparse.Namespace, home: Home, say: Say) -> None:
    """Set (or with no URLs, reset) this home's proxies."""
    from sync_service.proxies import choose_proxies, parse_endpoints, save_proxies

    save_proxies(home, parse_endpoints(list(arguments.urls)))
    chosen = choose_proxies(home)
    say(
        arguments,
        lambda: f"Proxies: {', '.join(chosen.endpoints) or 'none'} (from {chosen.source})",
        lambda: {"proxies": list(chosen.endpoints), "proxies_from": chosen.source},
    )


def _status_text(data: dict[str, Any]) -> str:
    from sync_service.keychain_core import SecretsReport

    service = "running" if data["service_running"] else "not running (start it with shoplist-sync)"
    lines = [
        f"sync service:  {service}",
        f"last state:    {data['state'] or 'never synced'}"
        + (f" ({data['detail']})" if data["detail"] else ""),
        f"last sync:     {data['last_sync'] or 'never'}",
        f"proxies:       {', '.join(data['proxies']) or 'none'} (from {data['proxies_from']})",
        f"pending:       {data['pending']} local change(s)",
    ]
    lines += [f"  {entry['title'] or entry['id']}: {entry['pending']}" for entry in data["lists"]]
    lines.append(f"secrets:       {SecretsReport.from_json(data['secrets']).line()}")
    return "\n".join(lines)


def _proxies(home: Home, *, required: bool = True) -> ProxyChoice:
    from sync_service.proxies import choose_proxies, require_pinned_keys

    chosen = choose_proxies(home)
    if required:
        require_pinned_keys(chosen)
    if required and not chosen.endpoints:
        raise UsageError(
            "no cloud configured: set SHOPLIST_PROXIES, run `shoplist config proxies URL...`,"
            " or start a local one with `shoplist-server cluster`"
        )
    return chosen


def _with_cloud(home: Home, call: Callable[[Any], Awaitable[T]]) -> T:
    """Run one request through a fresh cloud client; raise CloudUnreachable or a ShoplistError."""
    from sync_service.client import CloudClient, CloudError, CloudUnavailable
    from sync_service.keychain import client_keys

    endpoints, keys = _proxies(home).endpoints, client_keys(home)

    async def run() -> T:
        client = CloudClient(endpoints, keys=keys)
        try:
            return await call(client)
        finally:
            client.close()

    try:
        return asyncio.run(run())
    except CloudUnavailable as error:
        raise CloudUnreachable(f"the cloud is unreachable: {error}; nothing was changed") from None
    except CloudError as error:
        raise ShoplistError(f"the cloud refused the request: {error}") from None
