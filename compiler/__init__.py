"""dlc: a compiler from declarative block-graph specs to PyTorch source."""

__version__ = "0.1.0"
