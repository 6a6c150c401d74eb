"""The home's own server: started on demand, shared, stopped, recovered after kill -9, failures reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from sync_service.home import Home
from tests.sync_service.conftest import REPO, Result, cli_environment, run_shoplist, stop_and_tidy
from tests.sync_service.test_cli import assert_one_line_error


def server_pid(home: Path) -> int:
    status = run_shoplist(home, "--json", "store", "status").json()
    assert status["running"], status
    return int(status["pid"])


def wait_until_gone(pid: int) -> None:
    """Wait for a killed process to be gone (or a zombie: dead, just not yet reaped)."""
    try:
        process = psutil.Process(pid)
        while process.status() != psutil.STATUS_ZOMBIE:
            psutil.wait_procs([process], timeout=0.05)
    except psutil.NoSuchProcess:
        return


def postmasters_of(home: Path) -> list[psutil.Process]:
    data_dir = str(home / "postgres")
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and data_dir in cmdline:
            found.append(process)
    return found


def test_the_first_command_creates_the_store_and_the_data_survives_a_restart(own_home: Path) -> None:
    created = run_shoplist(own_home, "--json", "new", "Groceries").json()
    run_shoplist(own_home, "add", "Groceries", "Eggs", "--needed", "6")
    assert run_shoplist(own_home, "--json", "store", "stop").json() == {"running": False, "was_running": True}
    assert run_shoplist(own_home, "--json", "store", "status").json()["running"] is False
    shown = run_shoplist(own_home, "--json", "show", "Groceries").json()
    assert shown["id"] == created["id"]
    assert [(item["name"], item["needed"]) for item in shown["items"]] == [("Eggs", 6)]


def test_a_long_home_path_works_through_a_short_socket_directory(tmp_path: Path) -> None:
    home = tmp_path / ("a-rather-long-folder-name-" * 4) / "home"
    try:
        run_shoplist(home, "new", "Groceries")
        status = run_shoplist(home, "--json", "store", "status").json()
        assert not status["socket_dir"].startswith(str(home))
        assert run_shoplist(home, "--json", "lists").json()[0]["title"] == "Groceries"
    finally:
        stop_and_tidy(Home(home))


def test_kill_9_of_the_server_then_the_next_command_recovers(own_home: Path) -> None:
    run_shoplist(own_home, "new", "Groceries")
    run_shoplist(own_home, "add", "Groceries", "Milk", "--needed", "2")
    killed = server_pid(own_home)
    os.kill(killed, signal.SIGKILL)
    wait_until_gone(killed)
    assert (own_home / "postgres" / "postmaster.pid").exists()  # stale, as a kill leaves it
    shown = run_shoplist(own_home, "--json", "show", "Groceries").json()
    assert [(item["name"], item["needed"]) for item in shown["items"]] == [("Milk", 2)]
    assert server_pid(own_home) != killed


def test_a_stale_pid_file_naming_a_live_stranger_is_cleared(own_home: Path) -> None:
    run_shoplist(own_home, "new", "Groceries")
    pid_file = own_home / "postgres" / "postmaster.pid"
    contents = pid_file.read_text()
    run_shoplist(own_home, "store", "stop")
    # The killed server's pid now belongs to another live process: this test's own.
    pid_file.write_text(f"{os.getpid()}\n" + contents.split("\n", 1)[1])
    assert run_shoplist(own_home, "--json", "lists").json()[0]["title"] == "Groceries"


def test_two_commands_starting_one_home_at_once_share_one_server(own_home: Path) -> None:
    run_shoplist(own_home, "new", "Groceries")
    run_shoplist(own_home, "store", "stop")
    command = [sys.executable, "-m", "sync_service.cli", "--home", str(own_home), "--json", "store", "start"]
    starters = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO, env=cli_environment(None))
        for _ in range(3)
    ]
    pids = set()
    for starter in starters:
        output, _ = starter.communicate(timeout=120)
        pids.add(Result(starter.returncode, output, "").json()["pid"])
    assert len(pids) == 1
    assert [process.pid for process in postmasters_of(own_home)] == list(pids)


def test_a_postgresql_that_fails_to_start_is_one_line_and_the_data_is_kept(own_home: Path) -> None:
    run_shoplist(own_home, "new", "Groceries")
    run_shoplist(own_home, "add", "Groceries", "Eggs")
    run_shoplist(own_home, "store", "stop")
    settings = own_home / "postgres" / "postgresql.conf"
    good = settings.read_text()
    settings.write_text(good + "\nno_such_setting_anywhere = 1\n")
    result = run_shoplist(own_home, "add", "Groceries", "Milk")
    assert_one_line_error(result, 1, "PostgreSQL failed to start", "no_such_setting_anywhere", "server.log")
    settings.write_text(good)
    assert [
        item["name"] for item in run_shoplist(own_home, "--json", "show", "Groceries").json()["items"]
    ] == ["Eggs"]


def test_stopping_a_stopped_store_says_it_was_not_running(own_home: Path) -> None:
    assert run_shoplist(own_home, "store", "stop").stdout == "Store was not running.\n"
    run_shoplist(own_home, "store", "start")
    assert run_shoplist(own_home, "store", "stop").stdout == "Store stopped.\n"
