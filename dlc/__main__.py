"""`python -m dlc ...` is `dlc ...`."""
import sys

from compiler.cli import main

sys.exit(main())
