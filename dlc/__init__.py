"""`dlc`, the distribution's import name: `python -m dlc` runs the command line.

The compiler itself is the `compiler` package, whose folders are the pipeline's stages."""
from compiler import __version__

__all__ = ["__version__"]
