"""The one way to reach a Dask cluster: `--dask ADDRESS` (an existing scheduler) or `--dask local:N`.

Dask is an optional extra (`pip install '.[dask]'`), not in the inference image: it is
imported only when a client is made.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client

LOCAL_PREFIX = "local:"
# A local cluster's settings (measured on 41 cases, docs/benchmarks.md):
# - one task per worker thread at a time, as --workers hands them out: with Dask's default saturation (1.1)
#   each worker may queue a second case and wait on a long one while the other idles at the end;
# - no statistical profiler: it walks the computing thread's stack every 10 ms, and its samples grow the RSS;
# - glibc's default trim threshold (128 KiB) instead of Dask's 64 KiB: the slice loops free and allocate such
#   blocks all the time, and memory trimmed comes back as page faults (12 cases in a pool thread: 73-75 s
#   against 76-78 s with 64 KiB; within the machine's noise, but never faster).
LOCAL_CLUSTER_CONFIG = {
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.worker.profile.enabled": False,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 128 * 1024,
}


def local_workers(address: str) -> int | None:
    """N for `local:N` (a cluster started here), None for the address of an existing scheduler."""
    if not address.startswith(LOCAL_PREFIX):
        return None
    return int(address.removeprefix(LOCAL_PREFIX))


def dask_address(text: str) -> str:
    """A `--dask` value for argparse: `local:N` with N >= 1, or a scheduler address (tcp://host:8786)."""
    if text.startswith(LOCAL_PREFIX):
        count = text.removeprefix(LOCAL_PREFIX)
        if not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(f"local:N needs a number of workers N >= 1, got {text}")
    elif not text:
        raise argparse.ArgumentTypeError("a scheduler address (tcp://host:8786) or local:N")
    return text


@contextmanager
def dask_client(address: str) -> Iterator[Client]:
    """A client of the cluster at `address`; `local:N` starts N single-threaded worker processes here
    for the block and stops them after it. RuntimeError when Dask is not installed."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise RuntimeError(f"--dask needs the dask extra (pip install dask distributed): {err}") from err
    workers = local_workers(address)
    if workers is None:
        with Client(address) as client:
            yield client
        return
    # The scheduler of a local cluster runs in this process: its INFO lines would fill the run's log.
    scheduler_log = logging.getLogger("distributed")
    level = scheduler_log.level
    scheduler_log.setLevel(max(level, logging.WARNING))
    try:
        with dask.config.set(LOCAL_CLUSTER_CONFIG), \
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                yield client
    finally:
        scheduler_log.setLevel(level)
