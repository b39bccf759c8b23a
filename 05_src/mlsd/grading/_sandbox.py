"""The sandbox that learner code runs in (Linux, bubblewrap).

A graded notebook's kernel, and everything it starts, runs:

- as a dedicated unprivileged OS user (:data:`SANDBOX_USER`, created on first use when the grader
  runs as root; otherwise the grader's own user, mapped into a user namespace);
- in new user, PID, network, IPC, UTS and cgroup namespaces, with no capabilities and no way to
  make further user namespaces: it sees its own processes only, and no network at all;
- on a file system made of: the system's ``/usr`` (read-only), the Python environment and the
  ``mlsd`` package with its SQL (read-only), a size-limited working folder and ``/tmp`` in memory,
  the kernel's socket folder, and the database socket. No repository checkout, no gradebook, no
  job, progress or results file, no other submission;
- with a small, explicit environment (nothing of the grader's);
- under the limits of :class:`~mlsd.grading._limits.Limits` (``setrlimit``), inherited by every
  process it starts.

It ends with the kernel: the kernel is PID 1's only child in the PID namespace, so when the
kernel's sandbox process is killed, the Linux kernel kills every process in the namespace,
including those that started a new session.

``python -m mlsd.grading._sandbox SPEC.json -- COMMAND...`` is the launcher that Jupyter starts as
the kernel: it opens the folders to mount (as the grader, so folders the sandbox user may not
traverse can still be mounted), sets the limits, drops to the sandbox user and runs bubblewrap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from mlsd.grading._common import GradingError
from mlsd.grading._limits import Limits

__all__ = [
    "HOME",
    "SANDBOX_USER",
    "SandboxSpec",
    "SandboxUnavailable",
    "check_available",
    "sandbox_identity",
]

SANDBOX_USER = "mlsd-sandbox"
HOME = "/home/learner"  # the working folder inside the sandbox
SOCKET_DIR = "/run/mlsd/db"  # the database socket inside the sandbox
SUPPORT_DIR = "/run/mlsd/support"  # the assignment's support files, copied into HOME at start
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/fonts",
    "/etc/mime.types",
)


class SandboxUnavailable(GradingError):
    """No sandbox can be built on this machine; the message says why and where grading runs."""


def _where_grading_runs() -> str:
    return (
        "Graded runs need Linux with bubblewrap and user namespaces: a GitHub Actions runner "
        "(`ubuntu-latest`, where the grading workflows install bubblewrap) or a Linux machine with "
        "`sudo apt-get install bubblewrap`. `--no-sandbox` runs without one, for the instructors' own "
        "notebooks only: it marks every result `sandbox: none`."
    )


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@dataclass(frozen=True)
class Identity:
    """Who the sandboxed processes are on the host: a dedicated user, or the grader itself."""

    uid: int
    gid: int
    name: str
    dedicated: bool


def sandbox_identity(create: bool = True) -> Identity:
    """The OS user that runs learner code.

    As root, :data:`SANDBOX_USER` (``MLSD_SANDBOX_USER`` names another), created as a system user
    without a home or a shell when it does not exist. Otherwise the grader's own user: bubblewrap
    then maps it into a user namespace, and the namespaces alone keep it from the grader.
    """
    import pwd

    from mlsd.config import resolve

    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return Identity(entry.pw_uid, entry.pw_gid, entry.pw_name, dedicated=False)
    name = resolve("MLSD_SANDBOX_USER", default=SANDBOX_USER) or SANDBOX_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if not create:
            raise
        done = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 and "already exists" not in done.stderr:
            raise SandboxUnavailable(
                f"Cannot create the sandbox user {name!r} (`useradd` said: {done.stderr.strip()}). "
                f"Create it yourself (`sudo useradd --system {name}`) or set MLSD_SANDBOX_USER to an "
                "unprivileged user that runs nothing else."
            ) from None
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise SandboxUnavailable(f"MLSD_SANDBOX_USER={name!r} is root: name an unprivileged user.")
    return Identity(entry.pw_uid, entry.pw_gid, entry.pw_name, dedicated=True)


_checked: dict[tuple, str | None] = {}


def check_available() -> None:
    """Raise :class:`SandboxUnavailable` unless a sandbox can be built here (checked once)."""
    import platform

    if platform.system() != "Linux":
        raise SandboxUnavailable(
            f"Autograding runs learner code in a sandbox that needs Linux; this is {platform.system()}. "
            + _where_grading_runs()
        )
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (`bwrap`) is not installed. " + _where_grading_runs())
    identity = sandbox_identity()
    key = (bwrap, identity.uid)
    if key not in _checked:
        _checked[key] = _probe(bwrap, identity)
    if _checked[key]:
        raise SandboxUnavailable(
            f"bubblewrap cannot build a sandbox here ({_checked[key]}). On Ubuntu 24.04 and later, "
            "unprivileged user namespaces are restricted by AppArmor: allow them with "
            "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`. " + _where_grading_runs()
        )


def _probe(bwrap: str, identity: Identity) -> str | None:
    """Why a minimal sandbox fails to start as the sandbox user, or None when it works."""
    args = [bwrap, "--unshare-all", "--die-with-parent"]
    for path in ("/usr", "/bin", "/lib", "/lib64"):
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "true"]
    kwargs: dict = {}
    if identity.dedicated:
        kwargs = {"user": identity.uid, "group": identity.gid, "extra_groups": []}
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False, **kwargs)
    except (OSError, subprocess.SubprocessError) as err:
        return str(err)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit code {done.returncode}")


# -- the specification the launcher reads ---------------------------------------------------------


@dataclass
class SandboxSpec:
    """Everything the launcher needs, written as JSON next to the kernel's connection file.

    ``read_only`` and ``read_write`` map host paths to paths inside the sandbox; ``files`` maps
    paths inside the sandbox to file contents (written by the grader, mounted read-only).
    """

    uid: int
    gid: int
    dedicated: bool
    limits: dict
    env: dict[str, str]
    read_only: list[tuple[str, str]] = field(default_factory=list)
    read_write: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    support: str | None = None  # host folder copied into HOME before the command starts
    bwrap: str = "bwrap"

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> SandboxSpec:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        raw["read_only"] = [tuple(p) for p in raw["read_only"]]
        raw["read_write"] = [tuple(p) for p in raw["read_write"]]
        return cls(**raw)


def python_paths() -> list[str]:
    """The folders the Python environment needs: the virtual environment and its base interpreter."""
    paths = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        value = sysconfig.get_paths().get(name)
        if value:
            paths.add(os.path.realpath(value))
    # A virtual environment's python is a symlink to the base interpreter: mount where it points.
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    return _outermost(sorted(paths))


def _outermost(paths: list[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(paths, key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return sorted(kept)


def package_paths() -> list[tuple[str, str]]:
    """The ``mlsd`` package and the course SQL, at the paths where the environment imports them.

    Only these two folders of the repository are mounted; ``mlsd.config.repo_root()`` inside the
    sandbox finds a stand-in ``pyproject.toml`` next to them (see :func:`build_spec`).
    """
    from mlsd.config import repo_root

    package = Path(__file__).resolve().parents[1]
    sql = repo_root() / "05_src" / "sql"
    return [(str(package), str(package)), (str(sql), str(sql))]


def passwd_files(uid: int, gid: int) -> dict[str, str]:
    return {
        "/etc/passwd": f"learner:x:{uid}:{gid}:learner:{HOME}:/usr/sbin/nologin\n",
        "/etc/group": f"learner:x:{gid}:\n",
        "/etc/hosts": "127.0.0.1 localhost\n::1 localhost\n",
        "/etc/hostname": "sandbox\n",
    }


def bwrap_args(spec: SandboxSpec, sources: dict[str, str]) -> list[str]:
    """The bubblewrap command line for ``spec``; ``sources`` maps host paths to where bwrap finds them."""
    limits = Limits(**spec.limits)
    args = [
        spec.bwrap,
        "--unshare-all",
        "--unshare-user",
        "--die-with-parent",
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
        "--clearenv",
    ]
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _ETC_FILES:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    size = str(limits.workspace_mb * 1024 * 1024)
    shm = str(
        min(limits.workspace_mb, 256) * 1024 * 1024
    )  # POSIX semaphores and shared memory (joblib, Dask)
    args += [
        "--size",
        size,
        "--tmpfs",
        "/tmp",
        "--size",
        size,
        "--tmpfs",
        HOME,
        "--size",
        shm,
        "--tmpfs",
        "/dev/shm",
    ]
    for host, inside in spec.read_only:
        args += ["--ro-bind", sources[host], inside]
    for host, inside in spec.read_write:
        args += ["--bind", sources[host], inside]
    for inside, host in spec.files.items():
        args += ["--ro-bind", sources[host], inside]
    if spec.support:
        args += ["--ro-bind", sources[spec.support], SUPPORT_DIR]
    for key, value in sorted(spec.env.items()):
        args += ["--setenv", key, value]
    # Everything else is read-only: bubblewrap's own root and /dev are memory file systems without a
    # size, so writing there would get round the workspace limit.
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", HOME]
    return args


def _set_limits(limits: Limits) -> None:
    import resource

    mib = 1024 * 1024
    for name, soft, hard in (
        ("RLIMIT_AS", limits.memory_mb * mib, limits.memory_mb * mib),
        # SIGXCPU at the limit (the grader names it); SIGKILL a little later if it is ignored
        ("RLIMIT_CPU", limits.cpu_seconds, limits.cpu_seconds + 5),
        ("RLIMIT_FSIZE", limits.file_size_mb * mib, limits.file_size_mb * mib),
        ("RLIMIT_NPROC", limits.processes, limits.processes),
        ("RLIMIT_NOFILE", limits.open_files, limits.open_files),
        ("RLIMIT_CORE", 0, 0),
    ):
        resource.setrlimit(getattr(resource, name), (soft, hard))


def _stage(hosts: list[str]) -> dict[str, str]:
    """Make every host path reachable for the sandbox user, in a mount namespace of this process only.

    The sandbox user may not traverse the folders above a path (a Python under ``/root``, the
    grader's private temporary folder), so bubblewrap, which runs as that user, could not mount it.
    As root, this process moves to a private mount namespace, mounts a small in-memory folder and
    bind-mounts each path into it; the host's mounts are not changed.
    """
    import ctypes
    import tempfile

    libc = ctypes.CDLL(None, use_errno=True)

    def call(result: int, what: str) -> None:
        if result != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    clone_newns, ms_bind, ms_rec, ms_private = 0x00020000, 4096, 16384, 1 << 18
    stage = tempfile.mkdtemp(prefix="mlsd-stage-")
    call(libc.unshare(clone_newns), "unshare(CLONE_NEWNS)")
    call(libc.mount(b"none", b"/", None, ms_rec | ms_private, None), "make / private")
    call(libc.mount(b"tmpfs", stage.encode(), b"tmpfs", 0, b"mode=0755,size=64k"), "mount the stage")
    staged = {}
    for number, host in enumerate(dict.fromkeys(hosts)):
        target = os.path.join(stage, str(number))
        if os.path.isdir(host):
            os.mkdir(target)
        else:
            open(target, "w").close()  # noqa: SIM115 - a mount point for a file
        call(libc.mount(host.encode(), target.encode(), None, ms_bind | ms_rec, None), f"bind {host}")
        staged[host] = target
    return staged


def launch(spec_path: str, command: list[str]) -> None:
    """Stage the mounts, set the limits, drop to the sandbox user and exec bubblewrap (never returns)."""
    spec = SandboxSpec.read(Path(spec_path))
    hosts = [h for h, _ in spec.read_only + spec.read_write] + list(spec.files.values())
    if spec.support:
        hosts.append(spec.support)
    drop = spec.dedicated and os.geteuid() == 0
    sources = _stage(hosts) if drop else {h: h for h in hosts}
    args = bwrap_args(spec, sources)
    if spec.support:
        # Copy the support files into the (in-memory) working folder, then become the command.
        command = ["/bin/sh", "-c", f'cp -R {SUPPORT_DIR}/. {HOME}/ && exec "$@"', "sh", *command]
    _set_limits(Limits(**spec.limits))
    if drop:
        os.setgroups([])
        os.setgid(spec.gid)
        os.setuid(spec.uid)
    os.execv(spec.bwrap, [*args, "--", *command])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m mlsd.grading._sandbox SPEC.json -- COMMAND...", file=sys.stderr)
        return 2
    launch(argv[0], argv[2:])
    return 1  # pragma: no cover - execv does not return


if __name__ == "__main__":  # pragma: no cover - the kernel launcher
    sys.exit(main())
