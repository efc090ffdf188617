"""Shared test set-up.

torchvision's compiled ops do not load against the CPU build of torch, but its
model code runs once its meta-registrations module is stubbed out.  transformers
imports torchvision when it is installed, so the stub goes in before either.
"""
import sys
import types

sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", help="rewrite golden files from current output")
    parser.addoption("--update-diagnostics", action="store_true",
                     help="rewrite the expected diagnostics (# E: ...) of tests/diagnostics/*.dl from what dlc says")
