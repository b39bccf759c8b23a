"""The graded kernel: where it runs, how the grader talks to it, and what it may see.

:func:`prepare` (in the grader) writes everything one run needs into the run's folder: the
kernel's socket folder, the database socket folder, the sandbox specification and a Jupyter
kernel spec (``python3``) whose command is the sandbox launcher.
:class:`~mlsd.grading._kernel_manager.GradedKernelManager` (in the grading child process) starts
that kernel over Jupyter's IPC transport (Unix sockets in the socket folder: the sandbox has no
network).

With ``sandbox=False`` (the instructors' ``--no-sandbox``) the same kernel runs as the grader's
own user, without namespaces or limits, and every result says ``sandbox: none``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mlsd.grading._common import KERNEL_NAME
from mlsd.grading._database import ScratchDatabase
from mlsd.grading._limits import Limits
from mlsd.grading._sandbox import (
    HOME,
    SOCKET_DIR,
    SandboxSpec,
    bwrap_path,
    package_paths,
    passwd_files,
    python_paths,
    sandbox_identity,
)

__all__ = ["KernelPlan", "prepare"]

DB_PORT = 5432


@dataclass(frozen=True)
class KernelPlan:
    """Where one run's kernel lives; everything here is in the grader's run folder."""

    sandbox: bool
    channel: str  # the kernel's socket folder (and its connection file)
    db_socket_dir: str  # where the database proxy listens (grader side)
    workspace: str  # the kernel's working folder without a sandbox
    jupyter_path: str  # holds kernels/python3/kernel.json
    learner_home: str  # HOME as the kernel sees it


def _kernel_environment(plan_home: str, extra: dict[str, str]) -> dict[str, str]:
    """The kernel's whole environment: nothing is inherited from the grader."""
    env = {
        "HOME": plan_home,
        "USER": "learner",
        "LOGNAME": "learner",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": "/tmp",
        "PYTHONHASHSEED": "0",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{plan_home}/.config/matplotlib",
        "IPYTHONDIR": f"{plan_home}/.ipython",
        "JUPYTER_CONFIG_DIR": f"{plan_home}/.jupyter",
        "JUPYTER_DATA_DIR": f"{plan_home}/.local/share/jupyter",
        "MLSD_DATA_DIR": f"{plan_home}/data",
        "MLSD_LOG_DIR": f"{plan_home}/logs",
        "MLFLOW_TRACKING_URI": f"sqlite:///{plan_home}/mlflow.db",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "VIRTUAL_ENV": sys.prefix,
    }
    env.update(extra)
    return env


def prepare(
    root: Path,
    *,
    sandbox: bool,
    limits: Limits,
    env: dict[str, str],
    database: ScratchDatabase,
    support: Path | None = None,
) -> KernelPlan:
    """Write the kernel spec and, with ``sandbox``, the sandbox specification into ``root``.

    ``env`` holds the run's own variables (``MLSD_SCALE``...); the kernel's ``DATABASE_URL`` is
    ``database``'s learner URL through the proxy's socket. ``support`` is a folder whose files are
    copied into the kernel's working folder before it starts.
    """
    channel = root / "k"
    channel.mkdir()
    db_dir = root / "db"
    db_dir.mkdir()
    socket_dir = SOCKET_DIR if sandbox else str(db_dir)
    env = {**env, "DATABASE_URL": database.learner_url(socket_dir, DB_PORT)}
    workspace = root / "workspace"
    workspace.mkdir()
    jupyter = root / "jupyter"
    kernel_dir = jupyter / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True)
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    if sandbox:
        identity = sandbox_identity()
        # Root keeps the socket folder; the sandbox user may add its sockets until the kernel is ready.
        channel.chmod(0o777 if identity.dedicated else 0o700)
        db_dir.chmod(0o755)
        files: dict[str, str] = {}
        for inside, text in passwd_files(identity.uid, identity.gid).items():
            path = root / ("etc_" + Path(inside).name)
            path.write_text(text, encoding="utf-8")
            files[inside] = str(path)
        from mlsd.config import repo_root

        stand_in = root / "pyproject.toml"
        stand_in.write_text("# the sandbox's stand-in for the repository root (see mlsd.config)\n")
        files[str(repo_root() / "pyproject.toml")] = str(stand_in)
        spec = SandboxSpec(
            uid=identity.uid,
            gid=identity.gid,
            dedicated=identity.dedicated,
            limits=limits.to_dict(),
            env=_kernel_environment(HOME, env),
            read_only=[(p, p) for p in python_paths()] + package_paths() + [(str(db_dir), SOCKET_DIR)],
            read_write=[(str(channel), str(channel))],
            files=files,
            support=str(support) if support is not None and any(support.iterdir()) else None,
            bwrap=bwrap_path() or "bwrap",
        )
        spec_path = root / "sandbox.json"
        spec.write(spec_path)
        kernel = [sys.executable, "-m", "mlsd.grading._sandbox", str(spec_path), "--", *kernel]
        home = HOME
    else:
        channel.chmod(0o700)
        if support is not None:
            import shutil

            shutil.copytree(support, workspace, dirs_exist_ok=True)
        home = str(workspace)
        (root / "kernel_env.json").write_text(json.dumps(_kernel_environment(home, env)), encoding="utf-8")
    spec_json = {
        "argv": kernel,
        "display_name": "Python 3 (graded)",
        "language": "python",
        "interrupt_mode": "message",
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec_json), encoding="utf-8")
    return KernelPlan(sandbox, str(channel), str(db_dir), str(workspace), str(jupyter), home)
