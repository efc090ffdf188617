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

sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))

# dlc's disk caches (parsed modules, `dlc check` answers) go to a folder of this test session,
# never the user's ~/.cache/dlc; subprocesses that run the CLI inherit it.
os.environ["DLC_CACHE_DIR"] = tempfile.mkdtemp(prefix="dlc-test-cache-")
atexit.register(shutil.rmtree, os.environ["DLC_CACHE_DIR"], True)


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", help="rewrite golden files from current output")
    parser.addoption("--update-diagnostics", action="store_true",
                     help="rewrite the expected diagnostics (# E: ...) of tests/diagnostics/*.dl from what dlc says")
