"""The CPU backend's step for a convolution node (``conv2d``, ``conv2d_grad_input``,
``conv2d_grad_weights``): native im2col / col2im kernels (``graphc.codegen.conv_kernels``)
around BLAS products (``np.matmul``, NumPy's own BLAS).

- ``conv2d``: the columns per image ``(n, c * kh * kw, oh * ow)``, then one product per image
  and group, which lands in the output's own layout;
- ``conv2d_grad_input``: the columns per image from one product per image and group, then
  col2im sums them into the input-shaped result;
- ``conv2d_grad_weights``: the reference's columns ``(groups, c/groups * kh * kw, n * oh *
  ow)`` and one product per group over all the images.

A flipped kernel is never copied: the gather writes tap (u, v) into row (kh-1-u, kw-1-v) of
the columns (negative strides on the kernel's view of them), which is the product with the
unflipped filters; col2im reads them back the same way, and the weight gradient comes out
flipped. The products sum in another order than the reference's, the gathers and col2im's
sums are the reference's own.

The step checks the shapes with the reference's own functions (results cached by shape);
anything unusual (a shape the reference rejects, an empty array, an unexpected dtype) runs
the reference, which raises its own error or computes the result. Big gathers and col2im
are cut into ranges of the batch axis that the threads run at once, with the GIL released.
"""

from __future__ import annotations

import numpy as np

from ..opdefs import conv
from . import cpu
from .kernels import LIBRARY
from .reference import run_node

__all__ = ["ConvKernelStep"]

# below this many column cells a kernel runs on the calling thread (a cell costs ~0.5 ns;
# on a busy 2-core machine, threads cost more than they save on a small CNN's layers)
PARALLEL_MIN_SIZE = 1 << 18
# the entries before the bounds in col2im's table (``conv_kernels.TAPS_HEADER``: the paddings;
# not imported from there: a program whose kernels come from the cache never loads codegen)
TAPS_HEADER = 2


class ConvKernelStep:
    """A convolution node: gather or scatter by the kernel, products by BLAS."""

    __slots__ = ("dtype", "fast", "flip", "groups", "name", "node", "params", "plans", "ranged",
                 "source")

    def __init__(self, node, source):
        self.node, self.source = node, source
        self.fast = LIBRARY.fast_call(source)
        self.ranged = LIBRARY.range_call(source)
        self.dtype = np.dtype(node.dtype)
        self.name = node.op.name
        self.params = node.arg
        self.flip, self.groups = bool(node.arg[3]), node.arg[4]
        self.plans: dict = {}  # geometry by input shapes (None: the reference runs)

    def __call__(self, args: list, target=None) -> np.ndarray:
        a, b = args[0], args[1]
        dtype = self.dtype
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == dtype
                and b.dtype == dtype and a.ndim == 4 and b.ndim == 4):
            return run_node(self.node, args)
        if self.name == "conv2d":
            key = (a.shape, b.shape)
        else:
            size = args[2]
            if not (isinstance(size, np.ndarray) and size.dtype == np.int64
                    and size.shape == (2,)):
                return run_node(self.node, args)
            key = (a.shape, b.shape, int(size[0]), int(size[1]))
        plan = self.plans.get(key, False)
        if plan is False:
            plan = self._plan(key)
            if len(self.plans) > 256:
                self.plans.clear()
            self.plans[key] = plan
        if plan is None:
            return run_node(self.node, args)
        if self.name == "conv2d":
            return self._forward(a, b, plan)
        if self.name == "conv2d_grad_input":
            return self._grad_input(a, b, plan)
        return self._grad_weights(a, b, plan)

    # --- plans: the reference's checks, once per shape -------------------------------------

    def _plan(self, key: tuple):
        """``(x shape, w shape, g shape, pads, the kernel's table)``, or None for the
        reference."""
        arg = self.params
        try:
            if self.name == "conv2d":
                x_shape, w_shape = key
                conv._check_forward(arg, _Shaped(x_shape), _Shaped(w_shape))
                g_shape = conv._expected_out(arg, x_shape, w_shape)
            elif self.name == "conv2d_grad_input":
                g_shape, w_shape, h, wd = key
                x_shape = (g_shape[0], w_shape[1] * self.groups, h, wd)
                conv._check_channels(x_shape, w_shape, self.groups, "result")
                conv._check_run(g_shape, conv._expected_out(arg, x_shape, w_shape),
                                "output gradient")
            else:
                x_shape, g_shape, kh, kw = key
                w_shape = (g_shape[1], x_shape[1] // self.groups, kh, kw)
                conv._check_channels(x_shape, w_shape, self.groups)
                conv._check_run(g_shape, conv._expected_out(arg, x_shape, w_shape),
                                "output gradient")
        except (ValueError, TypeError, ZeroDivisionError):
            return None
        if min(x_shape + w_shape + g_shape) <= 0:  # empty: the reference's zeros
            return None
        pads = conv._pads(arg[0], w_shape[2:], arg[2])
        if self.name == "conv2d_grad_input":
            return x_shape, w_shape, g_shape, pads, self._taps(x_shape, w_shape, g_shape, pads)
        return x_shape, w_shape, g_shape, pads, self._cells(x_shape, g_shape, pads)

    def _cells(self, x_shape, g_shape, pads) -> np.ndarray:
        """im2col's table: (input row, input col) of each output cell's first tap."""
        stride = self.params[1]
        rows = np.arange(g_shape[2], dtype=np.int64) * stride[0] - pads[0]
        cols = np.arange(g_shape[3], dtype=np.int64) * stride[1] - pads[1]
        pairs = np.empty((g_shape[2], g_shape[3], 2), np.int64)
        pairs[..., 0], pairs[..., 1] = rows[:, None], cols
        return pairs.ravel()

    def _taps(self, x_shape, w_shape, g_shape, pads) -> np.ndarray:
        """col2im's table: the paddings, then for each input cell the byte offsets in a
        slab ``[n, c]`` of the kernel's column view (``_columns_view`` of a per-image buffer)
        of the columns landing on it, by tap (``graphc.codegen.conv_kernels``)."""
        (h, wd), (kh, kw), (oh, ow) = x_shape[2:], w_shape[2:], g_shape[2:]
        (sr, sc), (dr, dc) = self.params[1:3]
        u, v, i, j = np.ix_(*(np.arange(k, dtype=np.int64) for k in (kh, kw, oh, ow)))
        r, q = i * sr + u * dr - pads[0], j * sc + v * dc - pads[1]
        inside = ((r >= 0) & (r < h) & (q >= 0) & (q < wd)).ravel()
        sign = -1 if self.flip else 1  # the view's tap axes run backwards
        item = self.dtype.itemsize
        offsets = ((u * kw + v) * sign * (oh * ow) + i * ow + j) * item
        cell = np.broadcast_to(r * wd + q, offsets.shape).ravel()[inside]
        order = np.argsort(cell, kind="stable")  # entries come by tap: stable keeps that order
        counts = np.bincount(cell, minlength=h * wd)
        bounds = TAPS_HEADER + h * wd + 1 + np.concatenate([[0], np.cumsum(counts)])
        return np.concatenate([pads, bounds, offsets.ravel()[inside][order]]).astype(np.int64)

    # --- the kernels -------------------------------------------------------------------------

    def _columns_view(self, buffer: np.ndarray, x_shape, w_shape, g_shape, per_batch: bool):
        """The kernel's ``(n, c, kh, kw, oh, ow)`` view of a column buffer laid out
        ``(n, c * kh * kw, oh * ow)`` (``per_batch``) or ``(c * kh * kw, n * oh * ow)``, taps
        reversed for a flipped kernel."""
        (n, c), (kh, kw) = x_shape[:2], w_shape[2:]
        cells = g_shape[2:]
        if per_batch:
            view = buffer.reshape(n, c, kh, kw, *cells)
        else:
            view = buffer.reshape(c, kh, kw, n, *cells).transpose(3, 0, 1, 2, 4, 5)
        return view[:, :, ::-1, ::-1] if self.flip else view

    def _run(self, first: np.ndarray, cells: np.ndarray, out: np.ndarray, work: int) -> None:
        rows = out.shape[0]
        if work < PARALLEL_MIN_SIZE or rows < 2 or cpu.N_THREADS == 1:
            self.fast(first, cells, out)
            return
        n = min(cpu.N_THREADS, rows)
        bounds = [rows * i // n for i in range(n + 1)]
        pool = cpu._threads()
        futures = [pool.submit(self.ranged, first, cells, out, bounds[i], bounds[i + 1])
                   for i in range(n)]
        for future in futures:
            future.result()

    def _gather(self, x: np.ndarray, plan, per_batch: bool) -> np.ndarray:
        """im2col: ``(n, c * kh * kw, oh * ow)`` (``per_batch``) or ``(c * kh * kw, n * oh *
        ow)``."""
        x_shape, w_shape, g_shape = plan[:3]
        n, taps, cells = x_shape[0], x_shape[1] * w_shape[2] * w_shape[3], g_shape[2] * g_shape[3]
        buffer = np.empty((n, taps, cells) if per_batch else (taps, n * cells), self.dtype)
        self._run(x, plan[4], self._columns_view(buffer, x_shape, w_shape, g_shape, per_batch),
                  buffer.size)
        return buffer

    # NOTE: the forward and the input gradient are one product per image (numpy's batched
    # matmul), in the output's own layout; measured on the digits CNN's layers this beats one
    # big product and a transposing copy by 1.2-1.9x. The weight gradient sums over the
    # images: one product over columns laid out (taps, images * cells).

    def _forward(self, x: np.ndarray, w: np.ndarray, plan) -> np.ndarray:
        n, w_shape, g_shape = x.shape[0], plan[1], plan[2]
        groups = self.groups
        cols = self._gather(x, plan, per_batch=True)
        cols = cols.reshape(n, groups, -1, cols.shape[2])
        kern = w.reshape(groups, w_shape[0] // groups, -1)
        return np.matmul(kern, cols).reshape(g_shape)

    def _grad_input(self, g: np.ndarray, w: np.ndarray, plan) -> np.ndarray:
        x_shape, w_shape, g_shape, _, taps = plan
        (n, c), groups = x_shape[:2], self.groups
        kern = w.reshape(groups, w_shape[0] // groups, -1).transpose(0, 2, 1)
        cols = np.matmul(kern, g.reshape(n, groups, w_shape[0] // groups, -1))
        out = np.empty(x_shape, self.dtype)
        view = self._columns_view(cols, x_shape, w_shape, g_shape, per_batch=True)
        self._run(view, taps, out, cols.size)
        return out

    def _grad_weights(self, x: np.ndarray, g: np.ndarray, plan) -> np.ndarray:
        w_shape, groups = plan[1], self.groups
        cols = self._gather(x, plan, per_batch=False)
        cols = cols.reshape(groups, -1, cols.shape[1])
        # NOTE: (columns @ g^T)^T: BLAS runs this 1.4x faster than g @ columns^T here
        dk_t = np.matmul(cols, conv._grouped(g, groups).transpose(0, 2, 1))
        return np.ascontiguousarray(dk_t.transpose(0, 2, 1)).reshape(w_shape)


class _Shaped:
    """Stands for an array where a check reads only its shape."""

    __slots__ = ("shape",)

    def __init__(self, shape: tuple):
        self.shape = shape
