"""The gradient of scan: backpropagation through time, as another scan running backwards
over the states the forward scan stored (Theano's approach).

At forward step ``t`` the inner graph maps (sequence rows, state taps, non-sequences) to new
state values. Going back from the last step, the backward scan's step ``t``

- takes the stored values the forward step read (its sequence rows and state taps) and the
  value it wrote, as sequences read in reverse, so the forward step is not recomputed where
  the gradient only needs its result (``tanh``'s gradient reads ``tanh(x)``);
- adds the gradient arriving at the state value written at step ``t`` from the cost (the
  outputs' gradients) and from later steps that read it through a tap (kept in a window of
  ``m`` pending gradients per state, ``m`` its largest tap distance);
- pulls that through the inner graph (``graphc.autodiff.backpropagate``), giving the
  gradients of the sequence rows (stacked: a map output), of the taps (into the window) and
  of the non-sequences (summed in an accumulator).

After the first step the window holds the gradients of the initial values.
``truncate_gradient=k`` runs only the last ``k`` steps back: earlier sequence rows get zero
gradient, initial values get zero gradient unless the scan ran at most ``k`` steps, and the
non-sequences get the sum over the last ``k`` steps.
"""

from __future__ import annotations

from ..ir.node import Node, make, new_input, substitute
from ..ir.op import get_op
from ..ir.types import is_float
from ..opdefs.infer_shape import MissingShapeRule, output_shape
from ..rewrite.shapes import same_size
from .accumulate import TimeSums
from .build import make_scan
from .hoist import shape_only_likes
from .op import SCAN, SCAN_GRAD_PIECE, ScanInfo, scan_output


def _gt():
    import graphc.tensor as gt

    return gt


def _add(total, term):
    return term if total is None else total + term


def gradient_pieces(g: Node) -> dict:
    """``{(state, part): gradient}`` from the sum of ``scan_grad_piece`` nodes that the
    autodiff loop accumulated for a scan node."""
    add = get_op("add")
    pieces: dict = {}
    stack = [g]
    while stack:
        node = stack.pop()
        if node.op is add:
            stack.extend(node.src)
        elif node.op is SCAN_GRAD_PIECE:
            pieces[node.arg] = _add(pieces.get(node.arg), node.src[0])
        else:
            raise NotImplementedError(f"scan: a gradient reaches the scan node through {node.op.name}, "
                                      "not through its outputs")
    return pieces


def scan_grad(node: Node, g: Node) -> tuple:
    info: ScanInfo = node.arg
    pieces = gradient_pieces(g)
    fwd = node
    if not all(info.history):
        # a carry keeps no history, which the backward steps read: recompute with history
        fwd = make(SCAN, node.src, info.replace(history=(True,) * info.n_states))
    return _Backward(fwd, pieces).gradients()


class _Backward:
    """Builds the backward scan of the forward scan node ``fwd`` and the input gradients."""

    def __init__(self, fwd: Node, pieces: dict):
        gt = _gt()
        self.fwd, self.info, self.gt = fwd, fwd.arg, gt
        info = self.info
        self.steps = scan_output(fwd, -1, "steps") if info.until else fwd.src[0]
        self.n_back = self.steps if info.truncate < 0 else gt.minimum(self.steps, info.truncate)
        self.start = self.steps - self.n_back if info.truncate >= 0 else 0
        self.step_grads, self.init_grads = {}, {}
        for j in range(info.n_states):
            if is_float(info.state_type(j).dtype):
                own = {part: g for (index, part), g in pieces.items() if index == j}
                self.step_grads[j], self.init_grads[j] = self._state_grads(j, own)

    def _state_grads(self, j: int, own: dict):
        """The gradient arriving at each written row of state ``j`` (T rows) and at its
        initial rows (m rows), from the gradients of its outputs."""
        m = self.info.mintap(j)
        step = init = None
        for part, g in own.items():
            if part == "last":
                full = scan_output(self.fwd, j, "full" if m else "new")
                g, part = self.gt.set_subtensor(self.gt.zeros_like(full)[-1], g), "full"
            if part == "full" and m:
                step, init = _add(step, g[m:]), _add(init, g[:m])
            else:
                step = _add(step, g)
        return step, init

    def _rows(self, x: Node, offset: int) -> Node:
        """Rows ``offset + t`` of ``x`` for the backward steps, last step first."""
        lo = self.start + offset if offset else self.start
        return x[lo:self.steps + offset if offset else self.steps][::-1]

    def gradients(self) -> tuple:
        info, fwd = self.info, self.fwd
        seqs, inits, nonseqs = info.split(fwd.src[1:])
        seq_src, seq_leaves = [], []

        def sequence(outer: Node, leaf: Node) -> None:
            seq_src.append(outer)
            seq_leaves.append(leaf)

        for outer, leaf in zip(seqs, info.seq_inputs):
            sequence(self._rows(outer, 0), leaf)
        full = {}
        for j in info.tap_states:
            m = info.mintap(j)
            full[j] = scan_output(fwd, j, "full")
            for k, leaf in zip(info.taps[j], info.state_inputs(j)):
                sequence(self._rows(full[j], m + k), leaf)
        seeds, stored = {}, {}
        for j, step in self.step_grads.items():
            out = info.outputs[j]
            m = info.mintap(j)
            rows = full.get(j)
            if rows is None:
                rows = scan_output(fwd, j, "new")
            if not out.is_leaf:  # the backward step reads the stored value instead of recomputing it
                stored[out] = new_input(out.type, out.name)
                sequence(self._rows(rows, m), stored[out])
            if step is not None:
                leaf = new_input(out.type, "grad_step")
                sequence(self._rows(step, 0), leaf)
                seeds[out] = _add(seeds.get(out), leaf)
        windows = {}
        for j in info.tap_states:
            if j in self.step_grads:
                typ = info.state_type(j)
                windows[j] = [new_input(typ, f"pending{i}") for i in range(info.mintap(j))]
                seeds[info.outputs[j]] = _add(seeds.get(info.outputs[j]), windows[j][-1])
        if not seeds:
            return (None,) * len(fwd.src)
        wrt = [x for x in info.inputs if is_float(x.dtype)]
        from ..autodiff import backpropagate

        grads = backpropagate(seeds, wrt)
        return self._assemble(grads, stored, windows, seq_src, seq_leaves, seqs, inits, nonseqs)

    def _assemble(self, grads, stored, windows, seq_src, seq_leaves, seqs, inits, nonseqs) -> tuple:
        info, gt = self.info, self.gt
        outputs, leaves, buffers, taps, history = [], [], [], [], []
        for j, pending in windows.items():
            tap_grads = dict(zip(info.taps[j], info.state_inputs(j)))
            m = info.mintap(j)
            init = inits[info.tap_states.index(j)]
            for i, leaf in enumerate(pending):
                tap = tap_grads.get(i - m)
                g = grads.get(tap) if tap is not None else None
                previous = pending[i - 1] if i else None
                if previous is None:
                    new = g if g is not None else gt.zeros_like(leaf)
                else:
                    new = previous if g is None else previous + g
                outputs.append(new)
                leaves.append(leaf)
                buffers.append(gt.zeros_like(init[:1]))
                taps.append((-1,))
                history.append(False)
        float_nonseqs = [i for i, x in enumerate(info.nonseq_inputs) if grads.get(x) is not None]
        sums = self._time_sums(grads, stored, float_nonseqs, seq_src, seq_leaves, leaves)
        float_nonseqs = [i for i in float_nonseqs if i not in sums.found]
        for i in float_nonseqs:
            outer, inner = nonseqs[i], info.nonseq_inputs[i]
            leaf = new_input(inner.type, "accumulated")
            outputs.append(leaf + grads[inner])
            leaves.append(leaf)
            buffers.append(gt.expand_dims(gt.zeros_like(outer), 0))
            taps.append((-1,))
            history.append(False)
        float_seqs = [i for i, x in enumerate(info.seq_inputs) if grads.get(x) is not None]
        for i in float_seqs:
            outputs.append(grads[info.seq_inputs[i]])
            taps.append(())
            history.append(True)
        for value in sums.stored:
            outputs.append(value)
            taps.append(())
            history.append(True)
        if stored:
            outputs = substitute(outputs, stored)
        outputs = shape_only_likes(outputs)
        back = make_scan(self.n_back, seq_src, seq_leaves, buffers, leaves, taps, history, outputs,
                         name=f"grad_of_{info.name or 'scan'}", nonseqs=nonseqs,
                         nonseq_leaves=info.nonseq_inputs)
        return self._input_grads(back, windows, float_nonseqs, float_seqs, seqs, inits, nonseqs, sums)

    def _time_sums(self, grads, stored, float_nonseqs, seq_src, seq_leaves, tap_leaves):
        """The sums after the loop of the gradients of non-sequences where ``TimeSums`` can
        build them (``.found``: index -> sum; ``.stored``: the values the loop stores)."""
        sums = TimeSums(dict(zip(seq_leaves, seq_src)), list(seq_leaves) + list(tap_leaves))
        for i in float_nonseqs:
            term = shape_only_likes(substitute([grads[self.info.nonseq_inputs[i]]], stored))[0]
            total = sums.time_sum(term)
            if total is not None:
                sums.found[i] = total
        return sums

    def _covers(self, seq: Node) -> bool:
        """Whether the backward steps provably read every row of ``seq`` (no truncation, and
        the scan runs as many steps as ``seq`` has rows): its gradient is then the rows."""
        if self.info.truncate >= 0 or self.info.until:
            return False
        try:
            return same_size(output_shape(seq)[0], self.steps)
        except MissingShapeRule:
            return False

    def _input_grads(self, back, windows, float_nonseqs, float_seqs, seqs, inits, nonseqs,
                     sums) -> tuple:
        info, gt = self.info, self.gt
        state = 0
        init_grads = {}
        for j in windows:
            m = info.mintap(j)
            finals = [scan_output(back, state + i, "last") for i in range(m)]
            state += m
            total = gt.stack(finals)
            if info.truncate >= 0:
                total = gt.where(gt.ge(self.n_back, self.steps), total, gt.zeros_like(total))
            if self.init_grads.get(j) is not None:
                total = total + self.init_grads[j]
            init = inits[info.tap_states.index(j)]
            if init.type.shape[0] != m:
                total = gt.set_subtensor(gt.zeros_like(init)[:m], total)
            init_grads[j] = total
        nonseq_grads = {}
        for i in float_nonseqs:
            nonseq_grads[i] = scan_output(back, state, "last")
            state += 1
        seq_grads = {}
        for i in float_seqs:
            rows = scan_output(back, state, "new")[::-1]
            state += 1
            seq = seqs[i]
            if self._covers(seq):
                seq_grads[i] = rows
            else:
                seq_grads[i] = gt.set_subtensor(gt.zeros_like(seq)[self.start:self.steps], rows)
        if sums.found:
            stacks = {leaf: scan_output(back, state + k, "new")
                      for k, leaf in enumerate(sums.stored.values())}
            stacks.update(zip(info.nonseq_inputs, nonseqs))
            totals = substitute(list(sums.found.values()), stacks)
            nonseq_grads.update(zip(sums.found, totals))
        out = [None]
        out += [seq_grads.get(i) for i in range(len(seqs))]
        out += [init_grads.get(j) for j in info.tap_states]
        out += [nonseq_grads.get(i) for i in range(len(nonseqs))]
        return tuple(out)
