"""Live fuzzing of `shoplist-server cluster --nodes 3 --proxies 2`: fills a few lists, sends malformed,
truncated, oversized, garbage-msgpack, wrong-type, replayed-valid and random-kind messages at a proxy and
straight at the nodes (from sockets that read their replies, sockets that never do, and sockets that hang up
mid-stream), then checks every process is still up with bounded memory, the lists read back unchanged,
and the cluster still takes writes. Prints a summary table; exits 1 when a check fails."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import psutil
import zmq
from local_cluster import local_cluster

from crdt import ShoppingList
from protocol.messages import MAX_BODY_BYTES, MAX_FRAME_BYTES, MAX_HEADER_BYTES, Kind, Message, decode, encode
from server.cluster import ADMIN_KEY
from server.keys import SECRET_SUFFIX, KeyPair, load_secret

CATEGORIES = (
    "garbage",
    "garbage_msgpack",
    "wrong_type",
    "truncated",
    "bit_flipped",
    "oversized",
    "random_kind",
    "replayed_valid",
)
WEIGHTS = (18, 18, 20, 13, 4, 3, 21, 3)
"""Share of each category, in percent. Bit-flipped bodies that still decode and replayed writes are real
writes (quorum, hints, repairs): kept few so that a million messages take minutes on a busy machine."""
INTACT_LISTS = ("intact-groceries", "intact-hardware", "intact-pharmacy", "intact-party")
FUZZ_LISTS = tuple(f"fz{number}" for number in range(4096))
"""Where bit-flipped but still valid bodies land: a flipped header or body can never name an intact list.
Many of them, so the items and replicas that flips make up spread thin instead of growing a few lists
without end (each write into a list costs in proportion to its causal context)."""
WINDOW = 64
MEMBER_IDENTITY: dict[str, KeyPair] = {}
"""Node endpoint -> the member key (the cluster's admin key) to reach it with: over CurveZMQ a node admits
only member keys and never answers a stranger, so the fuzzing would not reach its decoders."""
"""Requests a reading socket keeps unanswered before it waits for replies (the proxy's FRONT_HWM)."""
REPLY_WAIT_MS = 5_000
RSS_TARGET_MB = 50.0
HANG_UP_EVERY = 300
"""A hanging-up socket closes (dropping whatever it had queued) and reconnects after this many sends."""
OVERSIZED_BODIES = {"quick": 1, "full": 10}
"""Bodies just over MAX_BODY_BYTES per target (8 MiB each, so only a few)."""
OVER_SOCKET_LIMIT = {"quick": 1, "full": 3}
"""Frames over ZMQ_MAXMSGSIZE per target: the receiver drops the connection, no reply comes."""


# ----- sockets -------------------------------------------------------------------------------------------


def open_socket(context: zmq.Context[Any], endpoint: str, identity: KeyPair | None = None) -> zmq.Socket[Any]:
    """Return a DEALER connected to `endpoint`. All socket setup lives here: an endpoint carrying a pinned
    CurveZMQ server key (`tcp://host:port?key=<z85>`) gets a fresh client key pair (a proxy admits any
    client key; a node admits only member keys, so fuzzing a node over Curve needs a member's key pair
    here instead, `identity`)."""
    identity = identity or MEMBER_IDENTITY.get(endpoint)
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SNDHWM, 1000)
    socket.setsockopt(zmq.RCVHWM, 1000)
    address, _, query = endpoint.partition("?")
    if query.startswith("key="):
        public, secret = (
            (identity.public.encode(), identity.secret.encode()) if identity else zmq.curve_keypair()
        )
        socket.setsockopt(zmq.CURVE_SERVERKEY, query.removeprefix("key=").encode("ascii"))
        socket.setsockopt(zmq.CURVE_PUBLICKEY, public)
        socket.setsockopt(zmq.CURVE_SECRETKEY, secret)
    socket.connect(address)
    return socket


def ask(context: zmq.Context[Any], endpoint: str, message: Message, timeout: float = 10.0) -> Message | None:
    """Send one request on a fresh socket; return the reply, or None when none came in time."""
    socket = open_socket(context, endpoint)
    try:
        socket.send_multipart(encode(message))
        if not socket.poll(int(timeout * 1000)):
            return None
        return decode(socket.recv_multipart())
    finally:
        socket.close(0)


# ----- hostile messages -----------------------------------------------------------------------------------


@dataclass
class Corpus:
    """Valid messages to replay, mutate and truncate, per target."""

    deltas: dict[str, list[bytes]]
    valid: dict[str, list[list[bytes]]] = field(default_factory=dict)
    big_headers: list[bytes] = field(default_factory=list)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """Return a random msgpack-able value: scalars of every type, huge numbers, nested arrays and maps."""
    choice = rng.randrange(12 if depth < 3 else 8)
    if choice == 0:
        return None
    if choice == 1:
        return rng.random() < 0.5
    if choice == 2:
        return rng.choice([-(2**63), -1, 0, 1, 2**31, 2**63 - 1, 2**64 - 1])
    if choice == 3:
        return rng.randint(-1000, 1000)
    if choice == 4:
        return rng.choice([0.5, float("inf"), float("-inf"), float("nan"), 1e308])
    if choice == 5:
        return "".join(rng.choice("ab-:.\x00é😀 ") for _ in range(rng.randrange(0, 20)))
    if choice == 6:
        return rng.randbytes(rng.randrange(0, 12))
    if choice == 7:
        return "x" * rng.choice([129, 200, 1000])
    if choice in (8, 9):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    return {str(random_value(rng, 3)): random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def request_id(rng: random.Random) -> str:
    return f"fz-{rng.getrandbits(40):x}"


def garbage(rng: random.Random, target: str, corpus: Corpus) -> list[bytes]:
    return [rng.randbytes(rng.randrange(0, 80)) for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5)))]


def garbage_msgpack(rng: random.Random, target: str, corpus: Corpus) -> list[bytes]:
    roll = rng.random()
    if roll < 0.1:
        depth = rng.choice((100, 1000, 5000, 30_000))
        return [b"\x91" * depth + b"\x90"]
    if roll < 0.2:
        return [b"\x81\xa1v" + b"\x91" * 2000 + b"\x90"]  # a map whose `v` nests 2,000 deep
    if roll < 0.5:
        return [msgpack.packb({"v": 1, str(random_value(rng, 3)): random_value(rng)})]
    return [msgpack.packb(random_value(rng))]


def wrong_type(rng: random.Random, target: str, corpus: Corpus) -> list[bytes]:
    kinds = (
        ["write", "read", "status", "ping"] if target == "proxy" else ["write", "read", "replicate", "fetch"]
    )
    kinds += [] if target == "proxy" else ["gossip", "digest"]
    header: dict[str, Any] = {"v": 1, "type": rng.choice(kinds), "id": request_id(rng)}
    header["list"] = rng.choice(FUZZ_LISTS)
    wrong = rng.choice(["v", "type", "id", "list", "hint_for", "members", "nodes"])
    header[wrong] = rng.choice([random_value(rng), "2", 1.0, True, 2, -1, [1], {"x": 1}, ""])
    body = rng.choice([b"", rng.randbytes(rng.randrange(1, 40)), rng.choice(corpus.deltas["fuzz"])])
    packed = msgpack.packb(header)
    return [packed, body] if body else [packed]


def truncated(rng: random.Random, target: str, corpus: Corpus) -> list[bytes]:
    frames = list(rng.choice(corpus.valid[target]))
    which = rng.randrange(len(frames))
    frames[which] = frames[which][: rng.randrange(0, max(1, len(frames[which])))]
    return frames


def bit_flipped(rng: random.Random, target: str, corpus: Corpus) -> list[bytes]:
    kind = "write" if target == "proxy" or rng.random() < 0.5 else "replicate"
    body = bytearray(rng.choice(corpus.deltas["fuzz"]))
    for _ in range(rng.randint(1, 3)):
        body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
    header = bytearray(
        msgpack.packb({"v": 1, "type": kind, "id": request_id(rng), "list": rng.choice(FUZZ_LISTS)})
    )
    if rng.random() < 0.3:
        header[rng.randrange(len(header))] ^= 1 << rng.randrange(8)
    return [bytes(header), bytes(body)]


def oversized(rng: random.Random, target: str, corpus: Corpus) -> list[bytes]:
    if rng.random() < 0.5:
        return [rng.choice(corpus.big_headers)]  # over MAX_HEADER_BYTES
    items = rng.choice((4097, 5000, 70_000))  # over the 4,096 elements an array in a header may hold
    return [msgpack.packb({"v": 1, "type": "ping", "id": request_id(rng), "pad": [0] * items})]


def random_kind(rng: random.Random, target: str, corpus: Corpus) -> list[bytes]:
    # `leave` is left out: it is a valid admin request (a node that gets it hands off and exits), and a
    # valid gossip table naming made-up members would join them to the ring; both are for CurveZMQ's
    # authentication to keep from strangers, not for input validation.
    names = [kind.value for kind in Kind if kind is not Kind.LEAVE]
    name = rng.choice([*names, *names, "", "WRITE", "write ", "nope", "x" * 300, "ok\x00"])
    header: dict[str, Any] = {"v": 1, "type": name, "id": request_id(rng), "list": rng.choice(FUZZ_LISTS)}
    if name == "gossip":
        header["members"] = rng.choice([[], random_value(rng), [[1, 2, 3, 4, 5]], [["n", "e", "p", -1, 0]]])
    if name == "digest":
        header["nodes"] = rng.choice(
            [[], [[0, 0, 0, 0]], random_value(rng), [[999, 0, 0, 0]], [[0, 9, 0, 0]]]
        )
    body = rng.choice([b"", rng.choice(corpus.deltas["fuzz"]), rng.randbytes(rng.randrange(1, 30))])
    packed = msgpack.packb(header)
    return [packed, body] if body else [packed]


def replayed_valid(rng: random.Random, target: str, corpus: Corpus) -> list[bytes]:
    return list(rng.choice(corpus.valid[target]))


GENERATORS: dict[str, Callable[[random.Random, str, Corpus], list[bytes]]] = {
    "garbage": garbage,
    "garbage_msgpack": garbage_msgpack,
    "wrong_type": wrong_type,
    "truncated": truncated,
    "bit_flipped": bit_flipped,
    "oversized": oversized,
    "random_kind": random_kind,
    "replayed_valid": replayed_valid,
}


# ----- the cluster's processes ---------------------------------------------------------------------------


@dataclass
class Watched:
    """One cluster process: who it is, and its memory over the run."""

    name: str
    process: psutil.Process
    created: float
    rss_before: float = 0.0
    rss_after: float = 0.0
    rss_peak: float = 0.0

    def rss(self) -> float:
        """Return the resident set size in MB, or 0 when the process is gone."""
        try:
            return self.process.memory_info().rss / 1e6
        except psutil.Error:
            return 0.0

    def alive(self) -> bool:
        """Return whether the very process watched (same pid, same start time) still runs."""
        try:
            return self.process.is_running() and self.process.create_time() == self.created
        except psutil.Error:
            return False


def watch_cluster(ready: dict[str, Any]) -> list[Watched]:
    """Return the node and proxy processes named by the ready line (proxies found by their --bind)."""
    watched = []
    for node in ready["nodes"]:
        process = psutil.Process(node["pid"])
        watched.append(Watched(f"node {node['id']}", process, process.create_time()))
    binds = {}
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            command = child.cmdline()
        except psutil.Error:
            continue
        if "proxy" in command and "--bind" in command:
            binds[command[command.index("--bind") + 1]] = child
    for number, endpoint in enumerate(ready["proxies"]):
        process = binds[endpoint.partition("?")[0]]
        watched.append(Watched(f"proxy {number + 1}", process, process.create_time()))
    return watched


class PeakSampler:
    """Samples the RSS of the watched processes every 0.2 s in a thread, keeping each one's peak."""

    def __init__(self, watched: list[Watched]) -> None:
        self.watched = watched
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for item in self.watched:
                item.rss_peak = max(item.rss_peak, item.rss())


# ----- filling and checking the lists --------------------------------------------------------------------


def fill(
    context: zmq.Context[Any], proxy: str, rng: random.Random, items: int
) -> tuple[dict[str, ShoppingList], Corpus]:
    """Write known content into the intact lists through `proxy`; return what each should hold and the
    valid messages (the fill writes among them) the fuzzer replays and mutates."""
    expected: dict[str, ShoppingList] = {}
    writes: list[list[bytes]] = []
    deltas: list[bytes] = []
    for list_id in INTACT_LISTS:
        writer = ShoppingList(f"fuzz-writer-{list_id}")
        pending = [writer.set_title(list_id.removeprefix("intact-").title())]
        for number in range(items):
            name = f"item {number} of {list_id}"
            pending.append(writer.add_item(name, rng.randint(1, 9), category=rng.choice(["a", "b"])))
            if number % 3 == 0:
                pending.append(writer.remove_item(name))
            if len(pending) >= 10 or number == items - 1:
                batch = ShoppingList("fuzz-batch")
                for delta in pending:
                    batch.merge(delta)
                message = Message(Kind.WRITE, f"fill-{list_id}-{number}", {"list": list_id}, batch.to_bytes())
                answer = ask(context, proxy, message)
                if answer is None or answer.kind is not Kind.OK:
                    raise SystemExit(f"filling {list_id} failed: {answer}")
                writes.append(encode(message))
                deltas.append(message.body)
                pending = []
        expected[list_id] = writer
    reads = [
        encode(Message(Kind.READ, f"replay-read-{list_id}", {"list": list_id})) for list_id in INTACT_LISTS
    ]
    pings = [encode(Message(Kind.PING, "replay-ping")), encode(Message(Kind.STATUS, "replay-status"))]
    node_only = [
        encode(Message(Kind.FETCH, f"replay-fetch-{list_id}", {"list": list_id})) for list_id in INTACT_LISTS
    ]
    node_only += [
        encode(
            Message(
                Kind.REPLICATE,
                f"replay-replicate-{n}",
                {"list": INTACT_LISTS[0]},
                expected[INTACT_LISTS[0]].to_bytes(),
            )
        )
        for n in range(2)
    ]
    node_only.append(encode(Message(Kind.DIGEST, "replay-digest", {"nodes": [[0, 0, 0, 0], [1, 0, 0, 0]]})))
    watcher = {"from": "fuzz-watcher", "members": [], "digest": 0, "answer": False}
    node_only.append(encode(Message(Kind.GOSSIP_SYNC, "replay-gossip", watcher)))
    corpus = Corpus({"fuzz": deltas})
    corpus.valid = {"proxy": writes + reads * 3 + pings, "node": writes + reads + pings + node_only}
    corpus.big_headers = [
        msgpack.packb({"v": 1, "type": "ping", "id": f"big-{n}", "pad": "x" * (MAX_HEADER_BYTES + n * 1000)})
        for n in range(4)
    ]
    return expected, corpus


def read_back(context: zmq.Context[Any], proxy: str) -> dict[str, bytes | None]:
    """Return each intact list's state as read through `proxy` (None when the read failed)."""
    states: dict[str, bytes | None] = {}
    for list_id in INTACT_LISTS:
        answer = ask(context, proxy, Message(Kind.READ, f"check-{list_id}", {"list": list_id}))
        states[list_id] = answer.body if answer is not None and answer.kind is Kind.STATE else None
    return states


def lists_intact(states: dict[str, bytes | None], expected: dict[str, ShoppingList]) -> dict[str, bool]:
    """Return, per list, whether the state read decodes to what was written and encodes to the same bytes."""
    intact = {}
    for list_id, body in states.items():
        if body is None:
            intact[list_id] = False
            continue
        state = ShoppingList.from_bytes(body)
        intact[list_id] = state == expected[list_id] and state.to_bytes() == expected[list_id].to_bytes()
    return intact


def member_endpoints(nodes: list[dict[str, Any]], keys: Path) -> list[str]:
    """Return the nodes' endpoints (with `?key=` when they speak CurveZMQ), noting for each the cluster's
    admin key in MEMBER_IDENTITY."""
    endpoints = []
    for node in nodes:
        if not node.get("key"):
            endpoints.append(node["endpoint"])
            continue
        endpoint = f"{node['endpoint']}?key={node['key']}"
        MEMBER_IDENTITY[endpoint] = load_secret(keys / f"{ADMIN_KEY}{SECRET_SUFFIX}")
        endpoints.append(endpoint)
    return endpoints


def undecodable_lists(context: zmq.Context[Any], nodes: list[str]) -> int:
    """Fetch every list the fuzzer aimed at from every node; return how many copies a node could not load
    (answered `internal`: its stored header and item rows do not decode together)."""
    failed = 0
    for node in nodes:
        socket = open_socket(context, node)
        try:
            for start in range(0, len(FUZZ_LISTS + INTACT_LISTS), WINDOW):
                batch = (FUZZ_LISTS + INTACT_LISTS)[start : start + WINDOW]
                for list_id in batch:
                    socket.send_multipart(encode(Message(Kind.FETCH, f"stored-{list_id}", {"list": list_id})))
                for _ in batch:
                    if not socket.poll(30_000):
                        raise SystemExit(f"node {node} stopped answering fetches")
                    answer = decode(socket.recv_multipart())
                    failed += answer.kind is Kind.ERROR and answer.fields.get("code") == "internal"
        finally:
            socket.close(0)
    return failed


def still_writable(context: zmq.Context[Any], proxies: list[str]) -> bool:
    """Write one more item to every intact list through each proxy, and read it back through the other."""
    for number, proxy in enumerate(proxies):
        for list_id in INTACT_LISTS:
            delta = ShoppingList(f"after-fuzz-{number}").add_item(f"after fuzz {number}")
            answer = ask(
                context,
                proxy,
                Message(Kind.WRITE, f"after-{number}-{list_id}", {"list": list_id}, delta.to_bytes()),
            )
            if answer is None or answer.kind is not Kind.OK:
                return False
            other = proxies[(number + 1) % len(proxies)]
            state = read_back(context, other)[list_id]
            if state is None or f"after fuzz {number}" not in ShoppingList.from_bytes(state):
                return False
    return True


# ----- the fuzzing run -----------------------------------------------------------------------------------


@dataclass
class Sender:
    """One socket aimed at one target; `mode` is read (answers counted), deaf (never read) or hang_up."""

    target: str
    endpoint: str
    mode: str
    socket: zmq.Socket[Any]
    outstanding: int = 0
    sent_since_connect: int = 0


@dataclass
class Tally:
    """What the run sent and heard."""

    sent: Counter[tuple[str, str]] = field(default_factory=Counter)  # (target, category)
    replies: Counter[tuple[str, str]] = field(default_factory=Counter)  # (target, kind or error code)
    unreadable_replies: int = 0
    dropped_by_hwm: int = 0
    reply_timeouts: int = 0
    hang_ups: int = 0
    over_socket_limit: int = 0


def count_replies(sender: Sender, tally: Tally, wait_ms: int = 0) -> None:
    """Receive every reply waiting on a reading socket (waiting up to `wait_ms` for the first)."""
    while sender.socket.poll(wait_ms):
        frames = sender.socket.recv_multipart()
        wait_ms = 0
        sender.outstanding = max(0, sender.outstanding - 1)
        try:
            message = decode(frames)
        except ValueError:
            tally.unreadable_replies += 1
            continue
        label = f"error:{message.fields.get('code')}" if message.kind is Kind.ERROR else message.kind.value
        tally.replies[(sender.target, label)] += 1


def drain(senders: list[Sender], tally: Tally, quiet_ms: int = 3_000, longest: float = 60.0) -> None:
    """Count the replies still coming to the reading sockets, until none came for `quiet_ms`."""
    poller = zmq.Poller()
    readers = {sender.socket: sender for sender in senders if sender.mode == "read"}
    for socket in readers:
        poller.register(socket, zmq.POLLIN)
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        ready = dict(poller.poll(quiet_ms))
        if not ready:
            return
        for socket in ready:
            count_replies(readers[socket], tally)


def send_one(context: zmq.Context[Any], sender: Sender, frames: list[bytes], tally: Tally) -> bool:
    """Send `frames` on `sender`, keeping a reading socket's window; return whether zmq took them."""
    if sender.mode == "read" and sender.outstanding >= WINDOW:
        count_replies(sender, tally, REPLY_WAIT_MS)
        if sender.outstanding >= WINDOW:
            tally.reply_timeouts += 1  # e.g. frames the receiver could not even read an id from, unanswered
            sender.outstanding = 0
    try:
        sender.socket.send_multipart(frames, flags=zmq.NOBLOCK)
    except zmq.Again:
        tally.dropped_by_hwm += 1
        return False
    sender.outstanding += 1
    sender.sent_since_connect += 1
    if sender.mode == "hang_up" and sender.sent_since_connect >= HANG_UP_EVERY:
        sender.socket.close(0)
        sender.socket = open_socket(context, sender.endpoint)
        sender.sent_since_connect = 0
        tally.hang_ups += 1
    return True


def over_the_limit(
    context: zmq.Context[Any], endpoint: str, rng: random.Random, tally: Tally, bodies: int, frames: int
) -> None:
    """Send bodies just over MAX_BODY_BYTES (answered too_large) and frames over the socket limit (the
    receiver drops the connection), each on a throwaway socket."""
    header = msgpack.packb({"v": 1, "type": "write", "id": "too-big", "list": FUZZ_LISTS[0]})
    body = rng.randbytes(MAX_BODY_BYTES + 1)
    for _ in range(bodies):
        answer_socket = open_socket(context, endpoint)
        answer_socket.send_multipart([header, body])
        if answer_socket.poll(30_000):
            reply = decode(answer_socket.recv_multipart())
            tally.replies[("big", f"error:{reply.fields.get('code')}")] += 1
        answer_socket.close(0)
    huge = b"\x00" * (MAX_FRAME_BYTES + 1)
    for _ in range(frames):
        throwaway = open_socket(context, endpoint)
        throwaway.send_multipart([header, huge])
        time.sleep(0.5)  # let it go out before closing: closing drops what is still queued
        throwaway.close(0)
        tally.over_socket_limit += 1


def fuzz(
    context: zmq.Context[Any],
    targets: dict[str, list[str]],
    corpus: Corpus,
    messages: int,
    rng: random.Random,
    tally: Tally,
    only: str | None = None,
) -> float:
    """Send `messages` hostile messages spread over the targets' sockets (of category `only`, else of
    every category in proportion to WEIGHTS); return the seconds it took."""
    categories, weights = ((only,), (1,)) if only else (CATEGORIES, WEIGHTS)
    senders = [
        Sender(target, endpoint, mode, open_socket(context, endpoint))
        for target, endpoints in targets.items()
        for endpoint in endpoints
        for mode in ("read", "read", "deaf", "hang_up")
    ]
    started = time.monotonic()
    report_every = max(1000, messages // 40)
    for number in range(1, messages + 1):
        sender = senders[number % len(senders)]
        category = rng.choices(categories, weights)[0]
        frames = GENERATORS[category](rng, sender.target, corpus)
        if send_one(context, sender, frames, tally):
            tally.sent[(sender.target, category)] += 1
        if number % 256 == 0:
            for reader in senders:
                if reader.mode == "read":
                    count_replies(reader, tally)
        if number % report_every == 0:
            elapsed = time.monotonic() - started
            print(
                f"  {number:>9,} sent  {number / elapsed:>7,.0f}/s  replies {sum(tally.replies.values()):,}",
                flush=True,
            )
    elapsed = time.monotonic() - started
    drain(senders, tally)
    for sender in senders:
        sender.socket.close(0)
    return elapsed


# ----- the report ----------------------------------------------------------------------------------------


def summary(
    tally: Tally,
    watched: list[Watched],
    intact: dict[str, bool],
    writable: bool,
    elapsed: float,
    arguments: argparse.Namespace,
    bugs_logged: int,
    load: tuple[float, float, float],
    undecodable: int = 0,
) -> tuple[str, bool]:
    """Return the summary table (markdown) and whether every check passed."""
    total = sum(tally.sent.values())
    lines = [
        f"seed {arguments.seed}, {total:,} messages in {elapsed:,.0f} s ({total / elapsed:,.0f}/s), "
        f"load average before/after {load[0]:.2f} / {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)",
        "",
        "| category | to the proxy | to the nodes |",
        "|---|---:|---:|",
    ]
    for category in CATEGORIES:
        lines.append(
            f"| {category} | {tally.sent[('proxy', category)]:,} | {tally.sent[('node', category)]:,} |"
        )
    lines.append(
        f"| **total** | **{sum(v for (t, _), v in tally.sent.items() if t == 'proxy'):,}** | "
        f"**{sum(v for (t, _), v in tally.sent.items() if t == 'node'):,}** |"
    )
    lines += [
        "",
        f"plus {OVERSIZED_BODIES[arguments.size]} bodies over 8 MiB and {OVER_SOCKET_LIMIT[arguments.size]} "
        f"frames over 16 MiB per target, after a warm-up of {arguments.warm_up:,} messages; "
        f"{tally.dropped_by_hwm:,} sends refused by a full queue (not counted); "
        f"{tally.hang_ups:,} hang-ups mid-stream",
        "",
        "| reply (read sockets only) | from the proxy | from the nodes |",
        "|---|---:|---:|",
    ]
    labels = sorted({label for (_, label) in tally.replies})
    for label in labels:
        big = f" (+{tally.replies[('big', label)]} over 8 MiB)" if tally.replies[("big", label)] else ""
        lines.append(
            f"| {label}{big} | {tally.replies[('proxy', label)]:,} | {tally.replies[('node', label)]:,} |"
        )
    lines += [
        f"| unreadable replies | {tally.unreadable_replies} | |",
        "",
        "| process | up, same pid | RSS before | RSS after | RSS peak | growth |",
        "|---|---|---:|---:|---:|---:|",
    ]
    worst_growth = 0.0
    crashes = 0
    for item in watched:
        up = item.alive()
        crashes += not up
        growth = item.rss_after - item.rss_before
        worst_growth = max(worst_growth, growth)
        lines.append(
            f"| {item.name} (pid {item.process.pid}) | {'yes' if up else '**NO**'} "
            f"| {item.rss_before:.1f} MB | {item.rss_after:.1f} MB | {item.rss_peak:.1f} MB "
            f"| {growth:+.1f} MB |"
        )
    lines += [
        "",
        f"crashes: {crashes}; bugs logged (`bug:` or tracebacks in the cluster log): {bugs_logged}; "
        f"lists intact: {sum(intact.values())} of {len(intact)}; "
        f"stored copies that do not load (fetched from every node): {undecodable}; normal writes afterwards: "
        f"{'yes' if writable else '**NO**'}; "
        f"worst RSS growth {worst_growth:+.1f} MB (target ≤ {RSS_TARGET_MB:.0f} MB)",
    ]
    passed = (
        crashes == 0
        and all(intact.values())
        and writable
        and bugs_logged == 0
        and undecodable == 0
        and worst_growth <= RSS_TARGET_MB
    )
    lines.append(f"result: {'PASS' if passed else 'FAIL'}")
    return "\n".join(lines), passed


def bugs_in_log(log: Path) -> int:
    """Return how many lines of the cluster log report a bug or start a traceback."""
    if not log.exists():
        return 0
    with log.open("rb") as lines:
        return sum(1 for line in lines if b" bug: " in line or line.startswith(b"Traceback"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--messages", type=int, default=None, help="hostile messages to send (default 1,000,000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (the run is reproducible per seed)")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 5,000 messages, small lists")
    parser.add_argument("--keep", action="store_true", help="keep the cluster's data directory and log")
    parser.add_argument(
        "--only", choices=CATEGORIES, help="send only this category (to find what costs memory)"
    )
    arguments = parser.parse_args(argv)
    arguments.size = "quick" if arguments.quick else "full"
    arguments.warm_up = 1_000 if arguments.quick else 10_000
    messages = arguments.messages or (5_000 if arguments.quick else 1_000_000)
    rng = random.Random(arguments.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the cluster is stopped on the way out
    data = Path(tempfile.mkdtemp(prefix="shoplist-fuzz-"))
    context: zmq.Context[Any] = zmq.Context()
    load = os.getloadavg()
    passed = False
    try:
        print(f"starting a local cluster in {data} ...", flush=True)
        with local_cluster(data) as ready:
            proxies, nodes = ready["proxies"], member_endpoints(ready["nodes"], data / "keys")
            watched = watch_cluster(ready)
            expected, corpus = fill(context, proxies[0], rng, 12 if arguments.quick else 60)
            before = read_back(context, proxies[0])
            if not all(lists_intact(before, expected).values()):
                raise SystemExit("the lists did not read back as written before fuzzing")
            print(f"warming up with {arguments.warm_up:,} messages (not counted) ...", flush=True)
            fuzz(context, {"proxy": proxies[:1], "node": nodes}, corpus, arguments.warm_up, rng, Tally())
            for item in watched:
                item.rss_before = item.rss_peak = item.rss()
            print(f"sending {messages:,} hostile messages (seed {arguments.seed}) ...", flush=True)
            tally = Tally()
            with PeakSampler(watched):
                elapsed = fuzz(
                    context,
                    {"proxy": proxies[:1], "node": nodes},
                    corpus,
                    messages,
                    rng,
                    tally,
                    arguments.only,
                )
                for endpoint in (proxies[0], nodes[0]):
                    over_the_limit(
                        context,
                        endpoint,
                        rng,
                        tally,
                        OVERSIZED_BODIES[arguments.size],
                        OVER_SOCKET_LIMIT[arguments.size],
                    )
            for item in watched:
                item.rss_after = item.rss()
            print("checking ...", flush=True)
            intact = lists_intact(read_back(context, proxies[1 % len(proxies)]), expected)
            intact = {
                k: v and lists_intact(read_back(context, proxies[0]), expected)[k] for k, v in intact.items()
            }
            writable = still_writable(context, proxies)
            undecodable = undecodable_lists(context, nodes)
            bugs = bugs_in_log(data / "cluster.log")
            table, passed = summary(
                tally, watched, intact, writable, elapsed, arguments, bugs, load, undecodable
            )
            print(table, flush=True)
    finally:
        context.destroy(0)
        if arguments.keep or not passed:
            print(f"cluster data and log kept in {data}", file=sys.stderr)
        else:
            shutil.rmtree(data, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
