"""Independent evaluations (sweep options, tuning candidates) run side by side in worker
processes, with a progress bar on a terminal.

Workers are forked, so they inherit what the parent has loaded (an imported model) instead of
loading it again; the pool is made before any progress thread starts. Where the OS cannot
fork, the evaluations run one by one in this process.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed


def default_jobs() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every OS
        return os.cpu_count() or 1


def run_all(fn: Callable, items: Iterable, jobs: int, describe: Callable[[object], str],
            title: str) -> Iterator[tuple[object, object]]:
    """(item, fn(item)) for every item, as each finishes; `jobs` worker processes (1: here,
    in order). `fn` must be a module-level function (workers receive it by name)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from neuron_opt.diagnostics import markup

    items = list(items)
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn())
    pool = None
    if jobs > 1 and len(items) > 1 and "fork" in multiprocessing.get_all_start_methods():
        # Garbage the parent has not collected yet would be collected in each worker: an
        # onnxruntime session freed there joins threads that do not exist after fork (hang).
        gc.collect()
        ctx = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=ctx)
    try:
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as prog:
            task = prog.add_task(title, total=len(items))
            if pool is None:
                for item in items:
                    prog.update(task, description=f"{title}: {markup(describe(item))}")
                    yield item, fn(item)
                    prog.advance(task)
                return
            futures = {pool.submit(fn, item): item for item in items}
            for fut in as_completed(futures):
                item = futures[fut]
                prog.update(task, description=f"{title}: {markup(describe(item))} done")
                yield item, fut.result()
                prog.advance(task)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
