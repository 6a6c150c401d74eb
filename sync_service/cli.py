"""The `shoplist` command line: local list commands, tables for people and stable JSON for tools."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from crdt.item import MAX_DETAIL_LENGTH, MAX_NAME_LENGTH, MAX_QUANTITY
from crdt.shopping_list import MAX_TITLE_LENGTH

if TYPE_CHECKING:
    from sync_service.home import Home
    from sync_service.store import Store


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage text is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _quantity(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_QUANTITY:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {MAX_QUANTITY}, got {text}")
    return value


def _text(what: str, limit: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        cleaned = " ".join(text.split())
        if not cleaned:
            raise argparse.ArgumentTypeError(f"{what} cannot be empty")
        if len(cleaned) > limit:
            raise argparse.ArgumentTypeError(
                f"{what} can have at most {limit} characters, got {len(cleaned)}"
            )
        return cleaned

    return check


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """Add --home and --json; on a command's parser too, so they may come before or after it."""
    parser.add_argument(
        "--home",
        default=default,
        help="the local replica's directory (default: $SHOPLIST_HOME, else per user)",
    )
    parser.add_argument("--json", action="store_true", default=default, help="print JSON instead of tables")


def _item_options(parser: argparse.ArgumentParser, adding: bool) -> None:
    parser.add_argument("item", metavar="ITEM", type=_text("an item name", MAX_NAME_LENGTH))
    verb = "add" if adding else "set"
    parser.add_argument("--needed", type=_quantity, default=1 if adding else None, metavar="N",
                        help=f"how many to {verb} to buy" + (" (default 1)" if adding else ""))  # fmt: skip
    parser.add_argument("--acquired", type=_quantity, default=0 if adding else None, metavar="M",
                        help=f"how many to {verb} as bought")  # fmt: skip
    for detail, limit in MAX_DETAIL_LENGTH.items():
        parser.add_argument(f"--{detail}", type=_text(f"a {detail}", limit))


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every `shoplist` command."""
    parser = _Parser(prog="shoplist", description="Local-first shared shopping lists.")
    _global_options(parser, default=None)
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="start the bundled PostgreSQL in a temporary home, write and read a list, and report",
    )
    # Not `required`: --self-test runs without a command; main() asks for one otherwise.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    title = _text("a title", MAX_TITLE_LENGTH)

    def command(name: str, summary: str, *, takes_list: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        if takes_list:
            sub.add_argument("list", metavar="LIST", help="a list id, a unique title, or a unique id prefix")
        return sub

    command("new", "create a list", takes_list=False).add_argument("title", metavar="TITLE", type=title)
    command("lists", "show every list", takes_list=False)
    command("show", "show a list's items")
    _item_options(command("add", "add to an item's quantities (creating it)"), adding=True)
    _item_options(command("set", "set an item's quantities and details (creating it)"), adding=False)
    command("remove", "remove an item").add_argument(
        "item", metavar="ITEM", type=_text("an item name", MAX_NAME_LENGTH)
    )
    command("delete", "forget a list on this computer")
    command("rename", "give a list a new title").add_argument("title", metavar="TITLE", type=title)
    store = command("store", "start, stop or inspect the local store's server", takes_list=False)
    store.add_argument("action", choices=("start", "stop", "status"))
    config = command("config", "show this replica's settings, or set its proxies", takes_list=False)
    config.add_argument("setting", nargs="?", choices=("proxies",), help="`proxies URL...` sets the cloud")
    config.add_argument("urls", nargs="*", metavar="URL", help="proxy endpoints; none resets to the default")
    from sync_service import cli_online

    cli_online.add_commands(command)
    for sub in commands.choices.values():
        _global_options(sub, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `shoplist` command and return its exit code."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.self_test:
        if arguments.command is not None:
            parser.error("--self-test takes no command")
        from sync_service import self_test

        return self_test.run()
    if arguments.command is None:
        parser.error("the following arguments are required: COMMAND")
    import logging

    # Commands report in one line on stderr; the sync machinery's own log lines are for the service.
    logging.getLogger("shoplist").addHandler(logging.NullHandler())
    logging.getLogger("shoplist").propagate = False
    from sync_service.errors import ShoplistError

    try:
        _COMMANDS[arguments.command](arguments)
    except ShoplistError as error:
        print(f"shoplist: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if not _is_database_outage(error):
            raise  # a bug: the traceback is the report
        print(f"shoplist: the store's PostgreSQL stopped answering: {error}".splitlines()[0], file=sys.stderr)
        return 1
    return 0


def _is_database_outage(error: Exception) -> bool:
    """Return whether `error` is the database connection failing (the environment, not a bug)."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.OperationalError)


# ----- commands --------------------------------------------------------------------------------------


def _home(arguments: argparse.Namespace) -> Home:
    from sync_service.home import resolve_home

    return resolve_home(arguments.home)


def _open(arguments: argparse.Namespace) -> Store:
    from sync_service.store import open_store

    return open_store(_home(arguments))


def _say(arguments: argparse.Namespace, text: Callable[[], str], data: Callable[[], Any]) -> None:
    from sync_service.output import to_json

    print(to_json(data()) if arguments.json else text())


def _new(arguments: argparse.Namespace) -> None:
    from sync_service import output

    with _open(arguments) as store:
        created = store.create(arguments.title)
    _say(arguments, lambda: f"Created {created.title!r} ({created.id})", lambda: output.summary_json(created))


def _lists(arguments: argparse.Namespace) -> None:
    from sync_service import output

    with _open(arguments) as store:
        summaries = store.lists()
    _say(arguments, lambda: output.lists_text(summaries), lambda: output.lists_json(summaries))


def _show(arguments: argparse.Namespace) -> None:
    from sync_service import output

    with _open(arguments) as store:
        view = store.view(store.find(arguments.list).id)
    _say(arguments, lambda: output.list_text(view), lambda: output.list_json(view))


def _details(arguments: argparse.Namespace) -> dict[str, str]:
    given = {field: getattr(arguments, field) for field in ("category", "unit", "note")}
    return {field: value for field, value in given.items() if value is not None}


def _add_or_set(arguments: argparse.Namespace) -> None:
    from sync_service import output

    with _open(arguments) as store:
        target = store.find(arguments.list)
        write = store.add_item if arguments.command == "add" else store.set_item
        item = write(target.id, arguments.item, arguments.needed, arguments.acquired, **_details(arguments))
    _say(
        arguments,
        lambda: output.item_text(target.title, item),
        lambda: {"id": target.id, "item": output.item_json(item)},
    )


def _remove(arguments: argparse.Namespace) -> None:
    with _open(arguments) as store:
        target = store.find(arguments.list)
        store.remove_item(target.id, arguments.item)
    _say(
        arguments,
        lambda: f"Removed {arguments.item!r} from {target.title!r}",
        lambda: {"id": target.id, "removed": arguments.item},
    )


def _delete(arguments: argparse.Namespace) -> None:
    with _open(arguments) as store:
        target = store.find(arguments.list)
        store.delete(target.id)
    _say(
        arguments,
        lambda: f"Deleted {target.title!r} ({target.id})",
        lambda: {"id": target.id, "deleted": True},
    )


def _rename(arguments: argparse.Namespace) -> None:
    from sync_service import output

    with _open(arguments) as store:
        renamed = store.rename(store.find(arguments.list).id, arguments.title)
    _say(
        arguments,
        lambda: f"Renamed to {renamed.title!r} ({renamed.id})",
        lambda: output.summary_json(renamed),
    )


def _store(arguments: argparse.Namespace) -> None:
    from sync_service import output, postgres_server

    home = _home(arguments)
    if arguments.action == "start":
        _open(arguments).close()  # starts the server and brings the schema up to date
        status = postgres_server.status(home)
    elif arguments.action == "stop":
        was_running = postgres_server.stop(home)
        _say(
            arguments,
            lambda: "Store stopped." if was_running else "Store was not running.",
            lambda: {"running": False, "was_running": was_running},
        )
        return
    else:
        status = postgres_server.status(home)
    _say(arguments, lambda: output.status_text(status), lambda: output.status_json(status))


def _config(arguments: argparse.Namespace) -> None:
    import os

    from sync_service import cli_online
    from sync_service.home import DATABASE_URL_ENV
    from sync_service.proxies import choose_proxies

    home = _home(arguments)
    if arguments.setting == "proxies":
        cli_online.config_proxies(arguments, home, _say)
        return
    if arguments.urls:
        from sync_service.errors import UsageError

        raise UsageError(f"unexpected arguments after config: {' '.join(arguments.urls)}")
    proxies = choose_proxies(home)
    settings = {
        "home": str(home.path),
        "data_dir": str(home.data_dir),
        "socket_dir": str(home.socket_dir),
        "log": str(home.log_file),
        "database_url_override": bool(os.environ.get(DATABASE_URL_ENV)),
        "proxies": list(proxies.endpoints),
        "proxies_from": proxies.source,
    }
    _say(
        arguments,
        lambda: "\n".join(f"{key + ':':<23}{value}" for key, value in settings.items()),
        lambda: settings,
    )


def _share(arguments: argparse.Namespace) -> None:
    from sync_service import cli_online

    with _open(arguments) as store:
        cli_online.share(arguments, store, _say)


def _reshare(arguments: argparse.Namespace) -> None:
    from sync_service import cli_online

    with _open(arguments) as store:
        cli_online.reshare(arguments, store, _home(arguments), _say)


def _join(arguments: argparse.Namespace) -> None:
    from sync_service import cli_online

    with _open(arguments) as store:
        cli_online.join(arguments, store, _home(arguments), _say)


def _pull(arguments: argparse.Namespace) -> None:
    from sync_service import cli_online

    with _open(arguments) as store:
        cli_online.pull(arguments, store, _home(arguments), _say)


def _sync(arguments: argparse.Namespace) -> None:
    from sync_service import cli_online

    cli_online.sync(arguments, _home(arguments), _say)


def _sync_status(arguments: argparse.Namespace) -> None:
    from sync_service import cli_online

    with _open(arguments) as store:
        cli_online.status(arguments, store, _home(arguments), _say)


_COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "new": _new,
    "lists": _lists,
    "show": _show,
    "add": _add_or_set,
    "set": _add_or_set,
    "remove": _remove,
    "delete": _delete,
    "rename": _rename,
    "store": _store,
    "config": _config,
    "share": _share,
    "reshare": _reshare,
    "join": _join,
    "pull": _pull,
    "sync": _sync,
    "status": _sync_status,
}

if __name__ == "__main__":
    raise SystemExit(main())
