"""A notebook's sandbox and its kernels: `Sandbox` holds one notebook's uid, folders, cgroups and
watch, and starts each kernel through `argv.command(policy)`; its kernel manager and client are
jupyter_client's, less what a sandboxed kernel cannot use."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager, KernelManager

from autograder.course.limits import Limits
from autograder.sandbox.argv import command, kernel_command, resolve
from autograder.sandbox.cgroups import Cgroups, dead, watchdog_over
from autograder.sandbox.host import hide_from_other_users, hold_uid, remove_strays
from autograder.sandbox.policy import LAUNCHER_ENV, WORKDIR, Policy, detours, kernel_uid, policy_for
from autograder.sandbox.probe import LEVEL_VAR, LEVELS, level_or_default
from autograder.sandbox.seccomp import seccomp_filter

POLL_SECONDS = 0.25


class _ReadyClient(AsyncKernelClient):
    """jupyter_client's client, less a fixed wait. Its wait_for_ready ends by draining IOPub until
    IOPub has been quiet for 0.2 s: a quarter of an exercise notebook's grading, spent idle. Nothing
    needs draining: nbclient reads only the IOPub messages that answer its own requests."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except queue.Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:  # the kernel also published its status: IOPub is connected, or ask again
                    await self.iopub_channel.get_msg(timeout=0.2)
                except queue.Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


class _SandboxKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel process is launched through its Sandbox."""

    sandbox: Sandbox

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        # Always the grader's own interpreter: only its install and venv are bound inside.
        return [*kernel_command(self.connection_file), *(extra_arguments or [])]

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        self.sandbox._give_to_kernel(self.connection_file)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        # SIGINT to the launcher's process group would kill bwrap, not interrupt the kernel
        # (which has a session of its own): interrupt through the control channel instead.
        self.kernel_spec.interrupt_mode = "message"  # type: ignore[union-attr]  # python3 always has a spec
        cmd, fds = self.sandbox._command(kernel_cmd, self.ip)
        try:
            with open(self.sandbox.log, "ab") as log:
                # Own stdout/stderr: an IPython kernel keeps writing to what it inherits, and the
                # grader's stdout carries result rows. The launcher gets no secrets in its env.
                kw.update(env=dict(LAUNCHER_ENV), cwd="/", stdout=log, stderr=log, pass_fds=fds, close_fds=True)
                await super()._async_launch_kernel(cmd, **kw)
        finally:
            for fd in fds:
                os.close(fd)
        self.sandbox._started(self.provisioner.process)  # type: ignore[union-attr]  # the local provisioner has one


class Sandbox:
    """One notebook's sandbox, at `level` "full" (bwrap) or "uid"; by default the level named by
    the environment variable MICROGRAD_SANDBOX_LEVEL, else "full".

    Level "uid" (a root grader only; for machines that refuse bwrap): the kernel runs as uid and
    gid 61000+slot (setpriv: groups cleared, capabilities dropped, no_new_privs, killed when the
    grader's thread that started it ends), in the same cgroups or under the same watchdog (which
    there sums every process of that uid), with RLIMIT_FSIZE, RLIMIT_NPROC, a clean environment,
    no inherited files, its cwd and HOME a fresh folder `workdir` on the host's disk (mode 0700,
    its own) holding only copies of `files`, TMPDIR inside it, and Unix sockets in the same private
    folder as level "full". close() kills every process of its uid (it owns no others: a level
    "uid" sandbox holds its uid alone, so it first waits until no other sandbox of that uid, of
    either level, is open on the machine) and removes the files of that uid from /tmp, /var/tmp
    and /dev/shm.

    What level "uid" does NOT do: it hides nothing that any user may read. The kernel sees the
    host's whole filesystem with ordinary file permissions (make the grader's own files private
    first: `hide_from_kernels`), the host's processes and their command lines, and the network.
    It can write into world-writable folders, and its disk use is not capped (`disk_mb`); only
    each file's size (`file_mb`) is. The only namespace it may use is a private mount namespace
    of the launcher, and only where the Python install is otherwise unreachable by other users
    (pyenv under /root: there a tmpfs covers that folder with only the way to Python in it).
    """

    WORKDIR = WORKDIR  # the kernel's cwd and HOME inside the sandbox (level "full")

    def __init__(
        self,
        files: dict[str, Path],
        limits: Limits,
        slot: int = 0,
        env: dict[str, str] | None = None,
        level: str | None = None,
    ) -> None:
        level = level_or_default(level)
        if level not in LEVELS:
            raise ValueError(f"sandbox level must be one of {LEVELS} ({LEVEL_VAR}), not {level!r}")
        if level == "uid" and os.geteuid() != 0:
            raise ValueError("sandbox level 'uid' needs a grader running as root")
        for name in files:
            if os.path.isabs(name) or ".." in Path(name).parts or Path(name).parts[:1] == (".tmp",):
                raise ValueError(f"file name must stay inside the work folder: {name}")
        self.files, self.limits, self.slot, self.env = dict(files), limits, slot, dict(env or {})
        self.level = level
        self.root = os.geteuid() == 0
        # A uid of its own per worker: not the grader's, and RLIMIT_NPROC becomes per sandbox.
        self.uid = kernel_uid(slot, self.root)
        self._uid_lock = hold_uid(self.uid, exclusive=level == "uid") if self.root else None
        self._dir = Path(tempfile.mkdtemp(prefix="sandbox-"))
        # The kernel uid must walk through to its socket folder, but not list or read the rest.
        self._dir.chmod(0o711)
        self.log = self._dir / "kernel.log"
        self._conn = self._dir / "conn"
        self._conn.mkdir(mode=0o700)
        self._give_to_kernel(self._conn)
        self._detours = detours(self._dir)
        for mountpoint in self._detours.values():
            mountpoint.mkdir()
        self._launched: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._closed = threading.Event()
        self._watch: threading.Thread | None = None
        self._kms = 0
        self._sockets, self._sealed = "", True
        self._workdir = self.WORKDIR if level == "full" else ""
        try:
            self._cgroups: Cgroups | None = Cgroups.create(self._dir.name, limits)
        except OSError:
            self._cgroups = None
        self.enforced_by = self._cgroups.version if self._cgroups else "watchdog"

    @property
    def workdir(self) -> str:
        """The kernel's cwd and HOME: WORKDIR inside bwrap; at level "uid" a folder on the host,
        fresh for each kernel start ("" before the first)."""
        return self._workdir

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def kernel_manager(self) -> KernelManager:
        """A KernelManager for nbclient: NotebookClient(nb, km=sandbox.kernel_manager(), ...). It
        starts an IPython kernel (`argv.kernel_command`) inside the sandbox, with transport
        'ipc' (Unix sockets) in a private connection folder that only this sandbox and the grader see.

        It is an AsyncKernelManager (a KernelManager subclass), because nbclient drives its client
        asynchronously. The kernel's own stdout/stderr (and bwrap's errors) go to `self.log`."""
        self._kms += 1
        km = _SandboxKernelManager(
            kernel_name="python3",
            transport="ipc",
            cache_ports=False,
            ip=str(self._conn / f"k{self._kms}"),
            connection_file=str(self._conn / f"k{self._kms}.json"),
            client_factory=_ReadyClient,
        )
        km.sandbox = self
        return km

    def stop_reason(self) -> str | None:
        """Why the sandbox killed the notebook: 'the notebook used more than N MB of memory', 'the
        notebook used more than N s of CPU time', 'the notebook started more than N processes' ...
        or None."""
        with self._lock:
            if self._reason is None and self._cgroups and not self._closed.is_set():
                # The kernel may have died of the OOM killer before the watch thread looked.
                self._reason = self._cgroups.over(self.limits)
            return self._reason

    def close(self) -> None:
        """Kill everything the notebook started (its PID namespace; at level "uid" every process of
        its uid), remove the cgroups and the temporary folders. Idempotent."""
        if self._closed.is_set():
            return
        self.stop_reason()  # last look at the counters before they go
        self._closed.set()
        self._kill_all()
        if self._watch:
            self._watch.join()
        if self._cgroups:
            self._cgroups.remove()
        if self.level == "uid" and self._launched:
            remove_strays(self.uid)
        self._conn.chmod(0o700)  # a sealed folder (non-root) cannot be emptied otherwise
        shutil.rmtree(self._dir, ignore_errors=True)
        if self._uid_lock is not None:
            os.close(self._uid_lock)  # last: until now, any process of its uid may still be its own
            self._uid_lock = None

    def policy(self, workdir: str | None = None) -> Policy:
        """What this sandbox's kernel sees and may use, with `workdir` its work folder (by default
        `self.workdir`: WORKDIR at level "full", the last kernel start's folder at level "uid")."""
        return policy_for(
            self.level,
            self.files,
            self.limits,
            self.env,
            self.uid,
            self.root,
            self._conn,
            self._detours,
            self._workdir if workdir is None else workdir,
            self._cgroups.procs_files() if self._cgroups else [],
            seccomp_filter(),
        )

    # -- internals ---------------------------------------------------------------------------

    def _give_to_kernel(self, path: str | Path) -> None:
        if self.root:
            os.chown(path, self.uid, self.uid)

    def _command(self, kernel_cmd: list[str], ip: str) -> tuple[list[str], list[int]]:
        """The launcher command around `kernel_cmd`, and the fds it must inherit (caller closes)."""
        if self._closed.is_set() or self.stop_reason():
            # Its counters (OOM kills, refused forks, CPU) belong to this notebook: no second life.
            raise RuntimeError(f"sandbox closed: {self.stop_reason() or 'close() was called'}")
        # (Re)open the socket folder to the kernel, without the sockets of an earlier start.
        with self._lock:
            self._give_to_kernel(self._conn)
            self._conn.chmod(0o700)
            for f in self._conn.glob(f"{Path(ip).name}-*"):
                f.unlink()
            self._sockets, self._sealed = ip, False
        if self.level == "full":
            return resolve(command(self.policy(), kernel_cmd))
        policy = self.policy(str(self._dir / f"work-{Path(ip).name}"))
        hide_from_other_users(policy.hidden)
        self._fill_workdir(policy.workdir)
        return resolve(command(policy, kernel_cmd))

    def _fill_workdir(self, workdir: str) -> None:
        """Level "uid": a fresh work folder, filled while it is still root's alone (nothing the
        kernel uid does can redirect the copies), then given to the kernel uid."""
        work = Path(workdir)
        if work.exists():  # a restart: the notebook's earlier folder goes
            shutil.rmtree(work)
        work.mkdir(mode=0o700)
        for name, src in self.files.items():
            dest = work / name
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(src, dest)  # a copy: the notebook may change it, the grader's stays
            dest.chmod(0o644)
        (work / ".tmp").mkdir(mode=0o700)
        for d, dirs, names in os.walk(work):
            for entry in [d, *(os.path.join(d, n) for n in dirs + names)]:
                os.chown(entry, self.uid, self.uid, follow_symlinks=False)
        work.chmod(0o700)
        self._workdir = workdir

    def _started(self, process: subprocess.Popen[bytes]) -> None:
        self._launched.append(process)
        if self._watch is None:
            self._watch = threading.Thread(target=self._watch_loop, daemon=True, name="sandbox-watch")
            self._watch.start()

    def _tree(self) -> list[psutil.Process]:
        """The launchers (now bwrap) and every process below them, PID namespace included."""
        procs = []
        for popen in self._launched:
            if popen.poll() is None:
                try:
                    p = psutil.Process(popen.pid)
                    procs += [p, *p.children(recursive=True)]
                except psutil.Error:
                    pass
        return procs

    def _uid_procs(self) -> list[psutil.Process]:
        """Level "uid": every process of the kernel uid (zombies included)."""
        return [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == self.uid]

    def _procs(self) -> list[psutil.Process]:
        """What the watchdog sums: the tree, and at level "uid" also whatever of its uid left the tree."""
        procs = {p.pid: p for p in self._tree()}
        if self.level == "uid":
            procs.update((p.pid, p) for p in self._uid_procs())
        return list(procs.values())

    def _kill_uid(self) -> None:
        """Level "uid": SIGKILL every process of the kernel uid. kill(-1) as that uid reaches them
        all at once (the kernel holds the task list for it, so a fork bomb cannot outrun it)."""
        for _ in range(20):
            try:
                subprocess.run(
                    ["/bin/sh", "-c", "kill -9 -1"],
                    user=self.uid,
                    group=self.uid,
                    extra_groups=[],
                    env={"PATH": "/usr/bin:/bin"},
                    cwd="/",
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=10,
                )
            except (OSError, subprocess.SubprocessError):
                pass
            if all(map(dead, self._uid_procs())):
                return
            time.sleep(0.01)

    def _kill_all(self) -> None:
        launchers = {popen.pid for popen in self._launched}
        procs = [p for p in self._procs() if p.pid not in launchers]
        for pid in self._cgroups.pids() if self._cgroups else ():
            try:
                procs.append(psutil.Process(pid))
            except psutil.Error:
                pass
        # The namespace first: its init dies, the kernel takes everything in it along, and the
        # outer bwrap reaps it and exits. Killing the outer bwrap first would leave its child to
        # be reaped by the host's init, whenever that gets round to it.
        for p in procs:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        if self.level == "uid" and self._launched:
            self._kill_uid()
        for popen in self._launched:
            try:
                popen.wait(timeout=1)
            except subprocess.TimeoutExpired:
                popen.kill()  # --die-with-parent then takes the whole PID namespace down
                popen.wait()

        # Dead means gone or a zombie: the namespace's processes are reaped by whoever inherits
        # them (the host's init), and waiting for that can take a second.
        def gone() -> bool:
            return (
                all(map(dead, procs))
                and not (self._cgroups and self._cgroups.pids())
                and not (self.level == "uid" and self._launched and not all(map(dead, self._uid_procs())))
            )

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not gone():
            time.sleep(0.01)

    def _seal(self) -> None:
        """Once the kernel has made its sockets, take its socket folder back: the only host disk it
        could write to (its tmpfs are size-capped; this folder is not)."""
        if self._sealed or len(list(self._conn.glob(f"{Path(self._sockets).name}-*"))) < 5:
            return
        # The connection file stays the kernel's: it re-reads it right after making the sockets.
        if self.root:
            os.chown(self._conn, 0, 0)
        self._conn.chmod(0o711 if self.root else 0o500)
        self._sealed = True

    def _watch_loop(self) -> None:
        while not self._closed.wait(POLL_SECONDS if self._sealed else 0.02):
            with self._lock:
                self._seal()
                if self._reason is None:
                    try:
                        self._reason = (
                            self._cgroups.over(self.limits)
                            if self._cgroups
                            else watchdog_over(self._procs(), self.limits)
                        )
                    except OSError:
                        pass
                reason = self._reason
            if reason:
                self._kill_all()
                return
