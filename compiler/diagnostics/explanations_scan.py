"""`dlc explain` texts of the recurrence codes (DLC080-DLC081)."""
from __future__ import annotations

SCAN_EXPLANATIONS: dict[str, str] = {
    "DLC080": """\
A `scan` applies its step block at every position of a sequence and feeds the
step's outputs after the first back into its next inputs (the carried state).
The loop runs the same code at every step, so a carried state must leave the step
with the shape and dtype it came in with:

    block Step(d: int, hidden: int) {
        in x: [B, d]
        in h: [B, hidden]
        h_next = GRUCell(d, 2 * hidden)(x)      # [B, 2 * hidden]
        out y = h_next
        out h_out = h_next                      # carried into `h`: [B, hidden] expected
    }
    ys, h_T = scan(axis=1) Step(d, hidden)(xs, h0)   # error: `h` changes type

Fix: make the step return the state in the type it takes (here GRUCell(d, hidden)),
or, if the value is not meant to be carried, return it first (the per-step output)
and fewer states after it.""",

    "DLC081": """\
A `scan` is written `outputs, state... = scan(axis=A) Step(config)(xs, init..., other...)`:
the step must be a block; its first input is one position of `xs` (the axis removed),
and each output after its first is a carried state, started from the `init` tensor
passed in the same input position.  Inputs after the carried ones reach every step
unchanged (an encoder's memory, a mask).  The result is the step's first output at
every position, stacked along `axis`, and the carried states after the last step.

    ys, h_T = scan(axis=1) DecoderStep(d, hidden)(targets, h0, memory)

The header takes `axis` (a compile-time int, default 1: batch-first) and `reverse`
(true: from the last position to the first; the outputs stay in the sequence's order).

Fix: scan a block (a bare op such as GRUCell goes inside a small step block), pass
the sequence first and an initial state for every carried output, and choose an axis
the sequence has.""",
}
