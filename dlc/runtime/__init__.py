"""Runtime code that generated modules carry: the compiler copies these files' source text into
generated files and never imports them (they import torch)."""
