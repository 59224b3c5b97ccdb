"""The steps of a compiled scan in one native loop, without the Python interpreter per node.

A scan's steps all see arrays of the same shapes: sequence rows, state taps and every value
computed from them keep their shape from step to step (``run_scan`` checks that step 0's
states have the shapes of their initial values). So after step 0, which ``first_step`` runs
node by node while it records what each node needs, steps 1.. are a fixed list of
instructions over fixed buffers:

- a **kernel** (an elementwise or reduction node) writes into its own buffer, or straight into
  the row of the state it computes; a reducing ``sum_to`` becomes a sum kernel, and an
  ``inc_subtensor`` at a fixed slice (the gradient of a slice) a copy and an add kernel;
- a **matrix product** calls the BLAS that NumPy uses (``graphc.runtime.blas``) on raw
  pointers, or is a loop in the step when it is small;
- a value that is the same at every step (it reads only non-sequences, constants or shapes:
  ``shape_i``, the ``like`` of a ``sum_to``) is computed once at step 0; a ``sum_to`` that
  sums nothing is its input;
- a **view** of a per-step value (a transpose, a slice with fixed bounds) is that value's
  pointer plus a fixed offset;
- any other node (a sort, advanced indexing, the row, pooling and random kernels) is a **call
  back** into Python, into a fixed buffer; a failing one stops the loop before its step, which
  the Python loop then runs (raising the error, or coping with a shape that changed);
- per-step inputs (sequence rows, state taps) are array objects whose data pointer moves
  over the sequences and the scan's packed result, and each state's new value is copied into
  its row there unless its kernel wrote it there.

The loop (``codegen``-style LLVM IR, ``driver_source``) reads every address and size from a
table filled per call, so its code depends only on the instruction list and is compiled once
(and cached on disk like kernels). A big kernel (which the Python loop splits over the
cores), a batched product or a layout that does not fit leaves the scan on the Python loop
(``graphc.scan.loop``): *where it can* is decided per call, at step 0.
"""

from __future__ import annotations

import ctypes
import hashlib

import numpy as np

from ..ir.node import Node, make, new_input
from ..ir.op import get_op
from ..ir.types import TensorType
from ..opdefs.indexing import numpy_index
from ..opdefs.reduce import SUM
from ..runtime.blas import TRANS, gemm_call, gemm_functions
from ..runtime.cpu import PARALLEL_MIN_SIZE, KernelStep, _broadcast, kernel_source_or_none
from ..runtime.kernels import LIBRARY
from ..runtime.reference import run_node

_DATA = 16  # offset of the data pointer in a PyArrayObject (codegen.kernel.ARRAY_FIELDS)
_BLAS_OPS = ("matmul", "gemm")
# ops whose value depends only on their inputs' shapes
_SHAPE_ONLY = ("shape_i", "shape")
# products of at most this many multiply-adds run as a loop in the step instead of a BLAS call
SMALL_PRODUCT = 4096


class Unsupported(Exception):
    """The scan's step cannot run in the native loop (it runs on the Python loop)."""


def supported(program) -> bool:
    """Whether this platform has what the loop needs for an inner graph run by ``program``
    (a CpuProgram): the BLAS, if the graph has matrix products."""
    return gemm_functions() is not None or not any(n.op.name in _BLAS_OPS
                                                   for n in program.base.order)


class StepPlan:
    """One call's native loop: built while step 0 runs, then run for steps 1.."""

    def __init__(self, info, program):
        self.info, self.program = info, program
        # entry 0: the number of steps run (written by the loop); 1: a callback failed
        self.table: list[int] = [0, 0]
        self.table_array = None
        self.instructions: list[tuple] = []
        self.keep: list = []  # objects whose addresses are in the table
        self.moving: dict[Node, np.ndarray] = {}  # per-step leaves -> their moving objects
        self.movable: set[int] = set()  # ids of kernel outputs that may write into the rows

    # --- the table ----------------------------------------------------------------------------
    def entry(self, value: int) -> int:
        self.table.append(int(value))
        return len(self.table) - 1

    def obj(self, array: np.ndarray) -> int:
        self.keep.append(array)
        return self.entry(id(array))

    # --- step 0 -------------------------------------------------------------------------------
    def first_step(self, args: list) -> list:
        """Run step 0 on ``args`` (the inner inputs' values) recording the instructions; the
        inner outputs. Raises ``Unsupported``."""
        info = self.info
        per_step = set(info.inputs[:info.n_seqs]) | {x for j in info.tap_states
                                                      for x in info.state_inputs(j)}
        values: dict[Node, np.ndarray] = {}
        static: set = set()
        seq_leaves = set(info.inputs[:info.n_seqs])
        for leaf, value in zip(info.inputs, args):
            if leaf in per_step:
                values[leaf] = self.moving[leaf] = _movable(value, leaf in seq_leaves)
            else:
                values[leaf] = value
                static.add(leaf)
        for node in self.program.base.order:
            if node in values:
                continue
            if node.is_leaf:
                if node.op.name != "constant":
                    raise Unsupported(f"leaf {node.op.name}")
                values[node] = node.arg.value
                static.add(node)
                continue
            ins = [values[s] for s in node.src]
            if node.op.name in _SHAPE_ONLY or all(s in static for s in node.src):
                values[node] = run_node(node, ins)
                static.add(node)
            else:
                values[node] = self._record(node, ins, [s in static for s in node.src])
        self.outputs = [values[o] for o in info.outputs]
        return list(self.outputs)

    def _record(self, node: Node, ins: list, fixed: list) -> np.ndarray:
        """Step 0's value of ``node`` (``fixed[i]``: input i is the same at every step),
        recording the instructions that compute it at the other steps."""
        kernel = self.program.kernels.get(node)
        if kernel is not None:
            if type(kernel) is not KernelStep:  # row, pooling, random kernels: called back
                return self._callback(node, ins, kernel(ins), kernel)
            return self._kernel(kernel, ins)
        name = node.op.name
        if name in _BLAS_OPS:
            return self._product(node, ins, fixed)
        if name == "inc_subtensor" and all(fixed[2:]):
            found = self._increment(node, ins)
            if found is not None:
                return found
        value = run_node(node, ins)
        if name == "sum_to":
            return ins[0] if value.shape == ins[0].shape else self._sum_to(node, ins, value.shape)
        if value is ins[0]:
            return value
        base = ins[0]
        if not (all(fixed[1:]) and isinstance(value, np.ndarray) and value.base is not None
                and np.may_share_memory(value, base)):
            # (a view is at a fixed offset only if its other inputs, an index, are fixed)
            return self._callback(node, ins, value)
        # a view: the same offset from its input's data at every step
        value = value.view()
        delta = value.ctypes.data - base.ctypes.data
        self.instructions.append(("view", self.obj(value), self.obj(base), self.entry(delta)))
        return value

    def _callback(self, node: Node, ins: list, value: np.ndarray, step=None) -> np.ndarray:
        """A node the loop does not run itself: it calls back into Python for it, which runs
        ``step`` (the node's own kernel step) or else its reference on the current inputs into
        a fixed buffer (a failure stops the loop)."""
        out = np.array(value, order="C")

        def compute():
            try:
                result = step(ins) if step is not None else run_node(node, ins)
                if result.shape != out.shape:
                    raise Unsupported(f"{node.op.name}: a shape that changes between steps")
                np.copyto(out, result)
            except BaseException:  # noqa: BLE001  (the Python loop redoes the step, and raises)
                self.table_array[1] = 1

        function = ctypes.CFUNCTYPE(None)(compute)
        self.keep.append(function)
        address = ctypes.cast(function, ctypes.c_void_p).value
        self.instructions.append(("call", self.entry(address)))
        return out

    def _kernel(self, kernel, ins: list, out: np.ndarray | None = None) -> np.ndarray:
        """Step 0's value of a kernel (into ``out`` if given, an elementwise one's fixed
        buffer), recording its call."""
        shape = _broadcast(kernel.node, ins)
        if out is not None:
            result = out
        elif kernel.reduce_axes is None:
            # a view of the buffer: the loop may point it at the row its value is stored in
            owner = np.empty(shape, kernel.dtype)
            self.keep.append(owner)
            out = result = owner.view()
            self.movable.add(id(out))
        else:
            axes = kernel.reduce_axes
            out = np.empty(tuple(1 if a in axes else s for a, s in enumerate(shape)), kernel.dtype)
            result = out if kernel.keepdims else out.reshape(
                tuple(s for a, s in enumerate(shape) if a not in axes))
        work = max([out.size] + [a.size for a in ins])
        if work == 0 or work >= PARALLEL_MIN_SIZE:
            raise Unsupported("empty or big kernels run on the Python loop")
        kernel.fast(*ins, out)
        rows = out.shape[0] if out.ndim else 1
        self.instructions.append(("kernel", self.entry(LIBRARY.addresses[kernel.source.name]),
                                  tuple(self.obj(a) for a in ins), self.obj(out), self.entry(rows)))
        return result

    def _increment(self, node: Node, ins: list) -> np.ndarray | None:
        """``inc_subtensor`` at a fixed basic index (the gradient of a slice): ``x`` copied
        into a buffer, then an add kernel into the slice of it; None where that does not fit
        (the node is then called back)."""
        x, y = ins[:2]
        out = np.empty(x.shape, node.dtype)
        view = out[numpy_index(node.arg, ins[2:])]
        if not (x.dtype == y.dtype == out.dtype and x.flags.c_contiguous and out.size
                and isinstance(view, np.ndarray) and view.base is out
                and np.broadcast_shapes(view.shape, y.shape) == view.shape):
            return None
        like = new_input(TensorType(view.dtype.name, tuple(1 if n == 1 else None for n in view.shape)))
        kernel = _kernel_step(make(get_op("add"), (like, node.src[1])))
        if kernel is None:
            return None
        np.copyto(out, x)
        self.instructions.append(("copy", self.obj(out), self.obj(x), self.entry(out.nbytes)))
        self._kernel(kernel, [view, y], out=view)
        return out

    def _sum_to(self, node: Node, ins: list, shape: tuple) -> np.ndarray:
        """A ``sum_to`` that reduces: a sum kernel over the axes it sums at every step."""
        x = ins[0]
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                          if n == 1 and x.shape[lead + i] != 1)
        kernel = _kernel_step(make(SUM, (node.src[0],), (axes, True)))
        if kernel is None:
            raise Unsupported("a sum_to without a kernel")
        return self._kernel(kernel, [x]).reshape(shape)

    def _product(self, node: Node, ins: list, fixed: list) -> np.ndarray:
        if any(x.ndim > 2 for x in ins):
            raise Unsupported("a batched matrix product")
        flags = node.arg if node.op.name == "gemm" else (False, False)
        out = np.array(run_node(node, ins), order="C")  # step 0's value, in its own buffer
        call = gemm_call(*ins, out, *flags)
        if call is None:  # an operand that is the same at every step can be copied once
            ins = [np.ascontiguousarray(x) if same else x for x, same in zip(ins, fixed)]
            call = gemm_call(*ins, out, *flags)
        a, b = ins
        if call is None:
            raise Unsupported("a matrix product BLAS cannot take")
        function, numbers = call
        _, trans_a, trans_b, m, n, k, lda, ldb, ldc = numbers
        if m * n * k <= SMALL_PRODUCT:  # a loop in the step beats a BLAS call's overhead
            a_steps = (1, lda) if trans_a == TRANS else (lda, 1)
            b_steps = (1, ldb) if trans_b == TRANS else (ldb, 1)
            sizes = (m, n, k, *a_steps, *b_steps, ldc)
            self.instructions.append(("small", node.dtype, self.obj(a), self.obj(b),
                                      self.obj(out), tuple(self.entry(v) for v in sizes)))
        else:
            self.instructions.append(("gemm", node.dtype, self.entry(function), self.obj(a),
                                      self.obj(b), self.obj(out),
                                      tuple(self.entry(v) for v in numbers)))
        return out

    # --- steps 1.. ------------------------------------------------------------------------------
    def run(self, plan_rows, stores, steps: int, until: bool) -> tuple[int, bool]:
        """Run steps 1..steps-1: ``plan_rows`` ``[(leaf, array, offset, carry)]`` places the
        per-step leaves, ``stores`` ``[(array, offset, carry)]`` the outputs' rows (as in
        ``loop._loop``). Returns the number of steps done and whether the loop is over; it is
        not when a call back into Python failed at a step, which then wrote nothing (the
        Python loop goes on from it: it raises the error, or runs a step whose shapes changed)."""
        moves = []
        for leaf, array, offset, carry in plan_rows:
            moves.append(self._move(self.moving[leaf], array, offset, carry))
        copies = []
        ids = [id(v) for v in self.outputs]
        for j, (array, offset, carry) in enumerate(stores):
            value = self.outputs[j]
            row = array[0, ...]
            if value.shape != row.shape or value.dtype != row.dtype or not value.flags.c_contiguous:
                raise Unsupported("an output that is not a contiguous array of its row's shape")
            if id(value) in self.movable and ids.count(id(value)) == 1:
                # the kernel computing it writes straight into the row (no copy)
                moves.append(self._move(value, array, offset, carry))
                continue
            moves.append(self._move(row, array, offset, carry))
            copies.append(("copy", self.obj(row), self.obj(value), self.entry(value.nbytes)))
        body = moves + self.instructions + copies
        if until:
            body.append(("until", self.obj(self.outputs[-1])))
        source = driver_source(body)
        table = self.table_array = np.array(self.table, np.int64)
        LIBRARY.range_call(source)(table, 1, steps)
        return int(table[0]), not table[1]

    def _move(self, moving: np.ndarray, array: np.ndarray, offset: int, carry: bool) -> tuple:
        if moving.strides != array.strides[1:]:
            raise Unsupported("a per-step value whose layout differs from its rows'")
        return ("move", self.obj(moving), self.obj(array), self.entry(array.ctypes.data),
                self.entry(array.strides[0]), self.entry(offset), bool(carry))


def _kernel_step(node: Node) -> KernelStep | None:
    """A kernel step for a node made here (not in the inner program), loaded; None without
    a kernel."""
    source = kernel_source_or_none(node)
    if source is None:
        return None
    LIBRARY.load([source])
    return KernelStep(node, source)


def _movable(value: np.ndarray, sequence_row: bool) -> np.ndarray:
    """A view object of ``value`` whose data pointer the loop may move (a view never frees its
    data): with the strides of a sequence's rows, or C-contiguous like the rows of a state."""
    return (value if sequence_row else np.asarray(value, order="C")).view()


# --- the loop as LLVM IR -------------------------------------------------------------------------

_MEMO: dict = {}


def driver_source(body: list):
    """The loop over ``body`` as a kernel ``void NAME(PyObject* table, i64 start, i64 stop)``."""
    key = repr(body)  # table indices and kinds: the addresses are in the table
    found = _MEMO.get(key)
    if found is None:
        from ..codegen.kernel import KernelSource

        text = _driver_ir(body)
        name = "d_" + hashlib.sha256(text.encode()).hexdigest()[:16]
        if len(_MEMO) > 1024:
            _MEMO.clear()
        found = _MEMO[key] = KernelSource(name, text.replace("@__driver__", "@" + name), 0,
                                          "driver", "int64")
    return found


class _Text:
    """The loop body's IR lines, fresh temporaries, and the block being written."""

    def __init__(self):
        self.lines: list[str] = []
        self.n = 0
        self.block = "loop"

    def tmp(self) -> str:
        self.n += 1
        return f"%v{self.n}"

    def emit(self, line: str) -> None:
        self.lines.append("  " + line)

    def entry(self, index: int) -> str:
        p, v = self.tmp(), self.tmp()
        self.emit(f"{p} = getelementptr i64, ptr %tab, i64 {index}")
        self.emit(f"{v} = load i64, ptr {p}")
        return v

    def object(self, index: int) -> str:
        v, q = self.entry(index), self.tmp()
        self.emit(f"{q} = inttoptr i64 {v} to ptr")
        return q

    def data_field(self, index: int) -> str:
        obj, p = self.object(index), self.tmp()
        self.emit(f"{p} = getelementptr i8, ptr {obj}, i64 {_DATA}")
        return p

    def data(self, index: int) -> str:
        p, v = self.data_field(index), self.tmp()
        self.emit(f"{v} = load ptr, ptr {p}")
        return v

    def leave_if(self, condition: str, label: str) -> None:
        """Branch to ``label`` when ``condition`` (an ``icmp ...``) holds, else go on."""
        flag = self.tmp()
        self.emit(f"{flag} = {condition}")
        go_on = f"go{self.n}"
        self.emit(f"br i1 {flag}, label %{label}, label %{go_on}")
        self.lines.append(f"{go_on}:")
        self.block = go_on


def _driver_ir(body: list) -> str:
    t = _Text()
    for ins in body:
        _EMITTERS[ins[0]](t, *ins[1:])
    steps = "\n".join(t.lines)
    return f"""declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)

define void @__driver__(ptr %table, i64 %start, i64 %stop) {{
entry:
  %tabp = getelementptr i8, ptr %table, i64 {_DATA}
  %tab = load ptr, ptr %tabp
  %errp = getelementptr i64, ptr %tab, i64 1
  %empty = icmp sge i64 %start, %stop
  br i1 %empty, label %done, label %loop
loop:
  %t = phi i64 [%start, %entry], [%next, %step_end]
{steps}
  br label %step_end
step_end:
  %next = add i64 %t, 1
  %more = icmp slt i64 %next, %stop
  br i1 %more, label %loop, label %done
done:
  store i64 %stop, ptr %tab
  ret void
stopped:
  %ran = add i64 %t, 1
  store i64 %ran, ptr %tab
  ret void
failed:
  store i64 %t, ptr %tab
  ret void
}}
"""


def _emit_move(t: _Text, moving, _array, base, stride, offset, carry) -> None:
    row = t.tmp()
    t.emit(f"{row} = add i64 %t, {t.entry(offset)}")
    if carry:
        masked = t.tmp()
        t.emit(f"{masked} = and i64 {row}, 1")
        row = masked
    bytes_, address = t.tmp(), t.tmp()
    t.emit(f"{bytes_} = mul i64 {row}, {t.entry(stride)}")
    t.emit(f"{address} = add i64 {t.entry(base)}, {bytes_}")
    pointer = t.tmp()
    t.emit(f"{pointer} = inttoptr i64 {address} to ptr")
    t.emit(f"store ptr {pointer}, ptr {t.data_field(moving)}")


def _emit_view(t: _Text, view, base, delta) -> None:
    source, moved = t.data(base), t.tmp()
    t.emit(f"{moved} = getelementptr i8, ptr {source}, i64 {t.entry(delta)}")
    t.emit(f"store ptr {moved}, ptr {t.data_field(view)}")


def _emit_kernel(t: _Text, address, ins, out, rows) -> None:
    fn = t.object(address)
    args = ", ".join(f"ptr {t.object(i)}" for i in (*ins, out))
    t.emit(f"call void {fn}({args}, i64 0, i64 {t.entry(rows)})")


def _emit_gemm(t: _Text, dtype, function, a, b, out, numbers) -> None:
    """A call of cblas ``?gemm`` (ILP64: enums i32, sizes i64), C = 1 * op(A) op(B) + 0 * C."""
    fn = t.object(function)
    pa, pb, pc = t.data(a), t.data(b), t.data(out)
    values = [t.entry(i) for i in numbers]
    enums = []
    for v in values[:3]:  # order, trans_a, trans_b
        small = t.tmp()
        t.emit(f"{small} = trunc i64 {v} to i32")
        enums.append(f"i32 {small}")
    m, n, k, lda, ldb, ldc = (f"i64 {v}" for v in values[3:])
    scalar = "float" if dtype == "float32" else "double"
    args = [*enums, m, n, k, f"{scalar} 1.0", f"ptr {pa}", lda, f"ptr {pb}", ldb, f"{scalar} 0.0",
            f"ptr {pc}", ldc]
    t.emit(f"call void {fn}({', '.join(args)})")


def _emit_small(t: _Text, dtype, a, b, out, sizes) -> None:
    """``C[i, j] = sum_p A[i, p] * B[p, j]`` as three loops, over element strides."""
    scalar = "float" if dtype == "float32" else "double"
    pa, pb, pc = t.data(a), t.data(b), t.data(out)
    m, n, k, a_row, a_col, b_row, b_col, ldc = (t.entry(i) for i in sizes)
    tag, before = f"s{t.n}", t.block
    t.emit(f"br label %{tag}_i")
    t.lines.append(f"{tag}_i:")
    t.emit(f"%{tag}_iv = phi i64 [0, %{before}], [%{tag}_inext, %{tag}_iend]")
    t.emit(f"%{tag}_ok = icmp slt i64 %{tag}_iv, {m}")
    t.emit(f"br i1 %{tag}_ok, label %{tag}_j, label %{tag}_done")
    t.lines.append(f"{tag}_j:")
    t.emit(f"%{tag}_jv = phi i64 [0, %{tag}_i], [%{tag}_jnext, %{tag}_pend]")
    t.emit(f"%{tag}_jok = icmp slt i64 %{tag}_jv, {n}")
    t.emit(f"br i1 %{tag}_jok, label %{tag}_p, label %{tag}_iend")
    t.lines.append(f"{tag}_p:")
    t.emit(f"%{tag}_pv = phi i64 [0, %{tag}_j], [%{tag}_pnext, %{tag}_pbody]")
    t.emit(f"%{tag}_acc = phi {scalar} [0.0, %{tag}_j], [%{tag}_sum, %{tag}_pbody]")
    t.emit(f"%{tag}_pok = icmp slt i64 %{tag}_pv, {k}")
    t.emit(f"br i1 %{tag}_pok, label %{tag}_pbody, label %{tag}_pend")
    t.lines.append(f"{tag}_pbody:")
    t.emit(f"%{tag}_ai = mul i64 %{tag}_iv, {a_row}")
    t.emit(f"%{tag}_ap = mul i64 %{tag}_pv, {a_col}")
    t.emit(f"%{tag}_ao = add i64 %{tag}_ai, %{tag}_ap")
    t.emit(f"%{tag}_aa = getelementptr {scalar}, ptr {pa}, i64 %{tag}_ao")
    t.emit(f"%{tag}_av = load {scalar}, ptr %{tag}_aa")
    t.emit(f"%{tag}_bp = mul i64 %{tag}_pv, {b_row}")
    t.emit(f"%{tag}_bj = mul i64 %{tag}_jv, {b_col}")
    t.emit(f"%{tag}_bo = add i64 %{tag}_bp, %{tag}_bj")
    t.emit(f"%{tag}_ba = getelementptr {scalar}, ptr {pb}, i64 %{tag}_bo")
    t.emit(f"%{tag}_bv = load {scalar}, ptr %{tag}_ba")
    t.emit(f"%{tag}_prod = fmul {scalar} %{tag}_av, %{tag}_bv")
    t.emit(f"%{tag}_sum = fadd {scalar} %{tag}_acc, %{tag}_prod")
    t.emit(f"%{tag}_pnext = add i64 %{tag}_pv, 1")
    t.emit(f"br label %{tag}_p")
    t.lines.append(f"{tag}_pend:")
    t.emit(f"%{tag}_ci = mul i64 %{tag}_iv, {ldc}")
    t.emit(f"%{tag}_co = add i64 %{tag}_ci, %{tag}_jv")
    t.emit(f"%{tag}_ca = getelementptr {scalar}, ptr {pc}, i64 %{tag}_co")
    t.emit(f"store {scalar} %{tag}_acc, ptr %{tag}_ca")
    t.emit(f"%{tag}_jnext = add i64 %{tag}_jv, 1")
    t.emit(f"br label %{tag}_j")
    t.lines.append(f"{tag}_iend:")
    t.emit(f"%{tag}_inext = add i64 %{tag}_iv, 1")
    t.emit(f"br label %{tag}_i")
    t.lines.append(f"{tag}_done:")
    t.block = f"{tag}_done"


def _emit_copy(t: _Text, dst, src, nbytes) -> None:
    t.emit(f"call void @llvm.memcpy.p0.p0.i64(ptr {t.data(dst)}, ptr {t.data(src)}, "
           f"i64 {t.entry(nbytes)}, i1 false)")


def _emit_call(t: _Text, function) -> None:
    t.emit(f"call void {t.object(function)}()")
    failed = t.tmp()
    t.emit(f"{failed} = load i64, ptr %errp")
    t.leave_if(f"icmp ne i64 {failed}, 0", "failed")


def _emit_until(t: _Text, flag) -> None:
    byte = t.tmp()
    t.emit(f"{byte} = load i8, ptr {t.data(flag)}")
    t.leave_if(f"icmp ne i8 {byte}, 0", "stopped")


_EMITTERS = {"move": _emit_move, "view": _emit_view, "kernel": _emit_kernel, "gemm": _emit_gemm,
             "small": _emit_small, "copy": _emit_copy, "call": _emit_call, "until": _emit_until}
