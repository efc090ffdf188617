"""Shape checking of a `scan`: the step block is checked once, as every block is, and at the
call site on one position of the sequence and the carried states' initial types; each state it
returns must have the type it was given, since the loop feeds it back (DLC080)."""
from __future__ import annotations

from compiler.diagnostics import Note
from compiler.diagnostics.codes import BAD_SCAN, SCAN_CARRY_CHANGES
from compiler.elaborate.loader import in_stdlib
from compiler.ir import Graph, Node
from compiler.ir.types import TensorType, is_float, is_int, shapes_equal


class ScanInference:
    """The scan rules of shapes._GraphInference (which provides _fail and _call_block)."""

    def _infer_scan(self, node: Node, ins) -> list[TensorType]:
        """The step block is checked once, on one position of the sequence and the carried
        states' initial types; each state it returns must have the type it was given, since the
        loop feeds it back.  Results: the first output stacked along the axis, the last states."""
        spec, callee = node.scan, self.program.graphs[node.op]
        sequence, axis = ins[0], node.scan.axis
        if axis >= sequence.rank:
            self._fail(node, BAD_SCAN, f"scan(axis={axis}) steps over a dimension its sequence does not have: "
                       f"it is {sequence.shape_str()}", 0, ins, hint=f"the axes of a rank-{sequence.rank} "
                       f"sequence are 0 to {sequence.rank - 1}; batch-first sequences step over axis=1")
        step = TensorType(sequence.shape[:axis] + sequence.shape[axis + 1:], sequence.dtype)
        outs = self._call_block(node, callee, [step, *ins[1:]], " (one step)")
        for i in range(spec.carries):
            self._check_carry(node, callee, i, ins, outs[1 + i])
        first = outs[0]
        if first.rank < axis:
            self._fail(node, BAD_SCAN, f"`{callee.block}`'s first output {first.shape_str()} has no axis {axis} "
                       f"to stack its steps along", None, ins)
        shape = first.shape[:axis] + (sequence.shape[axis],) + first.shape[axis:]
        return [TensorType(shape, first.dtype, first.optional), *outs[1:]]

    def _check_carry(self, node: Node, callee: Graph, i: int, ins, returned: TensorType) -> None:
        given, out = ins[1 + i], callee.outputs[1 + i]
        port = callee.node(callee.inputs[1 + i])
        if shapes_equal(given.shape, returned.shape) and _same_dtype(given.dtype, returned.dtype):
            return
        what = "dtype" if shapes_equal(given.shape, returned.shape) else "shape"
        returned_text, given_text = (f"{t.shape_str()} {t.dtype}" for t in (returned, given))
        message = (f"scan: `{callee.block}` returns the carried state `{out.name}` as {returned_text}, but it "
                   f"carries into input `{port.outputs[0]}`, given as {given_text}: the state changes {what} "
                   f"across the step")
        hint = (f"return `{out.name}` as {given_text} (the type `{port.outputs[0]}` starts with), or return it "
                f"first if it is a per-step output, not a state")
        notes = (Note(port.span, f"carried into `{port.outputs[0]}`, declared here"),)
        at = node.span if in_stdlib(out.span) else out.span
        if at != node.span:
            notes += (Note(node.span, "stepped by this scan"),)
        self._fail(node, SCAN_CARRY_CHANGES, message, 1 + i, ins, hint, notes, at)


def _same_dtype(a: str, b: str) -> bool:
    """Equal dtypes, where `float` (the default float type) is any float."""
    if a == b:
        return True
    if a == "float" or b == "float":
        return is_float(a) and is_float(b)
    return is_int(a) and is_int(b) and a == b
