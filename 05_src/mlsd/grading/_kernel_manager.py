"""The kernel manager of the grading child process (used by nbgrader's ``Execute``, see ``_runner``).

It starts the graded kernel (see ``_kernel``) over Jupyter's IPC transport with its connection file
in the run's socket folder, and, once the kernel has made its sockets, closes the folder, so that
learner code cannot fill it or add files to it.
"""

from __future__ import annotations

import json
import os
import stat

from jupyter_client.manager import AsyncKernelManager
from traitlets import Unicode

__all__ = ["GradedKernelManager"]


class GradedKernelManager(AsyncKernelManager):
    """Starts the graded kernel over IPC with its connection file in the run's socket folder."""

    channel = Unicode("", help="The kernel's socket folder (the plan's channel).").tag(config=True)
    workspace = Unicode("", help="Working folder of a kernel that runs without a sandbox.").tag(config=True)
    environment_file = Unicode("", help="JSON file with the whole environment of an unsandboxed kernel.").tag(
        config=True
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.channel:
            self.transport = "ipc"
            self.ip = os.path.join(self.channel, "kernel")
            self.connection_file = os.path.join(self.channel, "connection.json")

    def write_connection_file(self, **kwargs):
        result = super().write_connection_file(**kwargs)
        # The sandbox user reads it (the folder is reachable only by the grader and the sandbox).
        os.chmod(self.connection_file, 0o644)
        return result

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if self.workspace:
            kw["cwd"] = self.workspace
        if self.environment_file:
            with open(self.environment_file, encoding="utf-8") as handle:
                kw["env"] = json.load(handle)
        else:
            kw["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # the launcher sets the rest
        return await super()._async_launch_kernel(kernel_cmd, **kw)

    _launch_kernel = _async_launch_kernel

    def close_channel_folder(self) -> None:
        """After the kernel made its sockets: no more files in the folder (when root owns it)."""
        if self.channel and os.geteuid() == 0:
            os.chmod(self.channel, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | 0o005)

    @property
    def exit_code(self) -> int | None:
        """How the kernel's process ended (``128 + signal`` when a signal ended it), if it did."""
        process = getattr(self.provisioner, "process", None)
        return None if process is None else process.poll()
