"""Independent jobs shared among forked worker processes: `dlc check` of many specs.

The specs of one `dlc check` are checked independently of each other, so they can be checked
side by side.  The workers are forks of this process, made after it imported the compiler (a
child starts with every module loaded, in a millisecond, where a fresh interpreter would import
for a fifth of a second), and they take items from one queue, a pipe holding the items' numbers,
so a slow spec (VGG's eight variants) does not hold back the items behind it.  Each child sends
its results back pickled, through a pipe of its own; the results come back in the items' order.

What one item gives does not depend on which process ran it (the compiler keeps no state from
one spec to the next that changes an answer), with one exception handled here: an item that
raised, or that a worker did not finish (it died, its results did not arrive), is run again in
this process, in order, so its exception is the one a sequential run raises at that item.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_RECORD_SIZE = 4                  # one item's number in the queue, little-endian
_PIPE_CAPACITY = 65536            # Linux's default; the whole queue is written before any worker reads
_NOT_DONE = object()


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as a CI container limits it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_jobs(items: int) -> int:
    """How many processes `items` jobs are shared among when the user does not say: one per
    available CPU, never more than the items; one where forking is not safe (a platform without
    fork or where it is not the default, or a process that runs other threads, which a fork
    would leave holding their locks: a test runner, an editor's language server), and one when
    the machine has no idle CPU (a second process then only competes for the same one, and
    costs its share of duplicated work: the modules both parse, the pages both touch)."""
    threading = sys.modules.get("threading")      # not imported: no thread was started through it
    if sys.platform != "linux" or not hasattr(os, "fork") or (threading and threading.active_count() > 1):
        return 1
    cpus = available_cpus()
    try:
        if os.getloadavg()[0] > cpus - 0.5:
            return 1
    except OSError:       # no load figure: one CPU each all the same
        pass
    return max(1, min(cpus, items))


def map_in_workers(function: Callable[[T], R], items: Sequence[T], jobs: int) -> list[R]:
    """`[function(item) for item in items]`, computed by `jobs` processes: this one and
    `jobs - 1` forked children.  `function`'s results must pickle.  An item that raised or
    was not finished by a child is run again here, in order (see the module's docstring)."""
    jobs = min(jobs, len(items))
    if len(items) > _PIPE_CAPACITY // _RECORD_SIZE:       # a queue this long would not fit in the pipe
        jobs = 1
    if jobs <= 1 or not hasattr(os, "fork"):
        return [function(item) for item in items]
    queue_out, queue_in = os.pipe()
    os.write(queue_in, b"".join(i.to_bytes(_RECORD_SIZE, "little") for i in range(len(items))))
    os.close(queue_in)           # readers see the end of the queue once it is empty
    children: list[tuple[int, int]] = []       # (pid, read end of its results pipe)
    try:
        for _ in range(jobs - 1):
            children.append(_fork_worker(function, items, queue_out))
        results: list = [_NOT_DONE] * len(items)
        for i, result in _work(function, items, queue_out):
            results[i] = result
        while children:
            for i, result in _collect(*children.pop(0)):
                results[i] = result
    finally:
        os.close(queue_out)
        for pid, pipe in children:       # only after an exception here: do not leave them behind
            os.close(pipe)
            os.waitpid(pid, 0)
    # in order: an item that failed raises here, as it would have in a sequential run
    return [function(item) if result is _NOT_DONE else result for item, result in zip(items, results)]


def _fork_worker(function: Callable, items: Sequence, queue: int) -> tuple[int, int]:
    results_out, results_in = os.pipe()
    pid = os.fork()
    if pid == 0:                          # the child: work, send, and leave without unwinding
        status = 1
        try:
            import pickle
            os.close(results_out)
            payload = pickle.dumps(list(_work(function, items, queue)), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(results_in, "wb") as pipe:
                pipe.write(payload)
            status = 0
        finally:
            os._exit(status)        # never return into the caller's code, nor run its exit handlers
    os.close(results_in)
    return pid, results_out


def _work(function: Callable, items: Sequence, queue: int) -> list[tuple[int, object]]:
    """Take items from the queue until it is empty; (number, result) for each that succeeded."""
    done = []
    while True:
        record = os.read(queue, _RECORD_SIZE)     # a pipe read this small is atomic: one whole record
        if len(record) < _RECORD_SIZE:
            return done
        i = int.from_bytes(record, "little")
        try:
            done.append((i, function(items[i])))
        except Exception:     # left for the parent to run again, in order, and raise itself
            continue


def _collect(pid: int, pipe: int) -> list[tuple[int, object]]:
    """A child's results, once it has finished; none if it died or sent something unreadable."""
    with os.fdopen(pipe, "rb") as reader:
        payload = reader.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return []
    import pickle
    try:
        return pickle.loads(payload)
    except Exception:  # a truncated or foreign payload: those items are run again here
        return []
