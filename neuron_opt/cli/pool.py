"""Independent evaluations (sweep options, tuning candidates) run side by side, with a progress
bar on a terminal: in worker processes on this machine (`--jobs N`), or as Ray tasks on a Ray
cluster (`--ray ADDRESS`).

Every evaluation is `fn(context, item)`, `fn` a module-level function and `context` what all the
evaluations share (the imported model, the inputs). Local workers are forked, so they inherit the
context instead of loading it again; they are forked before any progress thread starts. Where
the OS cannot fork, the evaluations run one by one in this process. Ray receives the context
once (its object store) and each task reads it from there; an imported model travels as its
serialized ONNX form and is imported once per Ray worker process (models.OnnxModel).
Results come back in the order of the items, whatever the order they finished in, so that what
is made of them does not depend on where they ran.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Generic, Self, TypeVar

from neuron_opt.diagnostics import CompileError

RAY_EXTRA = "pip install 'neuron-opt[ray]'"

C = TypeVar("C")  # the context every evaluation shares
T = TypeVar("T")  # an item
R = TypeVar("R")  # an item's result


def default_jobs() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every OS
        return os.cpu_count() or 1


def add_worker_options(p) -> None:
    """`--jobs N` and `--ray ADDRESS`, on every command that evaluates options side by side."""
    p.add_argument(
        "--jobs",
        type=int,
        default=default_jobs(),
        metavar="N",
        help="evaluations side by side in N worker processes (default: every core)",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="evaluate as tasks on a Ray cluster instead: 'auto' (the running cluster), "
        "'local' (start one on this machine) or the head's address, as ray.init takes "
        f"it (needs Ray: {RAY_EXTRA})",
    )


def check_worker_options(args) -> None:
    if args.jobs < 1:
        raise CompileError("--jobs must be at least 1", "neuron-cc")
    if args.ray is not None:
        import_ray()


def import_ray():
    try:
        import ray
    except ImportError:
        raise CompileError(
            f"--ray needs Ray, which is not installed ({RAY_EXTRA})", "neuron-cc"
        ) from None
    return ray


def _connect(address: str):
    """Ray, initialized (once per process: a process that already called ray.init keeps its
    instance)."""
    ray = import_ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        except Exception as e:  # ConnectionError, ValueError on a bad address, ...
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CompileError(
                f"cannot start or reach Ray at '{address}': {detail}", "neuron-cc"
            ) from None
    return ray


# What forked workers call: (fn, context), set before the fork.
_FORKED: list = []


def _forked_call(item):
    fn, context = _FORKED[0]
    return fn(context, item)


def _ray_call(fn, context, item):
    return fn(context, item)


class Workers(Generic[C, T, R]):
    """`with Workers(fn, context, jobs, ray) as w: w.map(items, describe, title)` evaluates
    `fn(context, item)` for every item: in `jobs` forked processes, or as Ray tasks on the
    cluster at `ray` (an address, 'auto' or 'local'); `jobs == 1` and no `ray`: here, in order."""

    def __init__(self, fn: Callable[[C, T], R], context: C, jobs: int = 1, ray: str | None = None):
        self.fn, self.context, self.jobs, self.ray_address = fn, context, jobs, ray
        self._pool = None
        self._ray = None
        self._remote = None
        self._context_ref = None

    def __enter__(self) -> Self:
        if self.ray_address is not None:
            self._ray = _connect(self.ray_address)
            self._remote = self._ray.remote(_ray_call)
            self._context_ref = self._ray.put(self.context)
        elif self.jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
            # Garbage the parent has not collected yet would be collected in each worker: an
            # onnxruntime session freed there joins threads that do not exist after fork (hang).
            gc.collect()
            _FORKED[:] = [(self.fn, self.context)]
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs, mp_context=multiprocessing.get_context("fork")
            )
            self._pool.submit(int).result()  # forks every worker now, before a progress thread
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            _FORKED.clear()
        self._context_ref = None

    def map(self, items: Iterable[T], describe: Callable[[T], str], title: str) -> list[R]:
        """fn(context, item) for every item, in the items' order."""
        from neuron_opt.cli.tables import progress
        from neuron_opt.diagnostics import markup

        items = list(items)
        results: list = [None] * len(items)
        with progress() as prog:
            task = prog.add_task(title, total=len(items))

            def done(i: int, value) -> None:
                results[i] = value
                prog.update(task, description=f"{title}: {markup(describe(items[i]))} done")
                prog.advance(task)

            if self._ray is not None and self._remote is not None:  # both set by __enter__
                pending = {
                    self._remote.remote(self.fn, self._context_ref, item): i
                    for i, item in enumerate(items)
                }
                while pending:
                    ready, _ = self._ray.wait(list(pending), num_returns=1)
                    for ref in ready:
                        done(pending.pop(ref), self._ray.get(ref))
            elif self._pool is not None and len(items) > 1:
                futures = {self._pool.submit(_forked_call, item): i for i, item in enumerate(items)}
                while futures:
                    finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        done(futures.pop(fut), fut.result())
            else:
                for i, item in enumerate(items):
                    prog.update(task, description=f"{title}: {markup(describe(item))}")
                    done(i, self.fn(self.context, item))
        return results
