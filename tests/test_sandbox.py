"""The bubblewrap sandbox of grading kernels: every test starts a real kernel in a real sandbox and
runs code in it, because a sandbox is only as good as what the notebook can actually do inside."""

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder import sandbox
from autograder.course import notebooks, paths
from autograder.sandbox import Limits, Sandbox, host
from autograder.sandbox.cgroups import Cgroups

pytestmark = pytest.mark.kernel  # every test here grades or runs notebooks in kernels

ROOT = os.geteuid() == 0
REPO = paths.ROOT  # the repository: its solutions and grader stay out of every sandbox
SECRET_VAR = "GRADER_SECRET_TOKEN"
ALLOWED_ENV = {
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "MPLBACKEND",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "PYTHONDONTWRITEBYTECODE",
    "MICROGRAD_GRADING",
}

# Defined in every kernel: run a callable, return its result or the name of what it raised.
PRELUDE = textwrap.dedent("""
    import errno, json, os, socket, subprocess, sys, time
    def attempt(f):
        try:
            r = f()
            return "ok" if r is None else r
        except BaseException as e:
            return f"{type(e).__name__}: errno {getattr(e, 'errno', None)}"
""")


# The syscalls the seccomp filter must fail, each called so that it would succeed (or fail with
# another errno) without the filter: {name: python source of the call}, and how they fare.
SYSCALL_PROBES = {
    "ptrace": "call('ptrace', 0, 0, 0, 0)",  # PTRACE_TRACEME
    "keyctl": "call('keyctl', 0, -3, 0)",  # KEYCTL_GET_KEYRING_ID of the session keyring
    "io_uring_setup": "call('io_uring_setup', 1, 0)",  # EFAULT unfiltered
    "perf_event_open": "call('perf_event_open', 0, 0, -1, -1, 0)",  # EFAULT unfiltered
    "bpf": "call('bpf', 0, 0, 0)",  # EFAULT or EPERM unfiltered
}


def _syscall_numbers():
    """{name: number} of SYSCALL_PROBES on this machine, from libseccomp itself."""
    code = (
        "import json, seccomp, sys\n"
        "print(json.dumps({n: seccomp.resolve_syscall(seccomp.Arch.NATIVE, n) for n in sys.argv[1:]}))"
    )
    run = subprocess.run([sandbox.SECCOMP_PYTHON, "-c", code, *SYSCALL_PROBES], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _probe_syscalls():
    """Python source that prints the JSON {name: errno name or 'ok'} of SYSCALL_PROBES, and Seccomp."""
    numbers = _syscall_numbers()
    return textwrap.dedent(f"""
        import ctypes, errno, json
        _libc = ctypes.CDLL(None, use_errno=True)
        def call(name, *args):
            r = _libc.syscall({numbers!r}[name], *args)
            return errno.errorcode.get(ctypes.get_errno(), '?') if r == -1 else 'ok'
        _mode = open('/proc/self/status').read().split('Seccomp:')[1].split()[0]
        print(json.dumps({{**{{n: eval(c) for n, c in {SYSCALL_PROBES!r}.items()}}, 'Seccomp': _mode}}))
    """)


def _text(cell):
    out = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            out.append(o["text"])
        elif o["output_type"] in ("execute_result", "display_data"):
            out.append(o["data"].get("text/plain", ""))
    return "".join(out)


class Kernel:
    """A live sandboxed kernel, driven through nbclient as the grader drives it."""

    def __init__(self, sb, timeout=60):
        self.nb = new_notebook()
        self.km = sb.kernel_manager()
        self.client = notebooks.client(self.nb, timeout=timeout, km=self.km)

    def __enter__(self):
        self._ctx = self.client.setup_kernel(cleanup_kc=True)
        self._ctx.__enter__()
        self.run(PRELUDE)
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)

    def run(self, code):
        cell = new_code_cell(textwrap.dedent(code))
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return _text(cell)

    def value(self, expr):
        """The JSON value of a Python expression evaluated inside the sandbox."""
        return json.loads(self.run(f"print(json.dumps({expr}, default=str))"))

    def pid_on_host(self):
        """The kernel's process as the host sees it (its cmdline names the connection file)."""
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info["cmdline"] or []
            if cmd[:1] == [sys.executable] and self.km.connection_file in cmd:
                return p
        raise AssertionError("kernel process not found on the host")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One sandboxed kernel for the isolation tests (none of them kills it), started while the
    grader holds a secret in its environment and an open inheritable file."""
    tmp = tmp_path_factory.mktemp("grader")
    secret = tmp / "grader-secret.txt"
    secret.write_text("answer key")
    engine = tmp / "micrograd_engine.py"
    engine.write_text("VALUE = 1\n")
    held = open(secret)
    os.set_inheritable(held.fileno(), True)
    os.environ[SECRET_VAR] = "s3cret-" + uuid.uuid4().hex
    try:
        with (
            Sandbox(
                {"micrograd_engine.py": engine}, Limits(memory_mb=1024), slot=10, env={"MICROGRAD_GRADING": "1"}
            ) as sb,
            Kernel(sb) as k,
        ):
            yield SimpleNamespace(sb=sb, k=k, tmp=tmp, secret=secret, engine=engine)
    finally:
        del os.environ[SECRET_VAR]
        held.close()


@pytest.fixture(params=["cgroup", "watchdog"])
def mode(request, monkeypatch):
    """Run a limit test once with cgroups and once with the psutil watchdog that replaces them."""
    if request.param == "cgroup" and sandbox.limits_enforced_by() == "watchdog":
        pytest.skip("cannot create cgroups here")
    if request.param == "watchdog":

        def refuse(cls, name, limits):
            raise OSError("cgroups switched off by the test")

        monkeypatch.setattr(Cgroups, "create", classmethod(refuse))
    return request.param


def _run_until_killed(sb, code, timeout=60):
    """Run code expected to get the kernel killed; return the seconds it took."""
    start = time.monotonic()
    with pytest.raises(RuntimeError), Kernel(sb, timeout=timeout) as k:  # nbclient's DeadKernelError
        k.run(code)
    return time.monotonic() - start


def _host_processes_with(token):
    return [p for p in psutil.process_iter(["cmdline"]) if token in (p.info["cmdline"] or [])]


# -- 7. availability -----------------------------------------------------------------------------


def test_sandbox_is_available_here():
    assert sandbox.unavailable() is None


def test_unavailable_says_why_without_bwrap(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, **kw: None if name == "bwrap" else real_which(name, **kw))
    sandbox.unavailable.cache_clear()
    try:
        assert sandbox.unavailable() == "bwrap is not installed"
    finally:
        sandbox.unavailable.cache_clear()


# -- 1. an unprivileged uid ------------------------------------------------------------------------


def test_kernel_runs_as_an_unprivileged_uid(shared):
    inside = shared.k.value(
        "[os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), open('/proc/self/status').read()]"
    )
    status = dict(line.split(":\t", 1) for line in inside[4].splitlines() if ":\t" in line)
    assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    host = shared.k.pid_on_host()
    if ROOT:
        # Seen from the host, not only from inside the user namespace: 61000 + slot, never root.
        assert inside[:3] == [61010, 61010, 61010] and inside[3] in ([], [61010])
        assert set(host.uids()) == set(host.gids()) == {61010}
    else:
        assert set(host.uids()) == {os.getuid()}


# -- 2. a fresh root -------------------------------------------------------------------------------


def test_filesystem_shows_only_what_python_needs(shared):
    k, venv_site = (
        shared.k,
        Path(sys.prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages"),
    )
    assert Path("/root/.bashrc").exists() or not ROOT, "the test needs a host file under /root"
    got = k.value(f"""{{
        "solutions": attempt(lambda: os.listdir({str(REPO / "solutions")!r})),
        "autograder": attempt(lambda: os.listdir({str(REPO / "autograder")!r})),
        "work_main": attempt(lambda: os.listdir({str(REPO)!r})),
        "bashrc": attempt(lambda: open('/root/.bashrc').read()),
        "grader_tmp": attempt(lambda: open({str(shared.secret)!r}).read()),
        "home": attempt(lambda: os.listdir('/home')),
        "shadow": attempt(lambda: open('/etc/shadow').read()),
        "import_autograder": attempt(lambda: __import__('autograder')),
        "site_packages": attempt(lambda: open({str(venv_site / "evil.pth")!r}, 'w').write('x')),
        "root_fs": attempt(lambda: open('/evil', 'w').write('x')),
        "numpy": attempt(lambda: __import__('numpy').__name__),
        "cwd": os.getcwd(), "home_env": os.environ['HOME'],
        "engine": attempt(lambda: open('micrograd_engine.py', 'a').write('VALUE = 2\\n')),
        "engine_now": open('micrograd_engine.py').read(),
    }}""")
    assert got["solutions"].startswith("FileNotFoundError")
    assert got["autograder"].startswith("FileNotFoundError")
    # the repository beside the venv is not there (only the venv's own mount point, when it lives inside)
    assert got["work_main"] == ([".venv"] if Path(sys.prefix).parent == REPO else "FileNotFoundError: errno 2")
    assert got["bashrc"].startswith("FileNotFoundError")
    assert got["grader_tmp"].startswith("FileNotFoundError")
    assert got["home"] == ["student"]
    assert got["shadow"].startswith(("FileNotFoundError", "PermissionError"))
    assert got["import_autograder"].startswith("ModuleNotFoundError")
    assert got["site_packages"].startswith(("OSError: errno 30", "PermissionError"))
    assert got["root_fs"].startswith(("OSError: errno 30", "PermissionError"))
    assert got["numpy"] == "numpy"
    assert got["cwd"] == got["home_env"] == Sandbox.WORKDIR
    # The work folder holds a writable copy; the grader's file is untouched.
    assert got["engine"] == 10 and got["engine_now"] == "VALUE = 1\nVALUE = 2\n"
    assert shared.engine.read_text() == "VALUE = 1\n"
    assert not (venv_site / "evil.pth").exists()


# -- 3. private /tmp, no network, private sockets, clean environment, no inherited fds -----------


def test_no_network_and_a_private_tmp(shared):
    k = shared.k
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        got = k.value(f"""{{
            "loopback": attempt(lambda: socket.create_connection(('127.0.0.1', {port}), timeout=3)),
            "outside": attempt(lambda: socket.create_connection(('1.1.1.1', 53), timeout=3)),
            "dns": attempt(lambda: socket.getaddrinfo('pypi.org', 443)),
            "tmp_write": attempt(lambda: open('/tmp/from-notebook-{port}', 'w').write('x')),
            "tmp_before": sorted(os.listdir('/tmp')),
        }}""")
    finally:
        listener.close()
    assert got["loopback"].startswith("ConnectionRefusedError")  # its own loopback, not the host's
    assert got["outside"].startswith("OSError: errno 101")  # network unreachable
    assert not got["dns"] == "ok"
    assert got["tmp_write"] == 1 and not Path(f"/tmp/from-notebook-{port}").exists()
    assert shared.secret.name not in got["tmp_before"]


def test_kernel_sockets_live_in_a_private_sealed_folder(shared):
    km, folder = shared.k.km, Path(shared.k.km.connection_file).parent
    assert km.transport == "ipc" and Path(km.ip).parent == folder
    mode = folder.stat()
    # Nobody else may list it; once the kernel's sockets exist, the kernel may not write there
    # (it is host disk, not a size-capped tmpfs).
    assert not mode.st_mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH)
    assert stat.S_IMODE(Path(km.connection_file).stat().st_mode) == 0o600
    assert shared.k.value(f"attempt(lambda: open({str(folder / 'fill')!r}, 'w').write('x'))").startswith(
        "PermissionError"
    )
    assert not (folder / "fill").exists()


def test_clean_environment_and_no_inherited_files(shared):
    got = shared.k.value("""{
        "environ": open('/proc/self/environ').read().split('\\0'),
        "secret": [k for k in os.environ if 'SECRET' in k],
        "fds": {f: attempt(lambda: os.readlink('/proc/self/fd/' + f)) for f in os.listdir('/proc/self/fd')},
    }""")
    started_with = {e.split("=", 1)[0] for e in got["environ"] if e}
    assert started_with <= ALLOWED_ENV | {"PWD"} and "MICROGRAD_GRADING" in started_with
    assert got["secret"] == []
    targets = [t for t in got["fds"].values() if t.startswith("/")]
    assert str(shared.secret) not in targets
    # Only its own pipes, sockets and eventfds, plus its own log (a copy of its original stdout).
    assert all(t.endswith("kernel.log") for t in targets), targets


def test_interrupt_reaches_the_kernel(shared):
    client = shared.k.client
    client.timeout, client.interrupt_on_timeout = 2, True
    try:
        with pytest.raises(Exception, match="KeyboardInterrupt"):
            shared.k.run("time.sleep(30)")
    finally:
        client.timeout, client.interrupt_on_timeout = 60, False
    assert shared.k.run("1 + 1") == "2"


def test_the_kernel_runs_under_the_seccomp_filter(shared):
    """Each denied syscall fails with EPERM inside the kernel, where the same call made by the
    grader's own Python succeeds or fails otherwise."""
    probe = _probe_syscalls()
    host = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout)
    inside = json.loads(shared.k.run(probe))
    assert host["Seccomp"] == "0" and host["ptrace"] == host["keyctl"] == "ok" and host["io_uring_setup"] != "EPERM"
    assert inside == {**dict.fromkeys(SYSCALL_PROBES, "EPERM"), "Seccomp": "2"}
    assert shared.k.value("attempt(lambda: __import__('numpy').ones(3).sum())") == 3.0


def test_the_filter_is_data_made_once_per_machine():
    program = sandbox.seccomp_filter()
    assert sandbox.seccomp_unavailable() is None and program and len(program) % 8 == 0
    kept = list(Path(host.private_dir()).glob("seccomp-*.bpf"))
    assert program in [p.read_bytes() for p in kept]
    with Sandbox({}, Limits(), slot=27) as sb:
        cmd, fds = sb._command([sys.executable, "-c", "pass"], str(sb._conn / "k1"))
    try:
        fd = int(cmd[cmd.index("--seccomp") + 1])
        assert fd in fds and os.pread(fd, len(program) + 1, 0) == program
    finally:
        for fd in fds:
            os.close(fd)


@pytest.mark.parametrize(
    "level", ["full", pytest.param("uid", marks=pytest.mark.skipif(not ROOT, reason="level 'uid' needs root"))]
)
def test_each_sandbox_has_a_cpu_weight_of_its_own(mode, level):
    with Sandbox({}, Limits(), slot=28, level=level) as sb:
        cmd, fds = sb._command([sys.executable, "-c", "pass"], str(sb._conn / "k1"))
        for fd in fds:
            os.close(fd)
        niced = "-n" in cmd and cmd[cmd.index("-n") - 1].endswith("nice")
        if mode == "watchdog":
            assert niced and cmd[cmd.index("-n") + 1] == str(sandbox.NICE)
            return
        assert not niced
        cg = sb._cgroups
        if cg.version == "cgroup v1":
            folder = cg.dirs.get("cpu", cg.dirs["cpuacct"])
            assert (folder / "cpu.shares").read_text().strip() == str(sandbox.CPU_SHARES)
            assert folder / "cgroup.procs" in cg.procs_files()
        else:
            assert (cg.dirs[""] / "cpu.weight").read_text().strip() == str(sandbox.CPU_WEIGHT)


def test_a_worker_has_a_memory_cgroup_beside_its_kernels(tmp_path):
    if sandbox.limits_enforced_by() == "watchdog":
        pytest.skip("cannot create cgroups here")
    # The worker stands in: it waits for its cgroup, then makes a sandbox's cgroups as a worker does.
    code = (
        "import sys; sys.stdin.readline()\n"
        "from autograder.course.limits import Limits\n"
        "from autograder.sandbox.cgroups import Cgroups\n"
        "cg = Cgroups.create('probe-worker-kernel', Limits())\n"
        "print([str(d) for d in cg.dirs.values()]); cg.remove()\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    cg = sandbox.confine_worker(worker.pid, 300)
    try:
        assert cg is not None
        folder = next(iter(cg.dirs.values()))
        assert folder.name == f"{sandbox.WORKER_CGROUP}{worker.pid}"
        limit = "memory.limit_in_bytes" if cg.version == "cgroup v1" else "memory.max"
        assert (folder / limit).read_text().strip() == str(300 * 2**20)
        assert str(worker.pid) in (folder / "cgroup.procs").read_text().split()
        kernels, _ = worker.communicate("go\n", timeout=60)
        assert all(Path(d).parent != folder for d in eval(kernels)), kernels  # siblings, never inside
        assert any(Path(d).parent == folder.parent for d in eval(kernels)), kernels
    finally:
        worker.kill()
        worker.wait()
        if cg:
            cg.remove()
    assert not folder.exists()


# -- 4. a PID namespace per notebook --------------------------------------------------------------


def test_close_kills_everything_the_notebook_started(tmp_path):
    token = f"sandbox-test-{uuid.uuid4().hex}"
    with Sandbox({}, Limits(), slot=14) as sb:
        with Kernel(sb) as k:
            inner_pid = k.value(f"""[
                subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)', {token!r}],
                                 start_new_session=True).pid,
                os.fork() or (os.setsid(), os.execv(sys.executable,
                              [sys.executable, '-c', 'import time; time.sleep(1000)', {token!r}])),
                os.getpid()]""")
            for _ in range(50):
                if len(_host_processes_with(token)) == 2:
                    break
                time.sleep(0.1)
            assert len(_host_processes_with(token)) == 2  # the test can see them ...
            assert inner_pid[2] < 10  # ... the kernel sees a PID namespace
        sb.close()
        assert _host_processes_with(token) == []
        sb.close()  # idempotent


# -- 5. limits for the whole process tree ---------------------------------------------------------


def test_memory_limit_counts_the_whole_tree(mode):
    # Two children of 0.6 x the limit each: a per-process limit would let both live.
    with Sandbox({}, Limits(memory_mb=300), slot=11) as sb:
        assert sb.enforced_by == ("watchdog" if mode == "watchdog" else sandbox.limits_enforced_by())
        took = _run_until_killed(
            sb,
            """
            hogs = [subprocess.Popen([sys.executable, '-c',
                    'import time; b = b"x" * (180 * 2**20); time.sleep(60)']) for _ in range(2)]
            time.sleep(60)
        """,
        )
        assert sb.stop_reason() == "the notebook used more than 300 MB of memory", sb.log.read_text()
        assert took < 40


def test_cpu_limit_counts_the_whole_tree(mode):
    with Sandbox({}, Limits(cpu_seconds=2), slot=12) as sb:
        took = _run_until_killed(
            sb,
            """
            spin = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
            end = time.monotonic() + 60
            while time.monotonic() < end: pass
        """,
        )
        assert sb.stop_reason() == "the notebook used more than 2 s of CPU time", sb.log.read_text()
        assert took < 40


@pytest.mark.parametrize(
    "level,slot",
    [
        ("full", 13),
        pytest.param(
            "uid", 23, marks=pytest.mark.skipif(not ROOT, reason="level 'uid' needs a grader running as root")
        ),
    ],
)
def test_fork_bomb_is_contained(mode, level, slot):
    if mode == "watchdog" and not ROOT:
        pytest.skip("without cgroups or a uid of its own only a polling watchdog would stop it")
    with Sandbox({}, Limits(pids=48), slot=slot, level=level) as sb:
        with pytest.raises(Exception) as failed, Kernel(sb) as k:
            k.run("""
                for _ in range(10000):
                    if os.fork() == 0:
                        time.sleep(60)
                        os._exit(0)
                time.sleep(60)
            """)
        if mode == "cgroup":
            assert sb.stop_reason() == "the notebook started more than 48 processes", sb.log.read_text()
        else:  # RLIMIT_NPROC of its own uid refused the fork; the watchdog may not have looked yet
            assert sb.stop_reason() == "the notebook started more than 48 processes" or "BlockingIOError" in str(
                failed.value
            ), str(failed.value)
    if ROOT:  # the grader survived, and nothing of the bomb is left on the host
        assert not [
            p
            for p in psutil.process_iter(["uids", "status"])
            if p.info["uids"].real == 61000 + slot and p.info["status"] != psutil.STATUS_ZOMBIE
        ]


def test_file_size_and_scratch_disk_are_capped():
    with Sandbox({}, Limits(file_mb=8, disk_mb=32), slot=15) as sb, Kernel(sb) as k:
        got = k.value("""{
            "big_file": attempt(lambda: open('big', 'wb').write(b'x' * 16 * 2**20)),
            "workdir": attempt(lambda: [open(f'part{i}', 'wb').write(b'x' * 7 * 2**20) for i in range(6)]),
            "tmp": attempt(lambda: [open(f'/tmp/part{i}', 'wb').write(b'x' * 7 * 2**20) for i in range(6)]),
            "shm": attempt(lambda: [open(f'/dev/shm/part{i}', 'wb').write(b'x' * 7 * 2**20) for i in range(6)]),
        }""")
        assert got["big_file"] == "OSError: errno 27"  # EFBIG: RLIMIT_FSIZE, the kernel lives on
        assert got["workdir"] == got["tmp"] == got["shm"] == "OSError: errno 28"  # ENOSPC on the tmpfs
        assert k.run("1 + 1") == "2"


# -- 6. start time -------------------------------------------------------------------------------


def test_start_time_sandboxed_vs_plain(capsys):
    """Printed, not asserted: the course grades thousands of notebooks, so this is the figure to watch."""

    def timed(km, close):
        nb = new_notebook(cells=[new_code_cell("1 + 1")])
        client = notebooks.client(nb, km=km)
        t = time.perf_counter()
        with client.setup_kernel(cleanup_kc=False):
            client.execute_cell(nb.cells[0], 0)
            started = time.perf_counter() - t
            assert _text(nb.cells[0]) == "2"
        close(client)
        return started, time.perf_counter() - t

    def sandboxed():
        sb = Sandbox({}, Limits(), slot=16)
        return timed(sb.kernel_manager(), lambda client: sb.close())  # the grader kills, no goodbye

    def uid_level():
        sb = Sandbox({}, Limits(), slot=16, level="uid")
        return timed(sb.kernel_manager(), lambda client: sb.close())

    def plain():
        return timed(None, lambda client: client._cleanup_kernel())

    kinds = [("plain", plain), ("sandboxed", sandboxed)] + ([("uid level", uid_level)] if ROOT else [])
    runs = {name: [] for name, _ in kinds}
    for _ in range(3):
        for name, run in kinds:
            runs[name].append(run())
    with capsys.disabled():
        print()
        for name, times in runs.items():
            best = min(times)
            print(
                f"{name:>9} kernel: start + `1+1` {best[0]:.2f} s, with shutdown {best[1]:.2f} s "
                f"(best of {len(times)}; limits by {sandbox.limits_enforced_by() if name != 'plain' else '-'})"
            )


# -- 8. level "uid": no bwrap, no namespaces, a uid of its own (Gradescope's Docker image) -------

needs_root = pytest.mark.skipif(not ROOT, reason="level 'uid' needs a grader running as root")


def _uid_alive(uid):
    return [
        p
        for p in psutil.process_iter(["uids", "status"])
        if p.info["uids"].real == uid and p.info["status"] != psutil.STATUS_ZOMBIE
    ]


@pytest.fixture(scope="module")
def shared_uid(tmp_path_factory):
    """One level "uid" kernel for its isolation tests, started while the grader holds a secret in
    its environment and an open inheritable file, beside a root-owned 0700 folder."""
    if not ROOT:
        pytest.skip("level 'uid' needs a grader running as root")
    tmp = tmp_path_factory.mktemp("grader-uid")
    secret = tmp / "grader-secret.txt"
    secret.write_text("answer key")
    engine = tmp / "micrograd_engine.py"
    engine.write_text("VALUE = 1\n")
    private = Path(tempfile.mkdtemp(prefix="grader-private-"))  # /tmp/...: the kernel can reach /tmp
    (private / "hidden.txt").write_text("hidden tests")
    (private / "hidden.txt").chmod(0o644)  # only the folder's 0700 protects it
    held = open(secret)
    os.set_inheritable(held.fileno(), True)
    os.environ[SECRET_VAR + "_UID"] = "s3cret-" + uuid.uuid4().hex
    try:
        with (
            Sandbox(
                {"micrograd_engine.py": engine},
                Limits(memory_mb=1024),
                slot=20,
                env={"MICROGRAD_GRADING": "1"},
                level="uid",
            ) as sb,
            Kernel(sb) as k,
        ):
            yield SimpleNamespace(sb=sb, k=k, tmp=tmp, secret=secret, engine=engine, private=private)
    finally:
        del os.environ[SECRET_VAR + "_UID"]
        held.close()
        shutil.rmtree(private)


def test_uid_level_kernel_runs_as_its_own_uid(shared_uid):
    inside = shared_uid.k.value(
        "[os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), open('/proc/self/status').read()]"
    )
    status = dict(line.split(":\t", 1) for line in inside[4].splitlines() if ":\t" in line)
    assert inside[:4] == [61020, 61020, 61020, []]
    assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    host = shared_uid.k.pid_on_host()
    assert set(host.uids()) == set(host.gids()) == {61020}
    assert shared_uid.sb.level == "uid"


def test_uid_level_cannot_read_private_files_or_write_the_venv(shared_uid):
    k, venv_site = (
        shared_uid.k,
        Path(sys.prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages"),
    )
    got = k.value(f"""{{
        "private_list": attempt(lambda: os.listdir({str(shared_uid.private)!r})),
        "private_read": attempt(lambda: open({str(shared_uid.private / "hidden.txt")!r}).read()),
        "grader_tmp": attempt(lambda: open({str(shared_uid.secret)!r}).read()),
        "bashrc": attempt(lambda: open('/root/.bashrc').read()),
        "shadow": attempt(lambda: open('/etc/shadow').read()),
        "site_packages": attempt(lambda: open({str(venv_site / "evil.pth")!r}, 'w').write('x')),
        "venv_bin": attempt(lambda: open({str(Path(sys.prefix, "bin", "evil"))!r}, 'w').write('x')),
        "numpy": attempt(lambda: __import__('numpy').__name__),
        "cwd": os.getcwd(), "home": os.environ['HOME'], "tmpdir": os.environ['TMPDIR'],
        "tempfile": __import__('tempfile').gettempdir(),
        "scratch": attempt(lambda: __import__('tempfile').NamedTemporaryFile(delete=False).name),
        "listing": sorted(os.listdir('.')),
        "engine": attempt(lambda: open('micrograd_engine.py', 'a').write('VALUE = 2\\n')),
        "engine_now": open('micrograd_engine.py').read(),
    }}""")
    assert got["private_list"].startswith("PermissionError") and got["private_read"].startswith("PermissionError")
    assert got["grader_tmp"].startswith("PermissionError")
    assert got["bashrc"].startswith(("PermissionError", "FileNotFoundError"))
    assert got["shadow"].startswith("PermissionError")
    assert got["site_packages"].startswith("PermissionError") and got["venv_bin"].startswith("PermissionError")
    assert not (venv_site / "evil.pth").exists()
    assert got["numpy"] == "numpy"
    # Its own folder on the host's disk: 0700, its uid's, only the copied files (and IPython's
    # profile and the scratch folder); TMPDIR inside it.
    work = Path(shared_uid.sb.workdir)
    assert got["cwd"] == got["home"] == str(work) and work.is_relative_to(shared_uid.sb._dir)
    st = work.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (61020, 61020, 0o700)
    assert got["tmpdir"] == got["tempfile"] == str(work / ".tmp") and got["scratch"].startswith(str(work / ".tmp"))
    assert set(got["listing"]) - {".ipython", ".tmp"} == {"micrograd_engine.py"}
    assert got["engine"] == 10 and got["engine_now"] == "VALUE = 1\nVALUE = 2\n"
    assert shared_uid.engine.read_text() == "VALUE = 1\n"


def test_uid_level_clean_environment_sockets_and_no_inherited_files(shared_uid):
    km, folder = shared_uid.k.km, Path(shared_uid.k.km.connection_file).parent
    got = shared_uid.k.value(f"""{{
        "environ": open('/proc/self/environ').read().split('\\0'),
        "secret": [k for k in os.environ if 'SECRET' in k],
        "fds": {{f: attempt(lambda: os.readlink('/proc/self/fd/' + f)) for f in os.listdir('/proc/self/fd')}},
        "fill": attempt(lambda: open({str(folder / "fill")!r}, 'w').write('x')),
    }}""")
    started_with = {e.split("=", 1)[0] for e in got["environ"] if e}
    assert started_with <= ALLOWED_ENV and "MICROGRAD_GRADING" in started_with, started_with
    assert got["secret"] == []
    targets = [t for t in got["fds"].values() if t.startswith("/")]
    assert all(t.endswith("kernel.log") for t in targets), targets
    # Unix sockets in the same private folder as level "full", sealed once they exist.
    assert km.transport == "ipc" and Path(km.ip).parent == folder
    assert not folder.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH)
    assert got["fill"].startswith("PermissionError") and not (folder / "fill").exists()


def test_uid_level_kernel_runs_under_the_seccomp_filter_and_sees_no_secret_in_command_lines(shared_uid):
    inside = json.loads(shared_uid.k.run(_probe_syscalls()))
    assert inside == {**dict.fromkeys(SYSCALL_PROBES, "EPERM"), "Seccomp": "2"}
    # It sees every command line of the host (documented): none holds a key or the grader's secret.
    lines = shared_uid.k.value(
        "[attempt(lambda: open(f'/proc/{p}/cmdline', 'rb').read().decode(errors='replace')) "
        "for p in os.listdir('/proc') if p.isdigit()]"
    )
    assert any(shared_uid.k.km.connection_file in line for line in lines)  # it does see them
    key = shared_uid.k.km.session.key.decode()
    assert key and not [line for line in lines if key in line or "s3cret-" in line]


def test_uid_level_reads_what_any_user_may_read_until_it_is_hidden(shared_uid):
    """Its documented limit, and the remedy the Gradescope autograder applies before grading."""
    folder = Path(tempfile.mkdtemp(prefix="grader-open-"))
    try:
        folder.chmod(0o755)
        (folder / "solutions").mkdir(mode=0o755)
        (folder / "solutions" / "answers.txt").write_text("42")
        (folder / "solutions" / "answers.txt").chmod(0o644)
        read = f"attempt(lambda: open({str(folder / 'solutions' / 'answers.txt')!r}).read())"
        assert shared_uid.k.value(read) == "42"
        sandbox.hide_from_kernels(folder)
        assert shared_uid.k.value(read).startswith("PermissionError")
        assert shared_uid.k.value(f"attempt(lambda: os.listdir({str(folder)!r}))").startswith("PermissionError")
        assert (folder / "solutions" / "answers.txt").read_text() == "42"  # root still reads it
    finally:
        shutil.rmtree(folder)


def test_hide_from_kernels_keeps_the_python_it_runs(tmp_path, monkeypatch):
    source = tmp_path / "source"
    (source / ".venv" / "bin").mkdir(parents=True)
    (source / ".venv" / "bin" / "python").write_text("")
    (source / "solutions").mkdir()
    (source / "solutions" / "a.ipynb").write_text("{}")
    (source / "link").symlink_to("/etc/hostname")
    for p in [source, source / ".venv", source / ".venv" / "bin", source / "solutions"]:
        p.chmod(0o755)
    for p in [source / ".venv" / "bin" / "python", source / "solutions" / "a.ipynb"]:
        p.chmod(0o644)
    host_mode = stat.S_IMODE(os.stat("/etc/hostname").st_mode)
    monkeypatch.setattr(host, "python_dirs", lambda: [str(source / ".venv"), sys.base_prefix])
    sandbox.hide_from_kernels(source, tmp_path / "missing")
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    # Not even traversable: a launcher reaches the venv through a private mount, where it may
    # have one; only where none is allowed does the way to the venv stay traversable.
    assert mode(source) == (0o700 if host.private_mounts() else 0o701)
    assert mode(source / "solutions") == 0o700 and mode(source / "solutions" / "a.ipynb") == 0o600
    assert mode(source / ".venv") == mode(source / ".venv" / "bin") == 0o755  # the venv as it was
    assert mode(source / ".venv" / "bin" / "python") == 0o644
    assert stat.S_IMODE(os.stat("/etc/hostname").st_mode) == host_mode  # no symlink followed


@needs_root
def test_uid_level_close_kills_every_process_of_its_uid(mode):
    token = f"sandbox-test-{uuid.uuid4().hex}"
    with Sandbox({}, Limits(), slot=24, level="uid") as sb:
        assert sb.enforced_by == ("watchdog" if mode == "watchdog" else sandbox.limits_enforced_by())
        with Kernel(sb) as k:
            # Escapes from the process tree: a new session, and a double fork that reparents to init.
            k.run(f"""
                subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)', {token!r}],
                                 start_new_session=True)
                sleeper = sys.executable + ' -c "import time; time.sleep(1000)" {token}'
                subprocess.run(['/bin/sh', '-c', 'setsid ' + sleeper + ' &'])
                open('/tmp/{token}', 'w').write('x')
                os.makedirs('/var/tmp/{token}/deep')
                open('/dev/shm/{token}', 'w').write('x')
            """)
            for _ in range(50):
                if len(_host_processes_with(token)) == 2:
                    break
                time.sleep(0.1)
            assert len(_host_processes_with(token)) == 2
        sb.close()
        assert _host_processes_with(token) == [] and _uid_alive(61024) == []
        assert not any(Path(d, token).exists() for d in sandbox.STRAY_DIRS)  # its files in /tmp & co.
        assert not sb._dir.exists()
        sb.close()  # idempotent


@needs_root
def test_uid_level_memory_limit_counts_every_process_of_the_uid(mode):
    # Two hogs of 0.6 x the limit that left the kernel's process tree (sh exits: init adopts them).
    with Sandbox({}, Limits(memory_mb=300), slot=21, level="uid") as sb:
        assert sb.enforced_by == ("watchdog" if mode == "watchdog" else sandbox.limits_enforced_by())
        took = _run_until_killed(
            sb,
            """
            hog = sys.executable + ' -c "import time; b = bytes([1]) * (180 * 2**20); time.sleep(60)"'
            subprocess.run(['/bin/sh', '-c', f'{hog} & {hog} &'])
            time.sleep(60)
        """,
        )
        assert sb.stop_reason() == "the notebook used more than 300 MB of memory", sb.log.read_text()
        assert took < 40
    assert _uid_alive(61021) == []


@needs_root
def test_uid_level_waits_until_no_other_sandbox_has_its_uid():
    """Another grader on the same machine with the same slot: a level "uid" sandbox, which kills
    and counts every process of its uid, waits until no other sandbox of that uid is open."""
    got = {}

    def second():
        with Sandbox({}, Limits(), slot=26, level="uid") as sb:
            got["at"] = time.monotonic()
            with Kernel(sb) as k:
                got["ran"] = k.run("1 + 1")

    with Sandbox({}, Limits(), slot=26) as first, Kernel(first) as k:  # level "full", same uid
        waiting = threading.Thread(target=second)
        waiting.start()
        time.sleep(1.5)
        assert "at" not in got
        assert k.run("1 + 1") == "2"  # untouched by the waiting sandbox
        closed = time.monotonic()
    waiting.join(60)
    assert got["at"] >= closed and got["ran"] == "2"
    with Sandbox({}, Limits(), slot=26), Sandbox({}, Limits(), slot=26):
        pass  # level "full" sandboxes share a uid freely


@needs_root
def test_uid_level_file_size_is_capped():
    with Sandbox({}, Limits(file_mb=8), slot=25, level="uid") as sb, Kernel(sb) as k:
        assert k.value("attempt(lambda: open('big', 'wb').write(b'x' * 16 * 2**20))") == "OSError: errno 27"
        assert k.run("1 + 1") == "2"


# -- 9. which level, and MICROGRAD_SANDBOX_LEVEL ------------------------------------------------


@pytest.fixture
def fresh_answers(monkeypatch):
    """Forget the cached availability answers before and after (the test changes the machine)."""
    monkeypatch.delenv(sandbox.LEVEL_VAR, raising=False)
    sandbox.unavailable.cache_clear()
    yield
    sandbox.unavailable.cache_clear()


def _without_bwrap(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, **kw: None if name == "bwrap" else real_which(name, **kw))
    sandbox.unavailable.cache_clear()


def test_best_level_is_full_where_bwrap_runs(fresh_answers):
    assert sandbox.best_level() == "full" and sandbox.unavailable() is None


@needs_root
def test_without_bwrap_a_root_grader_gets_level_uid_when_it_asks(fresh_answers, monkeypatch):
    _without_bwrap(monkeypatch)
    assert sandbox.best_level() == "uid"
    assert sandbox.unavailable() == "bwrap is not installed"  # level "full" by default: refused
    monkeypatch.setenv(sandbox.LEVEL_VAR, "uid")
    assert sandbox.unavailable() is None  # ... and the grader grades at uid
    with Sandbox({}, Limits(), slot=27) as sb:  # the default level follows the variable
        assert sb.level == "uid"
    with Sandbox({}, Limits(), slot=27, level="full") as sb:  # an explicit level wins
        assert sb.level == "full"
    monkeypatch.setenv(sandbox.LEVEL_VAR, "none")
    assert "must be 'full' or 'uid'" in sandbox.unavailable()
    with pytest.raises(ValueError):
        Sandbox({}, Limits(), slot=27)


def test_without_bwrap_or_root_there_is_no_level(fresh_answers, monkeypatch):
    _without_bwrap(monkeypatch)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert sandbox.best_level() is None
    assert "root" in sandbox.unavailable("uid")
    with pytest.raises(ValueError, match="root"):
        Sandbox({}, Limits(), level="uid")


def test_the_next_kernel_starts_ahead_in_a_fresh_sandbox(monkeypatch):
    """A worker starts the next notebook's kernel while nbgrader records the last one. That kernel
    lives in a new sandbox, is the one the next notebook runs in, and sees nothing the last left."""
    from autograder.worker import execute

    spare = execute.Spare()
    aid = "01_numerical_gradients"
    plant = textwrap.dedent(
        """
        import builtins, os
        os.environ["PLANTED"] = "1"
        builtins.planted = True
        for d in (os.path.expanduser("~"), "/tmp", "."):
            open(os.path.join(d, "planted"), "w").write("x")
        """
    )
    look = textwrap.dedent(
        """
        import builtins, os
        left = [d for d in (os.path.expanduser("~"), "/tmp", ".") if os.path.exists(os.path.join(d, "planted"))]
        print("left:", left, "PLANTED" in os.environ, hasattr(builtins, "planted"))
        """
    )
    try:
        _, reason = execute.run_graded(new_notebook(cells=[new_code_cell(plant)]), aid, spare=spare)
        assert reason is None
        ahead = spare.held.box
        assert not ahead._closed.is_set() and ahead._launched, "a started kernel waits for the next notebook"
        run, reason = execute.run_graded(new_notebook(cells=[new_code_cell(look)]), aid, spare=spare)
        assert reason is None
        assert run.cells[0].outputs[0]["text"].strip() == "left: [] False False"
        assert ahead._closed.is_set(), "the kernel started ahead ran that notebook, and went with it"
        assert spare.held.box is not ahead, "each notebook's kernel is used once"
    finally:
        spare.discard()
    assert spare.held is None
