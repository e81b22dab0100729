"""The sandbox's policy as data: the command line a Sandbox runs is the one `sandbox --explain`
prints, and it follows the policy. No kernel starts: the launch is caught on its way to Popen."""

import asyncio
import dataclasses
import os
import tempfile

import pytest
from jupyter_client.manager import KernelManager

from autograder import cli
from autograder.course.limits import Limits
from autograder.sandbox import Sandbox, explain
from autograder.sandbox.argv import Fd, command
from autograder.sandbox.explain import PLACEHOLDER, planned, render
from autograder.sandbox.policy import Mount

ROOT = os.geteuid() == 0
LEVELS = ["full", pytest.param("uid", marks=pytest.mark.skipif(not ROOT, reason="level 'uid' needs root"))]


class Launched(Exception):
    """Raised in place of starting the kernel's launcher."""


def _launch(sb, monkeypatch):
    """(argv, {fd: its contents}) of the launcher the sandbox's first kernel start hands to
    jupyter_client's launch (which passes it on to Popen as it is), caught there instead."""
    seen = {}

    async def launch(km, argv, **kw):
        seen["argv"] = argv
        seen["fds"] = {fd: os.pread(fd, 1 << 20, 0) for fd in kw["pass_fds"]}
        raise Launched

    monkeypatch.setattr(KernelManager, "_async_launch_kernel", launch)
    with pytest.raises(Launched):
        asyncio.run(sb.kernel_manager().start_kernel())
    return seen["argv"], seen["fds"]


@pytest.fixture
def engine(tmp_path):
    path = tmp_path / "engine.py"
    path.write_text("VALUE = 1\n")
    return path


@pytest.mark.parametrize("level", LEVELS)
def test_the_explained_command_line_is_the_one_the_sandbox_runs(level, engine, monkeypatch):
    files = {"micrograd_engine.py": engine, "torch/__init__.py": engine}
    limits, env = Limits(memory_mb=512, file_mb=8, disk_mb=32, pids=40), {"MICROGRAD_GRADING": "1"}
    text = explain(files, limits, env, level, slot=3)
    with Sandbox(files, limits, slot=3, env=env, level=level) as sb:
        ran, fds = _launch(sb, monkeypatch)
        _, argv = planned(files, limits, env, level, slot=3, folder=sb._dir)
    assert len(ran) == len(argv)
    for want, got in zip(argv, ran, strict=True):
        if isinstance(want, Fd):  # an inherited file: its number differs, never its contents
            assert fds[int(got)] == (want.data or open(want.path, "rb").read())
        else:
            assert got == want
    # What --explain prints, the sandbox's own folder in place of its placeholder.
    shown = [want if isinstance(want, Fd) else got for want, got in zip(argv, ran, strict=True)]
    assert render(shown) in text.replace(PLACEHOLDER, sb._dir.name)
    assert len(fds) == sum(isinstance(a, Fd) for a in argv)


def test_a_change_to_the_policy_shows_in_its_command_line():
    policy, argv = planned({}, Limits(), {}, "full")
    bound = dataclasses.replace(policy, mounts=(*policy.mounts, Mount("ro-bind", "/srv/data", "/srv/shared")))
    extra = command(bound, ["python"])
    assert "/srv/shared" not in argv and extra[extra.index("/srv/shared") - 1 : extra.index("/srv/shared") + 2] == [
        "--ro-bind",
        "/srv/shared",
        "/srv/data",
    ]
    smaller, _ = planned({}, Limits(file_mb=8, disk_mb=32), {}, "full")
    small = command(smaller, ["python"])
    assert "--fsize=8388608" in small and "--fsize=67108864" in argv
    assert small.count(str(32 * 2**20)) == 3 and str(256 * 2**20) not in small  # /tmp, /dev/shm, the work folder
    networked = command(dataclasses.replace(policy, network=True), ["python"])
    assert "--share-net" in networked and "--share-net" not in argv
    quiet = command(dataclasses.replace(policy, env=(("PATH", "/usr/bin"),)), ["python"])
    assert quiet[quiet.index("--clearenv") + 1 :].count("--setenv") == 1


def test_a_smaller_memory_limit_reaches_the_sandbox_and_its_explanation():
    """Memory is not on the command line: the sandbox's cgroup holds it (or the watchdog counts it)."""
    text = explain({}, Limits(memory_mb=300), {}, "full")
    assert "memory_mb     300 MB" in text
    with Sandbox({}, Limits(memory_mb=300), slot=5) as sb:
        assert sb.policy().limits.memory_mb == 300
        if sb._cgroups is not None:
            v1 = sb._cgroups.version == "cgroup v1"
            limit = sb._cgroups.dirs["memory" if v1 else ""] / ("memory.limit_in_bytes" if v1 else "memory.max")
            assert limit.read_text().strip() == str(300 * 2**20)


@pytest.mark.parametrize("level", LEVELS)
def test_explain_names_every_limit_and_each_kind_of_rule(level):
    values = Limits(cell_timeout=17, wall_seconds=171, memory_mb=1717, cpu_seconds=717, pids=77, file_mb=7, disk_mb=71)
    text = explain({}, values, {"MICROGRAD_GRADING": "1"}, level)
    lines = text.splitlines()
    for field in dataclasses.fields(Limits):
        assert any(line.split()[:2] == [field.name, str(getattr(values, field.name))] for line in lines), field.name
    for section in ("user", "filesystem", "environment (everything else is cleared)", "limits", "syscalls"):
        assert section in lines
    assert "  MICROGRAD_GRADING=1" in lines


def test_the_sandbox_subcommand_explains_an_assignments_sandbox(capsys):
    assert cli.main(["sandbox", "--explain", "01_numerical_gradients", "--level", "full"]) == 0
    out = capsys.readouterr().out
    assert "/home/student/torch/__init__.py" in out and "MICROGRAD_GRADING=1" in out
    assert out.rstrip().endswith(f" -f {tempfile.gettempdir()}/{PLACEHOLDER}/conn/k1.json")
    assert cli.main(["sandbox", "--explain", "no_such_assignment"]) == 2
