"""Running a scan: the step loop writing into one preallocated packed buffer, the views
``scan_output`` takes of it, and the rewriting of the inner graph for a compiled function.

The packed buffer (float64, so that gradients reach the scan node; its bytes hold every
dtype) starts with an int64 header::

    [steps run, record position of state 0, ..., record position of state n-1,
     records: offset in bytes, initial rows m, kind (MAP, HISTORY, CARRY), ndim, dims...]

then one 64-byte aligned region per state: ``(m + T,) + state shape`` for a state with
history (its initial rows first), ``(T,) + value shape`` for a map output, ``(2,) + state
shape`` for a carry (two slots used in turn, so a step never overwrites what it reads).
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, make
from ..ir.provenance import provenance
from ..opdefs.common import shape_entry
from ..runtime.reference import RunError
from .op import _ALIGN, _RECORD, CARRY, HISTORY, MAP, SCAN, ScanInfo
from .specialize import leaf_shapes, specialized


def run_scan(info: ScanInfo, n_steps, values) -> np.ndarray:
    """The scan's packed result for ``n_steps`` and the op's other input values."""
    steps = int(n_steps)
    if steps < 0:
        raise ValueError(f"n_steps is {steps}: a scan cannot run a negative number of steps")
    seqs, inits, nonseqs = info.split(values)
    for i, seq in enumerate(seqs):
        if seq.shape[0] < steps:
            raise ValueError(f"sequence {i} has {seq.shape[0]} entries, fewer than the {steps} "
                             "steps asked for (n_steps)")
    init_of = dict(zip(info.tap_states, inits))
    for j, init in init_of.items():
        if init.shape[0] < info.mintap(j):
            raise ValueError(f"the initial value of output {j} has {init.shape[0]} rows; its taps "
                             f"{list(info.taps[j])} need {info.mintap(j)}")
    if info.backend == "cpu":
        info = specialized(info, leaf_shapes(info, seqs, inits, nonseqs))
    run = info.runner()
    plan, first = _native_first_step(info, seqs, init_of, nonseqs, steps)
    if first is None:
        first = _first_step(info, run, seqs, init_of, nonseqs, steps)
    packed, regions = _allocate(info, init_of, first, seqs, steps)
    done = _loop(info, run, seqs, init_of, nonseqs, steps, first, regions, plan)
    packed[:1].view(np.int64)[0] = done
    return packed


def _first_args(info: ScanInfo, seqs, init_of, nonseqs, row_of_seq) -> list:
    args = [row_of_seq(s) for s in seqs]
    for j in info.tap_states:
        m = info.mintap(j)
        args.extend(init_of[j][m + k, ...] for k in info.taps[j])
    return args + list(nonseqs)


def _first_step(info, run, seqs, init_of, nonseqs, steps):
    """The outputs of step 0, or of a dry run on zeros when there are no steps (only the
    shapes of map outputs are read from it then; None when even that fails)."""
    if steps > 0:
        return _call(info, run, _first_args(info, seqs, init_of, nonseqs, lambda s: s[0, ...]), 0)
    if all(info.taps):
        return None
    try:
        with np.errstate(all="ignore"):
            return run(_first_args(info, seqs, init_of, nonseqs,
                                   lambda s: np.zeros(s.shape[1:], s.dtype)))
    except Exception:  # noqa: BLE001  (a dry run on made-up values may fail in any way)
        return None


def _native_first_step(info, seqs, init_of, nonseqs, steps):
    """``(plan, outputs of step 0)`` when the later steps can run in the native loop
    (``graphc.scan.native``), else ``(None, None)``."""
    plan = info.native_plan() if steps > 1 else None
    if plan is None:
        return None, None
    from .native import Unsupported

    try:
        return plan, plan.first_step(_first_args(info, seqs, init_of, nonseqs, lambda s: s[0, ...]))
    except (Unsupported, RunError, ValueError, TypeError):
        return None, None  # the Python loop runs step 0 again (and raises its errors)


def _call(info, run, args, step):
    try:
        return run(args)
    except RunError as exc:
        raise RunError(f"{exc}\n  in step {step} of {info.name or 'scan'}") from None


def _region_shape(info, j, init_of, first, steps) -> tuple:
    if not info.taps[j]:
        if first is not None:
            value = first[j].shape
        else:  # no step ran: the static shape, 0 where unknown
            value = tuple(d or 0 for d in info.outputs[j].type.shape)
        return (steps,) + tuple(value)
    state = init_of[j].shape[1:]
    return ((info.mintap(j) + steps) if info.history[j] else 2,) + state


def _allocate(info: ScanInfo, init_of, first, seqs, steps):
    n = info.n_states
    shapes = [_region_shape(info, j, init_of, first, steps) for j in range(n)]
    header_len = 1 + n + sum(_RECORD + len(s) for s in shapes)
    offsets, position = [], _aligned(8 * header_len)
    for j, shape in enumerate(shapes):
        offsets.append(position)
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(info.state_type(j).dtype).itemsize
        position = _aligned(position + nbytes)
    packed = np.empty(position // 8, np.float64)
    header = packed.view(np.int64)
    raw = packed.view(np.uint8)
    header[0] = 0
    record = 1 + n
    regions = []
    for j, (shape, offset) in enumerate(zip(shapes, offsets)):
        kind = MAP if not info.taps[j] else (HISTORY if info.history[j] else CARRY)
        header[1 + j] = record
        header[record:record + _RECORD] = (offset, info.mintap(j), kind, len(shape))
        header[record + _RECORD:record + _RECORD + len(shape)] = shape
        record += _RECORD + len(shape)
        dtype = np.dtype(info.state_type(j).dtype)
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        region = raw[offset:offset + size].view(dtype).reshape(shape)
        if kind == HISTORY:
            region[:info.mintap(j)] = init_of[j][:info.mintap(j)]
        elif kind == CARRY:
            region[0] = init_of[j][0]
        regions.append(region)
    return packed, regions


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _loop(info: ScanInfo, run, seqs, init_of, nonseqs, steps, outs, regions, native=None) -> int:
    """Run steps 1.. (step 0's outputs are ``outs``) writing into ``regions``, in the native
    loop ``native`` if it is given and can; the number of steps run (fewer than ``steps``
    when the until condition holds)."""
    # how each inner input is read at step t: array[t + offset], array[t & 1] (offset None,
    # a carry) or the array itself (a non-sequence, offset False)
    plan = [(s, 0) for s in seqs]
    stores = []
    for j in range(info.n_states):
        region, m = regions[j], info.mintap(j)
        if not info.taps[j]:
            stores.append((region, 0))
        elif info.history[j]:
            plan.extend((region, m + k) for k in info.taps[j])
            stores.append((region, m))
        else:
            plan.append((region, None))
            stores.append((region, None))
    plan.extend((x, False) for x in nonseqs)
    until = info.until
    t = 0
    while t < steps:
        if t:
            args = [a if off is False else (a[t & 1, ...] if off is None else a[t + off, ...])
                    for a, off in plan]
            outs = _call(info, run, args, t)
        for j, (region, off) in enumerate(stores):
            target = region[(t + 1) & 1, ...] if off is None else region[t + off, ...]
            value = outs[j]
            if value.shape != target.shape:
                raise ValueError(_shape_message(info, j, value.shape, target.shape, t))
            target[...] = value
        if until and outs[-1]:
            return t + 1
        t += 1
        if t == 1 and native is not None and steps > 1:
            done, over = _run_native(info, native, plan, stores, steps)
            if over:
                return done
            t = done  # the Python loop goes on from the step the native one left
    return steps


def _run_native(info: ScanInfo, native, plan, stores, steps) -> tuple[int, bool]:
    """Steps 1.. in the native loop: ``(steps done, whether the loop is over)``."""
    from .native import Unsupported

    rows = [(leaf, array, off or 0, off is None)
            for leaf, (array, off) in zip(info.inputs, plan) if off is not False]
    targets = [(region, 1, True) if off is None else (region, off, False) for region, off in stores]
    try:
        return native.run(rows, targets, steps, info.until)
    except Unsupported:
        return 1, False


def _shape_message(info, j, got, expected, step) -> str:
    what = "map output" if not info.taps[j] else "output"
    return (f"step {step}: the step function's {what} {j} has shape {got}, but {expected} is "
            "expected (a state keeps the shape of its initial value, a map output that of "
            "its first step)")


# --- views -----------------------------------------------------------------------------------

def read_output(packed: np.ndarray, j: int, part: str, dtype: str) -> np.ndarray:
    """The view ``scan_output(j, part)`` of a packed scan result."""
    header = packed.view(np.int64)
    steps = int(header[0])
    if part == "steps":
        return np.array(steps, np.int64)
    record = int(header[1 + j])
    offset, m, kind, ndim = (int(v) for v in header[record:record + _RECORD])
    shape = tuple(int(v) for v in header[record + _RECORD:record + _RECORD + ndim])
    dt = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    region = packed.view(np.uint8)[offset:offset + size].view(dt).reshape(shape)
    if part == "new":
        return region[m:m + steps]
    if part == "full":
        return region[:m + steps]
    if kind == CARRY:
        return region[steps & 1, ...]
    if m + steps == 0:
        raise ValueError(f"the scan ran no steps: map output {j} has no last value")
    return region[m + steps - 1, ...]


def output_shape(node: Node) -> tuple:
    """The symbolic shape of a ``scan_output`` node."""
    index, part, _ = node.arg
    if part == "steps":
        return ()
    scan = node.src[0]
    info: ScanInfo = scan.arg
    if info.taps[index]:
        init = scan.src[info.init_position(index)]
        value = tuple(shape_entry(init, 1 + d) for d in range(init.ndim - 1))
    else:
        value = tuple(shape_entry(node, d + (part != "last")) for d in range(info.state_type(index).ndim))
    if part == "last":
        return value
    if info.until:
        return (shape_entry(node, 0),) + value
    steps = scan.src[0]
    rows = steps + info.mintap(index) if part == "full" and info.mintap(index) else steps
    return (rows,) + value


# --- the inner graph of a compiled function ----------------------------------------------------

def rewrite_inner(node: Node, mode):
    """``node`` with its inner graph rewritten by ``mode`` and run by the mode's backend
    (compiled kernels for FAST_RUN), and the rewrites that fired; None when already done."""
    from ..ir.graph import FunctionGraph
    from ..rewrite.pipeline import run_pipeline

    info: ScanInfo = node.arg
    if info.backend is not None:
        return None
    fgraph = FunctionGraph(info.inputs, info.outputs)
    run_pipeline(fgraph, mode)
    backend = "cpu" if mode.name == "FAST_RUN" else "reference"
    with provenance(node.trace):
        new = make(SCAN, node.src, info.replace(outputs=tuple(fgraph.outputs), backend=backend,
                                                exclude=tuple(mode.exclude)))
    return new, list(fgraph.fired)
