"""IR -> Python source: build the module model, then render it with jinja2."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # jinja2 and the module model load with generate(): `dlc check` needs only codegen.names
    import jinja2

    from compiler.ir import Program


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        undefined=jinja2.StrictUndefined, autoescape=False,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def generate(program: Program, version: str, notes: list[str] | None = None, options: str = "",
             path: Callable[[str], str] = str, standalone: bool = False) -> str:
    """Render a typed, optimized program as one Python module; `notes` collects what --explain
    reports about the classes, `options` is the header's record of -O and -D, `path` writes the
    spec paths comments show (relative to the project, so output is the same from anywhere);
    `standalone` copies the runtime helpers into the module instead of importing them from
    dlc_runtime (codegen/runtime_module.py)."""
    from compiler.codegen.model import build_file_model
    model = build_file_model(program, notes, options, path, standalone)
    text = _environment().get_template("module.py.j2").render(file=model, version=version)
    return text.rstrip("\n") + "\n"
