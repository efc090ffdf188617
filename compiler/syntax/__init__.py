"""Stage 1, syntax: the grammar (`grammar.lark`), the typed AST with spans (`ast`), the parser (`parser`)."""

# The formatter's line width: the stdlib's longest lines are 115 columns; ruff's limit for the
# Python is 120.  Here, not in formatter.py, so the command line reads it without loading lark.
DEFAULT_WIDTH = 120
