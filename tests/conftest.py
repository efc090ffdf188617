"""Shared test set-up.

torchvision's compiled ops do not load against the CPU build of torch, but its
model code runs once its meta-registrations module is stubbed out.  transformers
imports torchvision when it is installed, so the stub goes in before either.
"""
import atexit
import os
import shutil
import sys
import tempfile
import types

from tests.fast_lane import (add_options, pytest_cmdline_main, pytest_collection_finish,  # noqa: F401 (hooks)
                             pytest_collection_modifyitems, pytest_configure, pytest_sessionfinish,
                             pytest_testnodedown)

# One intra-op thread per test process, unless the caller chose otherwise.  The tests' tensors are
# small, and two OpenMP threads on a 2-core machine that is also running another pytest worker
# (pytest -n 2) or anything else spin against each other: measured on this machine's EPYC under
# load, a MobileNet-sized forward took 20x longer with 2 threads than with 1.  Set before torch
# is imported (no plugin that loads before this file imports it); subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:                       # imported anyway (a plugin, `python -c`): tell it directly
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def _exit_without_finalizing() -> None:
    """An xdist worker's last act: flush and leave, without tearing its heap down module by module
    (torch, transformers, thousands of test objects: 2-3 s per worker in which the controller waits
    for it, measured).  Registered first, so it runs after every other exit handler registered
    from here on (the cache folder's removal below); the results were sent before exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if "PYTEST_XDIST_WORKER" in os.environ:
    atexit.register(_exit_without_finalizing)

sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))

# dlc's disk caches (parsed modules, `dlc check` answers) go to a folder of this test session,
# never the user's ~/.cache/dlc; subprocesses that run the CLI inherit it.
os.environ["DLC_CACHE_DIR"] = tempfile.mkdtemp(prefix="dlc-test-cache-")
atexit.register(shutil.rmtree, os.environ["DLC_CACHE_DIR"], True)


def pytest_addoption(parser):
    add_options(parser)
    parser.addoption("--update-goldens", action="store_true", help="rewrite golden files from current output")
    parser.addoption("--update-diagnostics", action="store_true",
                     help="rewrite the expected diagnostics (# E: ...) of tests/diagnostics/*.dl from what dlc says")
