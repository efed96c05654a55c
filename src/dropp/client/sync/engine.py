"""Two-way sync of one local folder with one remote folder: passes until both sides agree.

A pass reads the remote side (the change feed, from the journal's cursor), scans the local
side (hashing only files the hash cache does not know), plans from (base, local, remote),
checks the guards, and runs the plan. Passes repeat until a plan is empty: an action's
effects (a new revision, a conflicted copy, a moved folder) come back through the feed and
the scan, and the next plan agrees with them or finishes what is left.

The guards come before anything is touched:
- a sync root that is missing, or empty while the journal knows synced files, or that is not
  the directory it was (re-created, restored from a backup, another disk mounted there) is
  never read as "everything was deleted": a missing root stops; an empty or replaced one
  starts over from no base, which can only add and keep both, never delete;
- a plan that would delete more than half of the synced files on either side (and at least
  `MASS_DELETE_MIN`) stops before deleting anything, unless the person allowed it.
"""

import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from dropp.client.api import Api
from dropp.client.errors import ClientError
from dropp.client.remote import clean_path
from dropp.client.sync import remote_state
from dropp.client.sync.executor import Executor, Outcome
from dropp.client.sync.ignore import IgnoreRules
from dropp.client.sync.journal import Journal, journal_path
from dropp.client.sync.model import Kind, Plan, Trees
from dropp.client.sync.planner import plan as make_plan
from dropp.client.sync.scanner import Scan, scan
from dropp.client.transfers import Progress

MASS_DELETE_MIN = 10
# A file in the sync root that tells this folder from a copy of it. A re-created folder can
# get its old inode numbers back, and a restore brings back the old files, names, mtimes and
# all; neither can bring back a file's ctime, which the journal keeps.
MARKER = ".dropp-root"
MAX_PASSES = 12
# A watcher can drop events (overflowing queues, network file systems), so the whole tree is
# rescanned this often even when nothing was heard.
RESCAN_SECONDS = 300.0
# Events come in bursts (an editor's save is several); one pass after the burst settles.
DEBOUNCE_SECONDS = 0.5
LONGPOLL_SECONDS = 30


class SyncRootMissing(ClientError):
    exit_code = 1


class MassDelete(ClientError):
    exit_code = 6


class NotConverged(ClientError):
    exit_code = 5


@dataclass
class PassReport:
    plan: Plan
    outcome: Outcome
    scan: Scan


@dataclass
class Summary:
    """What a run of passes did, for the command's output and for `dropp status`."""

    passes: int = 0
    uploaded: int = 0
    downloaded: int = 0
    moved: int = 0
    deleted: int = 0
    created: int = 0
    hashed: int = 0
    conflicts: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def add(self, report: PassReport) -> None:
        outcome = report.outcome
        self.passes += 1
        self.uploaded += outcome.uploaded
        self.downloaded += outcome.downloaded
        self.moved += outcome.moved
        self.deleted += outcome.deleted
        self.created += outcome.created
        self.hashed += report.scan.hashed
        self.conflicts.extend(outcome.conflicts)
        self.failures = list(outcome.failures)
        self.skipped = [(skip.path, skip.reason) for skip in report.plan.skipped]


def case_insensitive(directory: Path) -> bool:
    """Whether this file system folds case (macOS and Windows by default, some mounts)."""
    with tempfile.NamedTemporaryFile(prefix=".dropp-Case-", dir=directory) as probe:
        folded = Path(probe.name).with_name(Path(probe.name).name.swapcase())
        return folded.exists()


def root_identity(root: Path) -> str | None:
    """The marker's id and ctime, None when the folder has no marker."""
    marker = root / MARKER
    try:
        info = marker.lstat()
        text = marker.read_text("utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return f"{text}:{info.st_dev}:{info.st_ino}:{info.st_ctime_ns}"


def mark_root(root: Path) -> str:
    identity = root_identity(root)
    if identity is None:
        (root / MARKER).unlink(missing_ok=True)
        (root / MARKER).write_text(uuid.uuid4().hex + "\n", "utf-8")
        identity = root_identity(root)
        assert identity is not None
    return identity


class Engine:
    def __init__(
        self,
        api: Api,
        config_dir: Path,
        root: Path,
        remote: str,
        *,
        account_id: str,
        device: str,
        allow_mass_delete: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.api = api
        self.root = root.expanduser().absolute()
        self.remote = clean_path(remote)
        self.account_id = account_id
        self.device = device
        self.allow_mass_delete = allow_mass_delete
        self.progress = progress
        self.journal = Journal.open(journal_path(config_dir, self.root, api.server, self.remote))
        self.journal.claim(
            root=str(self.root), server=api.server, remote=self.remote, account=account_id
        )
        self.windows = sys.platform == "win32"
        self.notices: list[str] = []
        # Set after each run of passes, for the long-poll to take the new cursor.
        self.passed = asyncio.Event()

    def close(self) -> None:
        self.journal.close()

    # --- guards --------------------------------------------------------------------------

    def _check_root(self) -> None:
        """Refuse a missing root; start over from no base in an empty or replaced one."""
        base_files = sum(1 for item in self.journal.base().values() if item.kind is Kind.FILE)
        if not self.root.exists():
            if base_files:
                raise SyncRootMissing(
                    f"The sync folder {self.root} is missing, but {base_files} files were synced "
                    "from it: is a disk unmounted? Nothing was changed on either side."
                )
            self.root.mkdir(parents=True)
        if not self.root.is_dir():
            raise SyncRootMissing(f"{self.root} is not a folder.")
        known = self.journal.get_meta("root_identity")
        replaced = known is not None and root_identity(self.root) != known
        empty = not any(entry.name != MARKER for entry in os.scandir(self.root))
        if base_files and (replaced or empty):
            why = "was replaced (re-created or restored)" if replaced else "is empty"
            self.notices.append(
                f"The sync folder {why} while {base_files} files were synced: nothing is "
                "deleted on the server; both sides are compared afresh, keeping both versions "
                "of any file that differs."
            )
            self.journal.reset_base()
        self.journal.set_meta("root_identity", mark_root(self.root))

    def _check_deletes(self, plan: Plan, trees: Trees) -> None:
        if self.allow_mass_delete:
            return
        synced = sum(1 for item in trees.base.values() if item.kind is Kind.FILE)
        for side, count in (
            ("this device", plan.local_deletes),
            ("the server", plan.remote_deletes),
        ):
            if count >= MASS_DELETE_MIN and count * 2 > synced:
                raise MassDelete(
                    f"This pass would delete {count} of {synced} synced files on {side}; "
                    "nothing was deleted. If that is what you meant, run again with "
                    "--allow-mass-delete."
                )

    # --- passes --------------------------------------------------------------------------

    async def ensure_remote_root(self) -> None:
        if self.remote != "/":
            await self.api.post("/folders", {"path": self.remote})

    async def _plan(self, *, settle_root: bool = True) -> tuple[Plan, Trees, Scan]:
        remote = await remote_state.refresh(self.api, self.journal, self.remote)
        if settle_root:
            self._check_root()
        rules = IgnoreRules.load(self.root)
        local = await asyncio.to_thread(scan, self.root, self.journal, rules)
        trees = Trees(base=self.journal.base(), local=local.items, remote=remote)
        plan = make_plan(trees, windows=self.windows, case_insensitive=case_insensitive(self.root))
        return plan, trees, local

    async def preview(self) -> tuple[Plan, Scan]:
        """What the next pass would do, without doing it (`dropp status`)."""
        if not self.root.is_dir():
            raise SyncRootMissing(f"The sync folder {self.root} is missing.")
        plan, _, local = await self._plan(settle_root=False)
        return plan, local

    async def one_pass(self) -> PassReport:
        plan, trees, local = await self._plan()
        self._check_deletes(plan, trees)
        executor = Executor(
            self.api,
            self.journal,
            self.root,
            self.remote,
            device=self.device,
            progress=self.progress,
        )
        outcome = await executor.run(plan, trees)
        return PassReport(plan, outcome, local)

    async def until_agreed(self, max_passes: int = MAX_PASSES) -> Summary:
        """Passes until a plan is empty; NotConverged when that does not happen."""
        self.notices = []
        summary = Summary()
        await self.ensure_remote_root()
        for _ in range(max_passes):
            report = await self.one_pass()
            summary.add(report)
            busy = report.scan.changing
            if report.plan.empty and not busy:
                summary.notices = self.notices
                self.journal.set_meta("last_sync", str(time.time()))
                self._remember(summary)
                return summary
            if busy and report.plan.empty:
                # Files still being written: wait for them to settle rather than spin.
                await asyncio.sleep(1.0)
        summary.notices = self.notices
        self._remember(summary)
        problems = [f"{path}: {why}" for path, why in summary.failures]
        problems += [f"{path}: still changing" for path in report.scan.changing]
        raise NotConverged(
            f"Both sides did not agree after {max_passes} passes"
            + (": " + "; ".join(problems[:5]) if problems else ".")
        )

    def _remember(self, summary: Summary) -> None:
        """What `dropp status` shows of the last run."""
        failures = "\n".join(f"{path}\t{why}" for path, why in summary.failures)
        self.journal.set_meta("last_failures", failures)

    # --- watching ------------------------------------------------------------------------

    async def watch(
        self, *, local_events: bool = True, rescan_seconds: float = RESCAN_SECONDS
    ) -> AsyncIterator[Summary]:
        """Sync now, then again whenever either side changes; yields each run's summary.
        A run that cannot converge is reported and retried on the next change."""
        wake = asyncio.Event()
        tasks = [asyncio.create_task(self._remote_changes(wake))]
        if local_events:
            tasks.append(asyncio.create_task(self._local_changes(wake)))
        try:
            while True:
                wake.clear()
                try:
                    summary = await self.until_agreed()
                    self.passed.set()
                    yield summary
                except NotConverged as error:
                    self.passed.set()
                    # Reported, and tried again on the next change or rescan.
                    failed = Summary()
                    failed.failures = [("", str(error))]
                    yield failed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), rescan_seconds)
                await asyncio.sleep(DEBOUNCE_SECONDS)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _remote_changes(self, wake: asyncio.Event) -> None:
        # The event stream, else the long-poll (docs/sync.md, "Watching").
        async with contextlib.aclosing(remote_state.Waiter(self.api, LONGPOLL_SECONDS)) as waiter:
            while True:
                cursor = self.journal.cursor
                if cursor is None:
                    await asyncio.sleep(1.0)
                    continue
                try:
                    if await waiter.wait(cursor):
                        self.passed.clear()
                        wake.set()
                        # The run that follows moves the cursor; don't poll the old one again.
                        await self.passed.wait()
                except ClientError:
                    await asyncio.sleep(5.0)

    async def _local_changes(self, wake: asyncio.Event) -> None:
        from watchfiles import awatch

        async for _ in awatch(self.root, debounce=int(DEBOUNCE_SECONDS * 1000)):
            wake.set()
