"""`python -m dlc ...` is `dlc ...`."""
from compiler.cli import run

run()
