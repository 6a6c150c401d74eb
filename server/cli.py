"""`shoplist-server`: run a node, a proxy or a whole local cluster, and show the cluster's status."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import zmq

from protocol.endpoints import split_endpoint, with_key
from protocol.messages import Kind, Message, ProtocolError, decode, encode
from server import sockets
from server.keys import (
    CREATE_HINT,
    NO_MEMBER_KEYS,
    KeyFileError,
    KeyPair,
    MemberKeys,
    generate,
    load_members,
    load_secret,
)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:7000"
INSECURE_ENV = "SHOPLIST_INSECURE"
ADMIN_KEY_ENV = "SHOPLIST_SERVER_KEY"
"""A secret key file `status`, `leave` and the tools use to talk to nodes (a member key); by default a
fresh key pair, which proxies accept but nodes refuse."""
INSECURE_WARNING = (
    "INSECURE: running in plain text (--insecure). Anyone on the network can read and forge every "
    "message. Use this only for local debugging."
)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shoplist-server", description="Run and inspect the Shoplist cloud."
    )
    parser.add_argument("--log-level", default=os.environ.get("SHOPLIST_LOG_LEVEL", "INFO"))
    commands = parser.add_subparsers(dest="command", required=True)

    node = commands.add_parser("node", help="run one server node (with its own PostgreSQL)")
    node.add_argument("--id", required=True, help="node id, unique in the cluster (e.g. n1)")
    node.add_argument("--bind", required=True, help="request endpoint, e.g. tcp://127.0.0.1:7101")
    node.add_argument("--publish", required=True, help="change feed endpoint, e.g. tcp://127.0.0.1:7102")
    node.add_argument("--data", required=True, type=Path, help="directory for this node's PostgreSQL")
    node.add_argument("--seeds", default="", help="comma-separated request endpoints of other nodes")
    node.add_argument("-n", "--replicas", type=int, default=3)
    node.add_argument("-r", "--read-quorum", type=int, default=2)
    node.add_argument("-w", "--write-quorum", type=int, default=2)
    node.add_argument(
        "--join", default=None, metavar="SEED", help="join a running ring through SEED (a node endpoint)"
    )
    node.add_argument("--leave", action="store_true", help="hand every partition off, then exit")
    _add_security(node, members=True)
    node.add_argument(
        "--no-anti-entropy", dest="anti_entropy", action="store_false", help="do not compare replicas"
    )
    node.add_argument("--exchange-every", type=float, default=1.0, help="seconds between exchanges per peer")
    node.add_argument("--repairs-per-second", type=float, default=500.0, help="anti-entropy repair budget")
    node.add_argument(
        "--max-store-work",
        type=_positive(int),
        metavar="N",
        help="replica requests served at once; more are answered `unavailable` (default 256)",
    )
    node.add_argument(
        "--max-coordinating",
        type=_positive(int),
        metavar="N",
        help="writes and reads coordinated at once; more are answered `unavailable` (default 333)",
    )
    node.add_argument(
        "--cache-mb",
        type=_positive(int),
        metavar="MB",
        help="memory for lists kept decoded in memory (estimated); the least recently used go (default 16)",
    )
    node.add_argument(
        "--scrub-every", type=float, default=60.0, help="seconds between re-reading lists from disk"
    )
    node.set_defaults(run=_run_node)

    leave = commands.add_parser("leave", help="make a node hand its partitions off and exit")
    leave.add_argument("node", help="the node's id (looked up through --endpoint) or its request endpoint")
    leave.add_argument(
        "--endpoint", default=None, help="a proxy or node (default: first of SHOPLIST_PROXIES)"
    )
    leave.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the handoff")
    _add_client_security(leave)
    leave.set_defaults(run=_run_leave)

    proxy = commands.add_parser("proxy", help="run one stateless proxy")
    proxy.add_argument("--id", default="proxy")
    proxy.add_argument("--bind", required=True, help="client endpoint, e.g. tcp://127.0.0.1:7000")
    proxy.add_argument("--publish", required=True, help="subscriber endpoint, e.g. tcp://127.0.0.1:7001")
    proxy.add_argument("--seeds", required=True, help="comma-separated node request endpoints")
    proxy.add_argument("-n", "--replicas", type=int, default=3)
    _proxy_limits(proxy)
    _add_security(proxy, members=False)
    proxy.set_defaults(run=_run_proxy)

    status = commands.add_parser("status", help="show members, state, ownership, hints and handoffs")
    status.add_argument(
        "--endpoint", default=None, help="a proxy or node (default: first of SHOPLIST_PROXIES)"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--timeout", type=float, default=2.0)
    _add_client_security(status)
    status.set_defaults(run=_run_status)

    cluster = commands.add_parser("cluster", help="run a whole local ring: nodes, proxies, PostgreSQL each")
    cluster.add_argument("--nodes", type=int, default=3)
    cluster.add_argument("--proxies", type=int, default=2)
    cluster.add_argument("--data", required=True, type=Path, help="directory for every node's data")
    cluster.add_argument("--port", type=int, default=None, help="first port (default: free ports)")
    cluster.add_argument("--insecure", action="store_true", help="plain text, no keys (local debugging only)")
    cluster.set_defaults(run=_run_cluster)

    keys = commands.add_parser("keys", help="create a Curve key pair for a node or proxy")
    keys.add_argument("name", help="the key's name, e.g. n1 (files NAME.key and NAME.key_secret)")
    keys.add_argument("--out", required=True, type=Path, help="directory to write the two key files to")
    keys.add_argument("--json", action="store_true", help="print JSON")
    keys.set_defaults(run=_run_keys)

    revoke = commands.add_parser("revoke", help="shut a node's or proxy's key out of the cluster")
    revoke.add_argument("who", help="the key's name in the members file or directory, or the public key")
    revoke.add_argument("--members", required=True, type=Path, help="the members file or directory to change")
    revoke.set_defaults(run=_run_revoke)
    return parser


def _proxy_limits(proxy: argparse.ArgumentParser) -> None:
    from server.capability import DEFAULT_MAX_TOPICS
    from server.rate_limit import DEFAULT_BURST, DEFAULT_MAX_BUCKETS, DEFAULT_RATE

    limits = proxy.add_argument_group("limits")
    options: list[tuple[str, Any, float, str]] = [
        ("--rate", float, DEFAULT_RATE, "requests per second one client connection may send"),
        ("--burst", float, DEFAULT_BURST, "requests one connection may send at once after a pause"),
        ("--rate-table", int, DEFAULT_MAX_BUCKETS, "client connections whose rate is tracked at once"),
        ("--max-topics", int, DEFAULT_MAX_TOPICS, "lists that subscribers may follow through this proxy"),
        ("--client-hwm", int, sockets.FRONT_HWM, "messages queued per client connection, each way"),
    ]
    for flag, kind, default, text in options:
        limits.add_argument(
            flag, type=_positive(kind), default=default, metavar="N", help=f"{text} (default {default:g})"
        )


def _positive(kind: Any) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
        return value

    return parse


def _add_security(command: argparse.ArgumentParser, *, members: bool) -> None:
    command.add_argument("--key", type=Path, help="this process's secret key file (NAME.key_secret)")
    if members:
        command.add_argument(
            "--members", type=Path, help="the allowed public keys: a members file or a directory of *.key"
        )
    command.add_argument("--insecure", action="store_true", help="plain text, no keys (local debugging only)")


def _add_client_security(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--key", type=Path, default=None, help=f"secret key file to connect with (default: ${ADMIN_KEY_ENV})"
    )
    command.add_argument("--insecure", action="store_true", help="allow endpoints without ?key= (plain text)")


def _server_keys(
    args: argparse.Namespace, role: str, seeds: tuple[str, ...]
) -> tuple[KeyPair | None, MemberKeys] | None:
    """Return the process's key pair and members (None, {} with --insecure); print why and return None
    when they are missing or bad, or a seed pins no key."""
    wants_members = hasattr(args, "members")
    if args.insecure:
        warn_loudly(INSECURE_WARNING)
        return None, NO_MEMBER_KEYS
    if args.key is None or (wants_members and args.members is None):
        needed = "--key FILE and --members FILE_OR_DIR" if wants_members else "--key FILE"
        print(
            f"shoplist-server {role}: CurveZMQ keys are required: pass {needed}; {CREATE_HINT}",
            file=sys.stderr,
        )
        return None
    try:
        pair = load_secret(args.key)
        allowed = load_members(args.members) if wants_members else NO_MEMBER_KEYS
        for seed in seeds:
            if split_endpoint(seed)[1] is None:
                raise ValueError(f"seed {seed} has no ?key=<its public key>; a Curve link must pin it")
    except (KeyFileError, ValueError) as problem:
        print(f"shoplist-server {role}: {problem}", file=sys.stderr)
        return None
    return pair, allowed


def warn_loudly(text: str) -> None:
    """Log `text` loudly, framed so that it stands out in a log."""
    bar = "!" * min(100, len(text))
    for line in (bar, text, bar):
        logging.getLogger("shoplist.security").warning(line)


def _run_keys(args: argparse.Namespace) -> int:
    from server.keys import write_key_pair

    try:
        pair, public_path, secret_path = write_key_pair(args.out, args.name)
    except (KeyFileError, OSError) as problem:
        print(f"shoplist-server keys: {problem}", file=sys.stderr)
        return 1
    if args.json:
        info = {"name": args.name, "public": pair.public, "public_file": str(public_path)}
        print(json.dumps({**info, "secret_file": str(secret_path)}, sort_keys=True))
    else:
        print(pair.public)
        print(
            f"wrote {public_path} (share it) and {secret_path} (owner-only, keep it secret)", file=sys.stderr
        )
    return 0


def _run_revoke(args: argparse.Namespace) -> int:
    from server.keys import MEMBERS_REREAD_SECONDS, revoke

    try:
        key, changed = revoke(args.members, args.who)
    except (KeyFileError, OSError) as problem:
        print(f"shoplist-server revoke: {problem}", file=sys.stderr)
        return 1
    print(key)
    print(
        f"revoked in {changed}: put this members file (or directory) on every node; running nodes read it"
        f" again within {MEMBERS_REREAD_SECONDS:g} s, drop the key's links and build the ring without its"
        " member",
        file=sys.stderr,
    )
    return 0


def _seeds(text: str) -> tuple[str, ...]:
    return tuple(seed.strip() for seed in text.split(",") if seed.strip())


def _stop_event_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def _run_node(args: argparse.Namespace) -> int:
    from server import postgres
    from server.allocator import return_large_buffers
    from server.node_core import Config
    from server.node_service import NodeSettings, serve_node

    sockets.setup_logging(f"node/{args.id}", args.log_level)
    return_large_buffers()
    seeds = _seeds(args.seeds) + ((args.join,) if args.join else ())
    security = _server_keys(args, "node", seeds)
    if security is None:
        return 2
    try:
        config = Config(args.replicas, args.read_quorum, args.write_quorum)
    except ValueError as problem:
        print(f"shoplist-server node: {problem}", file=sys.stderr)
        return 2
    try:
        server = postgres.start(args.data.resolve() / "postgres")
    except (postgres.SystemUserError, postgres.DatabasePasswordError) as problem:
        print(f"shoplist-server node: {problem}", file=sys.stderr)
        return 1
    settings = NodeSettings(
        args.id,
        args.bind,
        args.publish,
        seeds,
        config,
        anti_entropy=args.anti_entropy,
        exchange_every=args.exchange_every,
        repairs_per_second=args.repairs_per_second,
        **_load_limits(args),
        scrub_every=args.scrub_every,
        joining=args.join is not None,
        leave=args.leave,
        keys=security[0],
        members=security[1],
        members_file=args.members.resolve() if security[0] is not None else None,
    )

    async def run() -> None:
        stop = _stop_event_on_signals()
        await serve_node(settings, server.get_uri(), stop, lambda: None)

    asyncio.run(run())
    return 0


def _load_limits(args: argparse.Namespace) -> dict[str, int]:
    """Return the node's in-flight caps and cache budget given on the command line (the others keep their
    defaults)."""
    limits = {
        "max_store_work": args.max_store_work,
        "max_coordinating": args.max_coordinating,
        "cache_bytes": args.cache_mb * 1024 * 1024 if args.cache_mb else None,
    }
    return {name: value for name, value in limits.items() if value is not None}


def _run_proxy(args: argparse.Namespace) -> int:
    from server.allocator import return_large_buffers
    from server.proxy_service import ProxyService, ProxySettings

    sockets.setup_logging(f"proxy/{args.id}", args.log_level)
    return_large_buffers()
    if args.burst < 1:
        print("shoplist-server proxy: --burst must be at least 1", file=sys.stderr)
        return 2
    seeds = _seeds(args.seeds)
    security = _server_keys(args, "proxy", seeds)
    if security is None:
        return 2
    settings = ProxySettings(
        args.id,
        args.bind,
        args.publish,
        seeds,
        args.replicas,
        rate=args.rate,
        burst=args.burst,
        max_buckets=args.rate_table,
        max_topics=args.max_topics,
        client_hwm=args.client_hwm,
        keys=security[0],
    )

    async def run() -> None:
        stop = _stop_event_on_signals()
        await ProxyService(settings).run(stop)

    asyncio.run(run())
    return 0


def client_identity() -> KeyPair:
    """Return the key pair this process connects with: the secret key file named by $SHOPLIST_SERVER_KEY
    (a member key, which nodes admit), else a fresh pair (proxies admit any key). Raises KeyFileError."""
    return _identity(os.environ.get(ADMIN_KEY_ENV) or None)


@cache
def _identity(path: str | None) -> KeyPair:
    return load_secret(Path(path)) if path else generate()


def request(
    endpoint: str,
    kind: Kind,
    timeout: float,
    body: bytes = b"",
    *,
    identity: KeyPair | None = None,
    **fields: Any,
) -> Message | None:
    """Send one request to `endpoint` and return the reply, or None if none came within `timeout`. An
    endpoint with `?key=` is spoken to over CurveZMQ pinning that key, as `identity` (default:
    `client_identity()`); one without it in plain text. A server holding another key never answers."""
    address, server_key = split_endpoint(endpoint)
    context = zmq.Context.instance()
    socket = sockets.configure(context.socket(zmq.DEALER))
    try:
        if server_key is not None:
            sockets.curve_client(socket, identity or client_identity(), server_key)
        socket.connect(address)
        socket.send_multipart(encode(Message(kind, uuid.uuid4().hex, fields, body)))
        if not socket.poll(int(timeout * 1000)):
            return None
        try:
            return decode(socket.recv_multipart())
        except ProtocolError:
            return None
    finally:
        socket.close(0)


def gather_status(endpoint: str, timeout: float, identity: KeyPair | None = None) -> dict[str, Any] | None:
    """Return the status seen from `endpoint`, each member enriched with its own hints and handoffs
    (asked at its endpoint, pinning the key it announced)."""
    answer = request(endpoint, Kind.STATUS, timeout, identity=identity)
    if answer is None or answer.kind is not Kind.STATUS_REPLY:
        return None
    info: dict[str, Any] = answer.fields.get("info", {})
    for member in info.get("members", []):
        address = with_key(member["endpoint"], member.get("key", ""))
        alive = member.get("state") == "alive"
        own = request(address, Kind.STATUS, timeout, identity=identity) if alive else None
        own_info = own.fields.get("info", {}) if own is not None and own.kind is Kind.STATUS_REPLY else {}
        member["hints_held"] = own_info.get("hints", {})
        member["handoffs"] = own_info.get("handoffs", {})
        member["anti_entropy"] = own_info.get("anti_entropy", {})
        member["handoff"] = own_info.get("handoff", {})
    return info


def _client_setup(args: argparse.Namespace, endpoint: str, role: str) -> KeyPair | None:
    """Return the identity to connect to `endpoint` with; raise SystemExit(2) with a clear message when
    the endpoint pins no key outside insecure mode, or the key file is bad."""
    try:
        _, server_key = split_endpoint(endpoint)
        if server_key is None and not (args.insecure or os.environ.get(INSECURE_ENV) == "1"):
            raise ValueError(
                f"{endpoint} carries no ?key=<the server's public key>; add it, or pass --insecure "
                f"(or set {INSECURE_ENV}=1) for a plain-text cluster"
            )
        return load_secret(args.key) if args.key else client_identity()
    except (KeyFileError, ValueError) as problem:
        print(f"shoplist-server {role}: {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def _run_status(args: argparse.Namespace) -> int:
    endpoint = args.endpoint or (os.environ.get("SHOPLIST_PROXIES", "").split(",")[0] or DEFAULT_ENDPOINT)
    identity = _client_setup(args, endpoint, "status")
    info = gather_status(endpoint, args.timeout, identity)
    if info is None:
        print(f"shoplist-server status: no answer from {endpoint} within {args.timeout:g} s", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(info, sort_keys=True))
        return 0
    print(f"{info['role']} {info['id']} at {info['endpoint']}")
    print(f"{'member':<10} {'state':<8} {'ownership':>9}  {'hints held':<20} handoffs  endpoint")
    for member in info.get("members", []):
        hints = ", ".join(f"{owner}:{count}" for owner, count in member["hints_held"].items()) or "-"
        handoffs = ", ".join(f"{owner}:{state}" for owner, state in member["handoffs"].items()) or "-"
        state = "revoked" if member.get("revoked") else member["state"]
        print(
            f"{member['id']:<10} {state:<8} {member['ownership']:>9.1%}  {hints:<20} {handoffs:<9} "
            f"{member['endpoint']}"
        )
    print()
    print(f"{'member':<10} {'lists':>7} {'last exchange':>13} {'repaired':>8}  handoff")
    for member in info.get("members", []):
        print(_maintenance_line(member))
    return 0


def _maintenance_line(member: dict[str, Any]) -> str:
    """Return one member's anti-entropy and handoff summary for `status`."""
    entropy = member.get("anti_entropy") or {}
    handoff = member.get("handoff") or {}
    if not entropy:
        return f"{member['id']:<10} {'-':>7} {'-':>13} {'-':>8}  -"
    ago = entropy.get("last_exchange_ago")
    last = "never" if ago is None else f"{ago:.1f} s ago"
    if not entropy.get("enabled", True):
        last = "off"
    repaired = entropy.get("lists_repaired", 0)
    held = handoff.get("lists_held", 0)
    return f"{member['id']:<10} {held:>7} {last:>13} {repaired:>8}  {describe_handoff(handoff)}"


def describe_handoff(handoff: dict[str, Any]) -> str:
    """Return a handoff progress line: what is being received (join) and sent (join elsewhere, leave)."""
    parts = []
    if handoff.get("leaving"):
        parts.append("leaving")
    if handoff.get("joining"):
        parts.append("joining")
    received, to_receive = handoff.get("partitions_received", 0), handoff.get("partitions_to_receive", 0)
    if to_receive and received < to_receive:
        parts.append(f"received {received}/{to_receive} partitions")
    sent, to_send = handoff.get("partitions_sent", 0), handoff.get("partitions_to_send", 0)
    if to_send:
        parts.append(f"sent {sent}/{to_send} partitions, {handoff.get('lists_sent', 0)} lists")
    return ", ".join(parts) or "-"


def _run_leave(args: argparse.Namespace) -> int:
    """Tell a node to leave, then show its handoff progress until it has gone."""
    import time

    via = args.endpoint or (os.environ.get("SHOPLIST_PROXIES", "").split(",")[0] or DEFAULT_ENDPOINT)
    identity = _client_setup(args, args.node if "://" in args.node else via, "leave")
    endpoint = _resolve_node(args.node, via, identity)
    if endpoint is None:
        print(f"shoplist-server leave: no node {args.node!r} is known", file=sys.stderr)
        return 1
    answer = request(endpoint, Kind.LEAVE, 5.0, identity=identity)
    if answer is None or answer.kind is not Kind.OK:
        text = answer.fields.get("message", "") if answer is not None else "no answer"
        print(f"shoplist-server leave: {endpoint} refused: {text}", file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.timeout
    last = ""
    silent_since: float | None = None
    while time.monotonic() < deadline:
        status = request(endpoint, Kind.STATUS, 1.0, identity=identity)
        if status is None or status.kind is not Kind.STATUS_REPLY:
            silent_since = silent_since or time.monotonic()
            if time.monotonic() - silent_since > 3.0:
                print(f"{args.node} has left the ring", flush=True)
                return 0
        else:
            silent_since = None
            handoff = status.fields.get("info", {}).get("handoff", {})
            line = f"{describe_handoff(handoff)}; {handoff.get('lists_held', 0)} lists still held"
            if line != last:
                print(line, flush=True)
                last = line
        time.sleep(0.5)
    print(f"shoplist-server leave: {args.node} still handing off after {args.timeout:g} s", file=sys.stderr)
    return 1


def _resolve_node(node: str, via: str, identity: KeyPair | None) -> str | None:
    """Return the request endpoint of `node` (an endpoint already, or a node id known to `via`), with
    the key it announced."""
    if "://" in node:
        return node
    answer = request(via, Kind.STATUS, 2.0, identity=identity)
    if answer is None or answer.kind is not Kind.STATUS_REPLY:
        return None
    members = answer.fields.get("info", {}).get("members", [])
    return next((with_key(m["endpoint"], m.get("key", "")) for m in members if m["id"] == node), None)


def _run_cluster(args: argparse.Namespace) -> int:
    from server.cluster import run_cluster

    sockets.setup_logging("cluster", args.log_level)
    if args.insecure:
        warn_loudly(INSECURE_WARNING)
    return run_cluster(
        args.nodes, args.proxies, args.data.resolve(), args.port, args.log_level, insecure=args.insecure
    )


if __name__ == "__main__":
    sys.exit(main())
