"""Rendering DOT text with Graphviz: through the `graphviz` package when it is installed
(`pip install dlc[graph]`), else by running the `dot` program directly."""
from __future__ import annotations

import html
import shutil
import subprocess

DOT_MISSING = ("Graphviz's `dot` program is not installed, so the graph cannot be rendered as {fmt}. "
               "Install it (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
               "conda: conda install graphviz), or write the DOT text with --format dot.")


class RenderError(Exception):
    """Rendering failed; the message says why and what to do."""


def render(dot_text: str, fmt: str) -> bytes:
    """`dot_text` as svg, png or html (the SVG inside a page of its own)."""
    if fmt == "dot":
        return dot_text.encode()
    if fmt == "html":
        return _page(render(dot_text, "svg").decode())
    if shutil.which("dot") is None:
        raise RenderError(DOT_MISSING.format(fmt=fmt))
    try:
        import graphviz
    except ImportError:
        return _run_dot(dot_text, fmt)
    try:
        return graphviz.Source(dot_text).pipe(format=fmt)
    except graphviz.ExecutableNotFound as exc:
        raise RenderError(DOT_MISSING.format(fmt=fmt)) from exc
    except graphviz.CalledProcessError as exc:
        raise RenderError(f"dot failed: {exc.stderr.decode(errors='replace').strip()}") from exc


def _run_dot(dot_text: str, fmt: str) -> bytes:
    result = subprocess.run(["dot", f"-T{fmt}"], input=dot_text.encode(), capture_output=True, check=False,
                            timeout=300)
    if result.returncode:
        raise RenderError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def _page(svg: str) -> bytes:
    start = svg.find("<svg")
    title = "dlc graph"
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>\n"
            "<style>body{margin:0;font-family:Helvetica,sans-serif} svg{max-width:100%;height:auto}</style>\n"
            f"</head><body>\n{svg[start:]}\n</body></html>\n").encode()
