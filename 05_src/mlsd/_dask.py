"""The Dask client every part of the course uses: the configured cluster, else a local one.

``DASK_SCHEDULER_ADDRESS`` (argument, environment or ``.env``) names a cluster that is already
running (``dask scheduler`` and ``dask worker`` processes, on this computer or others); without
it, a ``LocalCluster`` starts and closes with the client. :func:`mlsd.pipelines.dask_layers.dask_client`
is the public name; :func:`mlsd.tracking.tune` uses it for searches on Dask.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mlsd.config import resolve

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["client", "scheduler_address"]


def _distributed_client() -> type:
    """Dask's ``Client`` (a second or more to import), loaded when a cluster is used."""
    from distributed import Client

    return Client


def scheduler_address(address: str | None = None) -> str | None:
    """The configured cluster: ``address``, else ``DASK_SCHEDULER_ADDRESS``; ``None`` for a local one.

    Examples
    --------
    >>> scheduler_address("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    """
    return resolve("DASK_SCHEDULER_ADDRESS", address)


def client(
    address: str | None = None,
    *,
    n_workers: int = 2,
    memory_limit: str | None = "2GiB",
    processes: bool = True,
) -> Client:
    """A Dask client on the configured cluster, else on a new local cluster that closes with it.

    The client becomes Dask's default scheduler: ``compute()`` and ``persist()`` run there until
    it is closed. Use it as a context manager, or call ``close()``.

    Parameters
    ----------
    address : str, optional
        A scheduler address; ``DASK_SCHEDULER_ADDRESS`` when omitted.
    n_workers, memory_limit, processes
        The local cluster's single-threaded workers, their memory limit (beyond it they
        spill to disk), and whether they are processes (the default) or threads of this one
        (``processes=False``: starts at once and logs nothing, for a notebook). Ignored when
        a cluster is configured.
    """
    Client = _distributed_client()
    target = scheduler_address(address)
    if target:
        return Client(target)
    return Client(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=processes,
        memory_limit=memory_limit,
        dashboard_address=":0",  # any free port: None would mean 8787, which may be taken (a warning)
        silence_logs=logging.ERROR,
    )
