"""``scan`` and its helpers as Theano users know them: from a Python step function to a scan
node and views of its outputs.

``scan`` calls the step function once, on placeholder inputs, to build the inner graph; then
``make_scan`` closes that graph: every value the step reads from outside (shared variables,
inputs of the outer function, expressions of them) becomes an implicit non-sequence computed
once outside the loop, and a shared variable the step updates becomes a carried state.
"""

from __future__ import annotations

from typing import Sequence

from ..ir.node import CONSTANT, Node, SharedVariable, graph_inputs, make, new_input, substitute, toposort
from ..ir.provenance import provenance, user_trace
from ..ir.types import TensorType, is_int, shape_str
from ..opdefs.common import as_tensor
from .hoist import push_out_sequences
from .op import SCAN, ScanInfo, scan_output


def _gt():
    import graphc.tensor as gt

    return gt


class Until:
    """A step's stop condition: ``return h, graphc.until(gt.gt(h, 10))``."""

    __slots__ = ("condition",)

    def __init__(self, condition):
        condition = as_tensor(condition)
        if condition.ndim != 0:
            raise TypeError(f"until: the condition must be a scalar, got {condition.type}")
        self.condition = condition if condition.dtype == "bool" else _gt().neq(condition, 0)


def until(condition) -> Until:
    """Stop the scan after the step where ``condition`` (a scalar) is true."""
    return Until(condition)


class ScanError(ValueError):
    """A scan that cannot be built (bad arguments or a step function that does not fit them)."""


def _error(message: str, trace, exc=ScanError):
    return exc(f"scan: {message}" + (f"\n  scan called at {trace}" if trace is not None else ""))


# --- arguments -------------------------------------------------------------------------------

def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _sequence_slices(sequences, go_backwards: bool, trace) -> list[Node]:
    """Each (sequence, tap) as a plain sequence: row t of the slice is the tap at step t."""
    out = []
    for entry in _as_list(sequences):
        if isinstance(entry, dict):
            if "input" not in entry:
                raise _error("a sequence given as a dict needs the key 'input'", trace)
            seq, taps = as_tensor(entry["input"]), list(entry.get("taps", [0]) or [0])
        else:
            seq, taps = as_tensor(entry), [0]
        if seq.ndim < 1:
            raise _error(f"a sequence must have at least one dimension, got {seq.type}", trace, TypeError)
        if go_backwards:
            seq = seq[::-1]
        low, high = min(min(taps), 0), max(max(taps), 0)
        for k in taps:
            start, end = k - low, k - high
            out.append(seq[start:end if end else None] if start or end else seq)
    return out


def _states(outputs_info, trace) -> list[tuple]:
    """(initial buffer or None, taps) per output; a single tap -1 takes the state itself."""
    states = []
    for entry in outputs_info:
        if isinstance(entry, dict):
            init = entry.get("initial")
            taps = entry.get("taps", [-1]) if init is not None else []
        else:
            init, taps = entry, ([-1] if entry is not None else [])
        if init is None:
            states.append((None, ()))
            continue
        init = as_tensor(init)
        taps = tuple(sorted({int(k) for k in taps}))
        if not taps or any(k >= 0 for k in taps):
            raise _error(f"output taps must be negative, got {list(taps)}", trace)
        if taps == (-1,) and not (isinstance(entry, dict) and entry.get("buffer")):
            buffer = _gt().expand_dims(init, 0)
        else:
            if init.ndim < 1:
                raise _error(f"the initial value for taps {list(taps)} needs a leading axis of "
                             f"{-taps[0]} rows, got {init.type}", trace, TypeError)
            if init.type.shape[0] is not None and init.type.shape[0] < -taps[0]:
                raise _error(f"the initial value has {init.type.shape[0]} rows, taps {list(taps)} "
                             f"need {-taps[0]}", trace)
            buffer = init
        states.append((buffer, taps))
    return states


def _n_steps(n_steps, slices: list[Node], trace) -> Node:
    gt = _gt()
    if n_steps is None:
        if not slices:
            raise _error("give sequences or n_steps: the number of steps is unknown", trace)
        lengths = [s.shape[0] for s in slices]
        total = lengths[0]
        for length in lengths[1:]:
            total = gt.minimum(total, length)
        return total
    steps = as_tensor(n_steps)
    if steps.ndim != 0 or not is_int(steps.dtype):
        raise _error(f"n_steps must be an integer scalar, got {steps.type}", trace, TypeError)
    if steps.op is CONSTANT and int(steps.arg.value) < 0:
        raise _error(f"n_steps is {int(steps.arg.value)}: a scan cannot run a negative number "
                     "of steps", trace)
    return gt.cast(steps, "int64") if steps.dtype != "int64" else steps


# --- the step function's result --------------------------------------------------------------

def _is_update_pairs(item) -> bool:
    return (isinstance(item, (list, tuple)) and len(item) > 0 and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], SharedVariable) for p in item))


def parse_step_result(result, trace) -> tuple[list, dict, Node | None]:
    """(outputs, updates, until condition) from what a step function returned."""
    outputs, updates, condition = [], {}, None
    items = list(result) if isinstance(result, tuple) else [result]
    if isinstance(result, list) and not _is_update_pairs(result):
        items = [result]
    for item in items:
        if isinstance(item, Until):
            condition = item.condition
        elif isinstance(item, dict):
            updates.update(item)
        elif _is_update_pairs(item):
            updates.update(dict(item))
        elif isinstance(item, (list, tuple)):
            outputs.extend(item)
        elif item is not None:
            outputs.append(item)
    for var in updates:
        if not isinstance(var, SharedVariable):
            raise _error(f"an update's key must be a shared variable, got {var!r}", trace, TypeError)
    return [as_tensor(o) for o in outputs], updates, condition


def _check_state(j: int, out: Node, state: TensorType, trace) -> None:
    if out.dtype != state.dtype or out.ndim != state.ndim:
        raise _error(f"output {j} of the step function has type {out.type}, but its outputs_info "
                     f"(initial value) gives {state}; they must have the same dtype and ndim "
                     f"(cast one, e.g. .astype('{state.dtype}'))"
                     + (f"\n  output created at {out.trace}" if out.trace else ""), trace, TypeError)
    if any(a is not None and b is not None and a != b for a, b in zip(out.type.shape, state.shape)):
        raise _error(f"output {j} of the step function has static shape {shape_str(out.type.shape)}, "
                     f"its initial value {shape_str(state.shape)}", trace)


# --- scan ------------------------------------------------------------------------------------

def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None, go_backwards=False,
         name=None, strict=False, truncate_gradient=-1, mode=None, return_list=False):
    """Loop ``fn`` over ``sequences``; returns ``(outputs, updates)`` like Theano's scan.

    ``fn`` gets, in order, the taps of each sequence, the taps of each output that has an
    initial value in ``outputs_info`` and the ``non_sequences``; it returns the new outputs, and
    may add a dict of shared-variable updates and a ``graphc.until(condition)``. Outputs are
    stacked along a new axis 0 (steps); ``updates`` maps each updated shared variable to its
    value after the last step (pass it to ``graphc.function(..., updates=...)``).
    ``mode`` is accepted for Theano compatibility: the compiled function's mode is used.
    """
    trace = user_trace()
    truncate_gradient = int(truncate_gradient)
    if truncate_gradient == 0 or truncate_gradient < -1:
        raise _error(f"truncate_gradient must be -1 (full) or positive, got {truncate_gradient}", trace)
    slices = _sequence_slices(sequences, go_backwards, trace)
    info_list = outputs_info if isinstance(outputs_info, (list, tuple)) else _as_list(outputs_info)
    states = _states(info_list, trace)
    steps = _n_steps(n_steps, slices, trace)
    non_sequences = [as_tensor(x) if not isinstance(x, Node) else x for x in _as_list(non_sequences)]
    seq_leaves = [new_input(TensorType(s.dtype, s.type.shape[1:]), _leaf_name(s, "_t")) for s in slices]
    tap_leaves = [[new_input(TensorType(b.dtype, b.type.shape[1:]), f"{_leaf_name(b, '')}[t{k}]")
                   for k in taps] for b, taps in states if b is not None]
    args = seq_leaves + [leaf for leaves in tap_leaves for leaf in leaves] + non_sequences
    outputs, updates, condition = parse_step_result(fn(*args), trace)
    _add_default_updates(updates, outputs + ([condition] if condition is not None else []))
    if outputs_info is None:
        states = [(None, ())] * len(outputs)
    if len(outputs) != len(states):
        raise _error(f"the step function returned {len(outputs)} outputs, but outputs_info has "
                     f"{len(states)} entries", trace)
    buffers, taps, history = [], [], []
    leaves_iter = iter(tap_leaves)
    for j, ((buffer, state_taps), out) in enumerate(zip(states, outputs)):
        if buffer is not None:
            _check_state(j, out, next(leaves_iter)[0].type, trace)
            buffers.append(buffer)
        taps.append(state_taps)
        history.append(True)
    tap_inputs = [leaf for leaves in tap_leaves for leaf in leaves]
    outputs, condition, values, updated = _carry_updates(updates, outputs, condition, trace)
    outputs = outputs + values
    for var, leaf in updated:
        buffers.append(_gt().expand_dims(var, 0))
        tap_inputs.append(leaf)
        taps.append((-1,))
        history.append(False)
    inner_outputs = outputs + ([condition] if condition is not None else [])
    with provenance(trace):
        node = make_scan(steps, slices, seq_leaves, buffers, tap_inputs, taps, history, inner_outputs,
                         until=condition is not None, name=name, truncate=truncate_gradient,
                         strict=strict, declared=non_sequences, trace=trace)
    n_user = len(states)
    results = [scan_output(node, j, "new") for j in range(n_user)]
    new_updates = {var: scan_output(node, n_user + i, "last") for i, (var, _) in enumerate(updated)}
    if name:
        for j, out in enumerate(results):
            out.name = name if n_user == 1 else f"{name}[{j}]"
    if not return_list and len(results) == 1:
        return results[0], new_updates
    return results, new_updates


def _leaf_name(node: Node, suffix: str) -> str | None:
    return f"{node.name}{suffix}" if node.name else None


def _add_default_updates(updates: dict, outputs: list) -> None:
    """Shared variables the step reads that have a ``default_update`` (random states) and no
    update from the step get that update at every step, as Theano's scan does."""
    for node in toposort(outputs + list(updates.values())):
        if isinstance(node, SharedVariable) and node not in updates:
            default = getattr(node, "default_update", None)
            if default is not None:
                updates[node] = default


def _carry_updates(updates: dict, outputs: list, condition, trace):
    """Shared variables the step updates become carried states: each is replaced in the inner
    graph by a leaf holding its value at the start of the step. Returns the outputs, the
    condition, the update values and the (variable, leaf) pairs."""
    pairs = []
    for var, value in updates.items():
        value = as_tensor(value)
        if value.dtype != var.dtype or value.ndim != var.ndim:
            raise _error(f"the update of {var.name or 'a shared variable'} has type {value.type}, the "
                         f"variable is {var.type}", trace, TypeError)
        pairs.append((var, value))
    if not pairs:
        return outputs, condition, [], []
    leaves = {var: new_input(var.type, var.name) for var, _ in pairs}
    extra = [condition] if condition is not None else []
    everything = substitute(outputs + extra + [v for _, v in pairs], leaves)
    n = len(outputs)
    condition = everything[n] if condition is not None else None
    return everything[:n], condition, everything[n + len(extra):], [(var, leaves[var]) for var, _ in pairs]


# --- closing the inner graph -----------------------------------------------------------------

def _lift(outputs: Sequence[Node], declared: set) -> list[Node]:
    """The outer values the inner graph reads: maximal subgraphs that depend on no declared
    inner input and are not made of constants only."""
    inner, constant_only, outer = set(declared), set(), set()
    order = toposort(outputs)
    for node in order:
        if node in inner:
            continue
        if node.op is CONSTANT:
            constant_only.add(node)
        elif node.is_leaf:
            outer.add(node)
        elif any(s in inner for s in node.src):
            inner.add(node)
        elif all(s in constant_only for s in node.src):
            constant_only.add(node)
        else:
            outer.add(node)
    needed = [n for n in outputs if n in outer]
    for node in order:
        if node in inner:
            needed.extend(s for s in node.src if s in outer)
    return list(dict.fromkeys(needed))


def make_scan(steps: Node, seqs: list, seq_leaves: list, buffers: list, tap_leaves: list,
              taps: list, history: list, outputs: list, until=False, name=None, truncate=-1,
              nonseqs: Sequence[Node] = (), nonseq_leaves: Sequence[Node] = (), strict=False,
              declared=(), trace=None) -> Node:
    """The scan node of an inner graph (``outputs`` over ``seq_leaves``, ``tap_leaves`` and
    ``nonseq_leaves``), its other outer values lifted into non-sequences. Sequences and
    non-sequences the graph does not read are dropped."""
    fixed = set(seq_leaves) | set(tap_leaves) | set(nonseq_leaves)
    lifted = _lift(outputs, fixed)
    if strict:
        known = list(declared) + list(nonseqs)
        allowed = {id(n) for n in known + graph_inputs(known)}
        stray = [n for n in graph_inputs(lifted) if n.op is not CONSTANT and id(n) not in allowed]
        if stray:
            names = ", ".join(str(n.name or n.type) for n in stray)
            raise _error(f"strict=True: the step function reads {names}, which is not among the "
                         "non_sequences", trace)
    lifted_leaves = [new_input(n.type, n.name) for n in lifted]
    if lifted:
        outputs = substitute(outputs, dict(zip(lifted, lifted_leaves)))
    invariant = dict(zip(list(nonseq_leaves) + lifted_leaves, list(nonseqs) + lifted))
    outputs, pushed_leaves, pushed = push_out_sequences(outputs, list(seq_leaves), list(seqs), invariant)
    seq_leaves, seqs = list(seq_leaves) + pushed_leaves, list(seqs) + pushed
    used = {id(n) for n in toposort(outputs)}
    keep_seq = [i for i, leaf in enumerate(seq_leaves) if id(leaf) in used]
    nonseq_pairs = [(o, leaf) for o, leaf in zip(list(nonseqs) + lifted, list(nonseq_leaves) + lifted_leaves)
                    if id(leaf) in used]
    info = ScanInfo([seq_leaves[i] for i in keep_seq] + list(tap_leaves) + [leaf for _, leaf in nonseq_pairs],
                    outputs, len(keep_seq), taps, history, len(nonseq_pairs), until=until, name=name,
                    truncate=truncate)
    src = [steps] + [seqs[i] for i in keep_seq] + list(buffers) + [o for o, _ in nonseq_pairs]
    try:
        return make(SCAN, src, info)
    except (TypeError, ValueError) as exc:
        raise type(exc)(str(exc)) from None


# --- the helpers -----------------------------------------------------------------------------

def map(fn, sequences, non_sequences=None, truncate_gradient=-1, go_backwards=False, mode=None, name=None):
    """``fn`` applied to each row of ``sequences``: ``(outputs, updates)``."""
    return scan(fn, sequences=sequences, outputs_info=None, non_sequences=non_sequences,
                truncate_gradient=truncate_gradient, go_backwards=go_backwards, mode=mode, name=name)


def reduce(fn, sequences, outputs_info, non_sequences=None, go_backwards=False, mode=None, name=None):
    """Fold ``fn`` over ``sequences`` from ``outputs_info``: the final values, and the updates."""
    outputs, updates = scan(fn, sequences=sequences, outputs_info=outputs_info,
                            non_sequences=non_sequences, go_backwards=go_backwards, mode=mode,
                            name=name, return_list=True)
    finals = [_last(o) for o in outputs]
    return (finals[0] if len(finals) == 1 else finals), updates


def _last(output: Node) -> Node:
    """The final value of a scan output (a state's last value; its initial one after 0 steps)."""
    return scan_output(output.src[0], output.arg[0], "last")


def foldl(fn, sequences, outputs_info, non_sequences=None, mode=None, name=None):
    """``reduce`` from the first row to the last."""
    return reduce(fn, sequences, outputs_info, non_sequences, go_backwards=False, mode=mode, name=name)


def foldr(fn, sequences, outputs_info, non_sequences=None, mode=None, name=None):
    """``reduce`` from the last row to the first."""
    return reduce(fn, sequences, outputs_info, non_sequences, go_backwards=True, mode=mode, name=name)
