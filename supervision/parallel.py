"""Work spread over the machine's cores: batches of folders or reports in forked worker processes.

A service's export is loaded (and its tables computed) once in the main process; worker
processes are forked from it, so they share those tables without copying or pickling them, and
each writes a chunk of clinicians' files. Results come back in the order of the items, so
progress and indexes read as in one process. Where ``fork`` is not available (Windows), the work
runs in the one process.
"""

from __future__ import annotations

__all__ = ["default_workers", "run_chunks"]


def default_workers(n_items: int, per_worker: int = 40) -> int:
    """Worker processes for ``n_items`` folders or reports: every core for a service, one for a small clinic."""
    import multiprocessing
    import os

    if "fork" not in multiprocessing.get_all_start_methods():
        return 1  # workers share the loaded export by forking; without fork, one process
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 8, n_items // per_worker))


def run_chunks(fn, items: list, workers: int, chunk: int | None = None):
    """``fn`` over chunks of ``items``, in forked processes when ``workers`` > 1; yields each chunk's result in order."""
    if workers <= 1 or len(items) <= 1:
        size = chunk or 1  # one at a time: progress after each
        for i in range(0, len(items), size):
            yield fn(items[i:i + size])
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    size = chunk or max(1, min(25, -(-len(items) // (workers * 4))))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        yield from pool.map(fn, chunks)
