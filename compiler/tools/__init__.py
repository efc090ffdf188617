"""Tools that read a checked program and report on it: `dlc summary`, `dlc graph`, AST dumps.

They come after the driver in the pipeline (they call `compiler.driver.check`) and before the CLI,
which only parses arguments and calls them.
"""
