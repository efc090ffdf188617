"""`dlc lsp`: a language server for .dl files (diagnostics as you type, hover, go to definition,
completion, formatting).  The answers live in `analysis`, free of any protocol; `server` speaks
LSP through pygls, an optional dependency (`pip install 'dlc[lsp]'`)."""
from __future__ import annotations

import sys


def serve() -> int:
    """Run the server on standard input and output until the client exits; the exit status."""
    try:
        from compiler.lsp.server import create_server
    except ImportError as exc:
        print(f"dlc lsp: error: the language server needs pygls and lsprotocol ({exc.name} is missing); "
              "install them with: pip install 'dlc[lsp]'", file=sys.stderr)
        return 2
    create_server().start_io()
    return 0
