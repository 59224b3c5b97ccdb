"""Every op's symbolic shape rule agrees with the shape its NumPy reference produces.

The table names at least one expression per op; a new op without a row here fails
``test_every_op_has_a_row``.
"""

import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from graphc.ir import OPS, toposort
from graphc.ir import make
from graphc.ir.op import ELEMWISE, LEAF
from graphc.opdefs import fused
from graphc.opdefs.infer_shape import output_shape

RNG = np.random.default_rng(3)
A = gt.dmatrix("A")
B = gt.dmatrix("B")
V = gt.dvector("V")
I = gt.lvector("I")  # noqa: E741
S = gt.lscalar("S")
X4 = gt.dtensor4("X4")
W4 = gt.dtensor4("W4")
VALUES = {A: RNG.standard_normal((4, 3)), B: RNG.standard_normal((1, 3)), V: RNG.standard_normal(3),
          I: np.array([2, 0, 1, 1]), S: np.array(2), X4: RNG.standard_normal((2, 4, 7, 6)),
          W4: RNG.standard_normal((6, 2, 3, 2))}


def _every_elemwise():
    """One node per elementwise op, on inputs of a dtype it accepts, broadcasting (4, 3) with (1, 3)."""
    out = []
    for op in OPS.values():
        if op.kind != ELEMWISE or op.props.get("fused"):  # fused ops have a row of their own
            continue
        if op.name == "cast":
            out.append(gt.cast(A, "int32"))
            continue
        if op.name == "where":
            out.append(gt.where(A > 0, A, B))
            continue
        nin = op.props["nin"]
        accepts = op.props["accepts"]
        dtype = "float64" if "float64" in accepts else ("int64" if "int64" in accepts else accepts[0])
        args = [gt.cast(A, dtype), gt.cast(B, dtype), gt.cast(B, dtype)][:nin]
        out.append(make(op, args))
    return out


def _cases():
    """(label, expression) pairs; builders are looked up lazily so missing ones fail one case."""
    return {
        "every elemwise": _every_elemwise,
        "elemwise": lambda: [A + B, gt.exp(A), gt.where(A > 0, A, B), gt.clip(A, -1.0, 1.0), gt.cast(A, "float32"),
                             A - B, A * V, A / B, A // B, A % 2.0, A ** 2, -A, abs(A), gt.sign(A),
                             gt.maximum(A, B), A > B, (A > 0) & (B > 0), gt.isnan(A)],
        "reduce": lambda: [A.sum(0), A.prod(1, keepdims=True), A.max(), A.min(0), A.argmax(1), A.argmin(0),
                           gt.any(A > 0, 1), gt.all(A > 0), gt.sum_to(A, B), gt.logsumexp(A, 1),
                           gt.logsumexp(A, keepdims=True)],
        "shape": lambda: [A.shape, gt.shape_i(A, 1), A.T, A.reshape((-1,)), A.reshape((S, -1)),
                          gt.broadcast_to(V, (A.shape[0], 3)), gt.make_vector([S, S + 1]),
                          gt.expand_dims(A, 1), gt.squeeze(B, 0)],
        "alloc": lambda: [gt.zeros((S, 3)), gt.ones_like(A), gt.alloc(V, 2, 3)],
        "gradient markers": lambda: [gt.stop_gradient(A), gt.zero_grad(A), gt.grad_clip(A, -1, 1)],
        "linalg": lambda: [gt.matmul(A, A.T), gt.dot(V, V), gt.gemm(A, A, trans_a=True),
                           gt.gemm(B, A, trans_b=True), gt.gemm(V, A, trans_b=True)],
        "indexing": lambda: [A[1:], A[::-1, S], A[I], A[A > 0], gt.set_subtensor(A[1:], 0.0),
                             gt.inc_subtensor(A[I], 1.0), gt.inc_subtensor(A[1:], 1.0),
                             gt.set_subtensor(A[I], 0.0), gc.grad(gt.set_subtensor(A[I], V).sum(), V)],
        "joins": lambda: [gt.concatenate([A, B]), gt.stack([V, V]), gt.arange(S), gt.eye(S, 3),
                          *gt.split(A, [1, 3]), gc.grad(gt.split(A, [1, 3])[0].sum(), A)],
        "sorting": lambda: [gt.sort(A), gt.argsort(A, 0), gt.cumsum(A, 1), gt.cumprod(A),
                            gc.grad((gt.sort(A) * A).sum(), A)],
        "fused": lambda: [fused.fused_elemwise(gt.exp(A) * B - V, [A, B, V.dimshuffle("x", 0)]),
                          fused.fused_reduce(gt.sum(A * B + 1.0, 0, keepdims=True), [A, B]),
                          fused.fused_reduce(gt.argmax(gt.exp(A) - B, 1), [A, B])],
        "random": _random_draws,
        "scan": _scans,
        "nnet": lambda: [gt.nnet.softmax(A), gt.nnet.log_softmax(A, axis=0), gt.nnet.one_hot(I, S + 1),
                          gt.nnet.one_hot(I, 3, "float64"), gt.nnet.crossentropy_softmax(A, I),
                          gt.nnet.crossentropy_softmax(B, I)],
        "conv": lambda: [*gc.grad((gt.nnet.conv2d(X4, W4, num_groups=2) ** 2).sum(), [X4, W4]),
                         gt.nnet.conv2d(X4, W4[:4, :1], border_mode="full", subsample=(2, 3),
                                        filter_dilation=(1, 2), num_groups=4),
                         gt.nnet.conv2d(X4, W4, border_mode="half", num_groups=2),
                         gt.nnet.conv2d_transpose(X4[:, :, :3], W4[:4], (S * 3, 11), border_mode=1,
                                                  subsample=2)],
        "pool": lambda: [gt.nnet.pool_2d(X4, (2, 2)), gt.nnet.pool_2d(A, (3, 2), False, (1, 1)),
                         gt.nnet.pool_2d(X4, (3, 2), stride=(2, 1), pad=(1, 1), mode="sum"),
                         gc.grad(gt.nnet.pool_2d(X4, (2, 3), False, mode="average_exc_pad").sum(),
                                 X4),
                         gc.grad((gc.grad((gt.nnet.pool_2d(X4, (2, 2)) ** 2).sum(), X4) ** 2).sum(),
                                 X4)],
    }


def _scans():
    from graphc.scan.op import SCAN_GRAD_PIECE

    states, _ = gc.scan(lambda row, acc: acc + row, sequences=A, outputs_info=V)
    mapped, _ = gc.map(lambda row: row * S, sequences=A[:, :2])
    last, _ = gc.reduce(lambda row, acc: acc * row, sequences=A, outputs_info=V)
    loop, _ = gc.scan(lambda p: (p * 2, gc.until(p.sum() > 50)), outputs_info=V, n_steps=S + 9)
    return [states, mapped, last, loop, *gc.grad((loop ** 2).sum() + (states * A).sum(), [A, V]),
            make(SCAN_GRAD_PIECE, (A,), (0, "new"))]


def _random_draws():
    import graphc.random

    srng = graphc.random.RandomStream(0)
    return [srng.uniform(size=(S, 3)), srng.normal(size=A.shape), srng.integers(I, 9, size=(2, 4)),
            srng.binomial(size=(S, 2), p=0.5), srng.choice(4, size=(S,), p=[0.25] * 4),
            srng.permutation(S), graphc.random.advance_state(srng.states[0])]


@pytest.mark.parametrize("family", sorted(_cases()))
def test_shape_rules_match_reference(family):
    exprs = _cases()[family]()
    nodes = [n for e in exprs for n in toposort([e]) if not n.is_leaf]
    shapes = [gt.make_vector([gt.as_tensor(s) if not isinstance(s, int) else s for s in output_shape(n)], "int64")
              if n.ndim else gt.make_vector([], "int64") for n in nodes]
    inputs = list(VALUES)
    f = gc.function(inputs, [*nodes, *shapes], on_unused_input="ignore", mode="reference")
    out = f(*VALUES.values())
    for node, value, shape in zip(nodes, out[: len(nodes)], out[len(nodes):]):
        assert tuple(shape) == value.shape, f"{node.op.name}: shape rule {tuple(shape)} != {value.shape}"


def test_every_op_has_a_row():
    covered = set()
    for family, build in _cases().items():
        try:
            exprs = build()
        except AttributeError:
            continue
        covered |= {n.op.name for e in exprs for n in toposort([e])}
    missing = sorted(name for name, op in OPS.items() if op.kind != LEAF and name not in covered)
    assert not missing, f"ops without a shape-rule test row: {missing}"
