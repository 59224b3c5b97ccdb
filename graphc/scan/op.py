"""The scan op: a loop whose body is an ordinary graphc graph (the *inner graph*).

A scan node is ``scan(n_steps, *sequences, *initial_buffers, *non_sequences)`` with a
``ScanInfo`` as its ``arg``. The loop runs the inner graph once per step:

- a **sequence** gives its row ``t`` at step ``t`` (sequence taps are cut outside the op, so
  every sequence the op sees has tap 0);
- a **state** with taps ``(-2, -1)`` reads the values it had 2 and 1 steps before; its
  initial buffer holds the first ``m = 2`` values (``m = -min(taps)``) and the op stores
  every new value after them (*history*), or keeps only the latest (a *carry*: shared
  variable updates, gradient accumulators);
- a state without taps is a **map output**: one value per step, never read back;
- **non-sequences** are the same at every step;
- an optional boolean scalar, the inner graph's last output, stops the loop (``until``).

Nodes have one output, so the scan node's value is one *packed* buffer holding every state's
rows after a small int64 header, and ``scan_output`` nodes are views into it (``part``:
``"new"`` the rows computed by the loop, ``"full"`` with the initial rows, ``"last"`` the
final value, ``"steps"`` how many steps ran). The packed buffer is typed float64 so that
gradients reach the scan node: each ``scan_output`` sends its gradient as a symbolic
``scan_grad_piece`` and the scan's gradient rule reads the pieces back from the sum the
autodiff loop built (``graphc.scan.grad``); the pieces are never computed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ir.node import Node, make
from ..ir.op import OTHER, defop
from ..ir.types import TensorType, is_int, shape_str

PACKED_TYPE = TensorType("float64", (None,))
PARTS = ("new", "full", "last", "steps")
# region kinds in the packed header
MAP, HISTORY, CARRY = 0, 1, 2
_ALIGN = 64
_RECORD = 4  # offset, initial rows m, kind, ndim of the region; then the region's dims


class ScanInfo:
    """What a scan node computes, apart from its inputs: the inner graph and the loop layout.

    ``inputs`` are the inner graph's leaves in this order: one per sequence, one per tap of
    each state that has taps (in ``taps`` order), one per non-sequence. ``outputs`` has one
    node per state, then the ``until`` condition if there is one. ``taps[j]`` is a sorted
    tuple of negative ints (``()`` for a map output); ``history[j]`` is False for a carry.
    ``backend`` says how the inner graph runs (None: as built, on the reference interpreter;
    ``"reference"``/``"cpu"``: rewritten by a compiled function's mode).
    """

    __slots__ = ("inputs", "outputs", "n_seqs", "taps", "history", "n_nonseqs", "until", "name",
                 "truncate", "backend", "exclude", "variants", "_key", "_hash", "_program",
                 "_native")

    def __init__(self, inputs, outputs, n_seqs, taps, history, n_nonseqs, until=False, name=None,
                 truncate=-1, backend=None, exclude=()):
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        self.n_seqs, self.n_nonseqs = int(n_seqs), int(n_nonseqs)
        self.taps = tuple(tuple(int(k) for k in t) for t in taps)
        self.history = tuple(bool(h) for h in history)
        self.until, self.name, self.truncate, self.backend = bool(until), name, int(truncate), backend
        self.exclude = tuple(sorted(exclude))  # the rewrites the compiling mode left out
        self._key = (self.inputs, self.outputs, self.n_seqs, self.taps, self.history, self.n_nonseqs,
                     self.until, self.name, self.truncate, self.backend, self.exclude)
        self._hash = hash(self._key)
        self._program = self._native = None
        self.variants: dict = {}  # leaf shapes -> this scan rewritten for them (scan.specialize)
        self._check()

    def _check(self) -> None:
        n_tap_inputs = sum(len(t) for t in self.taps)
        if len(self.inputs) != self.n_seqs + n_tap_inputs + self.n_nonseqs:
            raise ValueError("scan: the inner inputs do not match the loop layout")
        if len(self.outputs) != len(self.taps) + self.until or len(self.history) != len(self.taps):
            raise ValueError("scan: the inner outputs do not match the loop layout")
        for taps, hist in zip(self.taps, self.history):
            if any(k >= 0 for k in taps) or list(taps) != sorted(set(taps)):
                raise ValueError(f"scan: state taps must be distinct negative ints, got {taps}")
            if not hist and taps != (-1,):
                raise ValueError("scan: a state without history must have the single tap -1")

    # --- value semantics (hashable, comparable, serialisable) ---------------------------
    def __eq__(self, other) -> bool:
        return isinstance(other, ScanInfo) and self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"ScanInfo({self.label()})"

    def label(self) -> str:
        kinds = [("map" if not t else "taps" + str(list(t)) + ("" if h else " carry"))
                 for t, h in zip(self.taps, self.history)]
        return (f"{self.name or 'scan'}: {self.n_seqs} seq, states {kinds}, "
                f"{self.n_nonseqs} non-seq" + (", until" if self.until else ""))

    def _fields(self) -> tuple:
        return self._key

    def __graphc_encode__(self, encode_node) -> str:
        from ..ir.serialize import encode_value

        return encode_value(self._fields(), encode_node)

    @classmethod
    def __graphc_decode__(cls, payload: str, decode_node) -> "ScanInfo":
        from ..ir.serialize import decode_value

        return cls(*decode_value(payload, decode_node))

    def replace(self, **changes) -> "ScanInfo":
        fields = dict(zip(("inputs", "outputs", "n_seqs", "taps", "history", "n_nonseqs", "until",
                           "name", "truncate", "backend", "exclude"), self._fields()))
        fields.update(changes)
        return ScanInfo(**fields)

    # --- layout ---------------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        return len(self.taps)

    def mintap(self, j: int) -> int:
        """m: how many initial rows state ``j`` needs (0 for a map output)."""
        return -self.taps[j][0] if self.taps[j] else 0

    @property
    def tap_states(self) -> list[int]:
        """The states that have taps (and an initial buffer among the op's inputs)."""
        return [j for j, t in enumerate(self.taps) if t]

    def state_inputs(self, j: int) -> list[Node]:
        """The inner leaves holding state ``j``'s taps."""
        start = self.n_seqs + sum(len(self.taps[i]) for i in range(j))
        return list(self.inputs[start:start + len(self.taps[j])])

    @property
    def seq_inputs(self) -> list[Node]:
        return list(self.inputs[:self.n_seqs])

    @property
    def nonseq_inputs(self) -> list[Node]:
        return list(self.inputs[len(self.inputs) - self.n_nonseqs:])

    def init_position(self, j: int) -> int:
        """Position of state ``j``'s initial buffer in the scan node's inputs."""
        return 1 + self.n_seqs + self.tap_states.index(j)

    def state_type(self, j: int) -> TensorType:
        """The type of one value of state ``j``."""
        if self.taps[j]:
            return self.state_inputs(j)[0].type
        return self.outputs[j].type

    def split(self, values: Sequence) -> tuple[list, list, list]:
        """The op's inputs (after n_steps) as (sequences, initial buffers, non-sequences)."""
        n_init = len(self.tap_states)
        return (list(values[:self.n_seqs]), list(values[self.n_seqs:self.n_seqs + n_init]),
                list(values[self.n_seqs + n_init:]))

    # --- running --------------------------------------------------------------------------
    def runner(self):
        """The inner graph as a callable ``list of arrays -> list of arrays`` (built once)."""
        if self._program is None:
            if self.backend == "cpu":
                from ..runtime.cpu import CpuProgram

                self._program = CpuProgram(self.inputs, self.outputs, inplace=True)
            else:
                from ..runtime.reference import Program

                self._program = Program(self.inputs, self.outputs)
        return self._program.run

    def native_plan(self):
        """A new ``graphc.scan.native.StepPlan`` for one call, or None when the steps run on
        the Python loop (not the compiled CPU backend, or no BLAS to call)."""
        if self.backend != "cpu":
            return None
        from .native import StepPlan, supported

        self.runner()
        if self._native is None:
            self._native = supported(self._program)
        return StepPlan(self, self._program) if self._native else None


# --- the scan op -----------------------------------------------------------------------------

def _scan_infer(in_types, info: ScanInfo):
    if not isinstance(info, ScanInfo):
        raise TypeError("scan: the arg must be a ScanInfo")
    n_steps, values = in_types[0], in_types[1:]
    if n_steps.ndim != 0 or not is_int(n_steps.dtype):
        raise TypeError(f"n_steps must be an integer scalar, got {n_steps}")
    seqs, inits, nonseqs = info.split(values)
    if len(seqs) + len(inits) + len(nonseqs) != len(values) or len(nonseqs) != info.n_nonseqs:
        raise ValueError("the inputs do not match the loop layout")
    for i, (outer, inner) in enumerate(zip(seqs, info.seq_inputs)):
        _check_outer(f"sequence {i}", outer, inner.type, leading=True)
    for j, outer in zip(info.tap_states, inits):
        _check_outer(f"initial value of output {j}", outer, info.state_type(j), leading=True)
    for i, (outer, inner) in enumerate(zip(nonseqs, info.nonseq_inputs)):
        _check_outer(f"non-sequence {i}", outer, inner.type, leading=False)
    return PACKED_TYPE


def _check_outer(what: str, outer: TensorType, inner: TensorType, leading: bool) -> None:
    shape = outer.shape[1:] if leading else outer.shape
    if outer.dtype != inner.dtype or len(shape) != inner.ndim:
        expect = f"{inner.dtype} with {inner.ndim + leading} dims" if leading else str(inner)
        raise TypeError(f"{what} has type {outer}, the inner graph expects {expect}")
    if any(a is not None and b is not None and a != b for a, b in zip(shape, inner.shape)):
        raise ValueError(f"{what} of static shape {shape_str(outer.shape)} contradicts the inner "
                         f"graph's {inner}")


def _scan_ref(info: ScanInfo, n_steps, *values):
    from .loop import run_scan

    return run_scan(info, n_steps, values)


def _scan_grad(node, g):
    from .grad import scan_grad

    return scan_grad(node, g)


def _scan_label(node: Node) -> str:
    return f"scan{{{node.arg.label()}}}"


def _rewrite_inner(node: Node, mode):
    """The scan node with its inner graph rewritten by ``mode``'s phases (None if done)."""
    from .loop import rewrite_inner

    return rewrite_inner(node, mode)


def _packed_shape(node, in_shapes):
    from ..opdefs.common import shape_entry

    return (shape_entry(node, 0),)  # the packed size depends on the values (map shapes, until)


SCAN = defop("scan", OTHER, _scan_infer, ref=_scan_ref, grad=_scan_grad, shape=_packed_shape,
             props=dict(no_fold=True, label=_scan_label, rewrite_inner=_rewrite_inner))


# --- views into the packed result ------------------------------------------------------------

def _output_infer(in_types, arg):
    _, part, typ = arg
    if in_types[0] != PACKED_TYPE or part not in PARTS:
        raise TypeError("scan_output reads a scan node's packed result")
    return typ


def _output_ref(arg, packed):
    from .loop import read_output

    return read_output(packed, arg[0], arg[1], arg[2].dtype)


def _output_grad(node, g):
    index, part, _ = node.arg
    return (make(SCAN_GRAD_PIECE, (g,), (index, part)),)


def _output_shape(node, in_shapes):
    from .loop import output_shape

    return output_shape(node)


SCAN_OUTPUT = defop("scan_output", OTHER, _output_infer, ref=_output_ref, grad=_output_grad,
                    shape=_output_shape, props=dict(no_fold=True))


def _piece_ref(arg, g):
    # the scan's gradient rule reads the piece's input symbolically; computed, it is that
    # gradient flattened
    return np.asarray(g, np.float64).reshape(-1)


def _piece_shape(node, in_shapes):
    size = 1
    for entry in in_shapes[0]:
        size = size * entry
    return (size,)


SCAN_GRAD_PIECE = defop("scan_grad_piece", OTHER, lambda types, arg: PACKED_TYPE, ref=_piece_ref,
                        shape=_piece_shape, differentiable=False, props=dict(no_fold=True))


def output_type(info: ScanInfo, j: int, part: str, static_steps) -> TensorType:
    """The type of ``scan_output`` ``part`` of state ``j``; ``static_steps`` the step count
    if it is static (and the loop has no ``until``), else None."""
    if part == "steps":
        return TensorType("int64", ())
    state = info.state_type(j)
    if part == "last":
        return state
    if part == "full" and not info.history[j]:
        raise ValueError("scan_output: a carry keeps no history")
    rows = static_steps
    if part == "full" and rows is not None:
        rows += info.mintap(j)
    return TensorType(state.dtype, (rows,) + state.shape)


def scan_output(scan_node: Node, j: int, part: str = "new") -> Node:
    """A view of state ``j`` of ``scan_node`` (see the module docstring for ``part``)."""
    from ..opdefs.shape import _static_int

    info = scan_node.arg
    steps = None if info.until else _static_int(scan_node.src[0])
    typ = output_type(info, j, part, steps)
    return make(SCAN_OUTPUT, (scan_node,), (int(j) if part != "steps" else -1, part, typ))
