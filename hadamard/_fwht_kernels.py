"""Numba kernels of the fast Walsh-Hadamard transform (no Python-level logic here).

Every kernel works in place on a C-contiguous 2-D float32/float64 array whose
rows are independent transforms of length ``n = m * p`` (``p`` a power of
two, ``H_n = H_m (x) H_p``). :mod:`hadamard._fwht` validates the input and
chooses the kernel; nothing here checks its arguments.

Why the code looks the way it does (each point was measured):

* The first levels (those inside one SIMD vector and the next 3 across 8
  vectors) are written as explicit LLVM vector IR (:func:`_wht_in_registers`,
  a numba intrinsic): numba switches LLVM's SLP vectorizer off by default,
  and even with it on (``numba.core.config.SLP_VECTORIZE``) fully unrolled
  scalar butterflies became 4-wide shuffle chains that cost 2.5x more per
  level (float32) than the shuffle/add/sub/blend sequence here. So no
  numba setting is changed. Compiled code is cached on disk
  (``cache=True``): the JIT cost (tens of seconds for all kernels) is paid
  once per machine.
* Inner loops index contiguous slice views with an index from ``range``
  (``a0[i]``) rather than computed indices (``a[j + h + i]``): numba's
  wraparound handling of possibly-negative computed indices keeps LLVM from
  vectorizing, while the slice form vectorizes.
* After the in-register block (64 float32 or 32 float64 values) the first
  pass over memory has ``h >= 32``, long enough for the vectorized loop
  body (with ``h = 16`` it ran in the scalar remainder loop, 2-3x slower
  per level). Wider levels go two at a time (radix-4), which halves the
  passes over memory; rows are processed in blocks that fit the L1 cache
  before the widest levels run over the whole row (L2).
* The ``H_m`` part (``m`` a multiple of 4) is a Four-Russians product on
  column blocks: 8 signed sums per group of 4 rows, then ``m/4``
  multiply-adds per output, all contiguous loops the loop vectorizer handles.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import get_num_threads as numba_threads
from numba import njit, prange, types
from numba.extending import intrinsic

L1_BLOCK = {4: 2048, 8: 1024}
"""Elements per cache block, by item size (8 KiB: a quarter of a 32 KiB L1d)."""

IN_REGISTER = {4: 64, 8: 32}
"""Values per in-register block (``VECTORS`` 256-bit vectors), by item size."""


# ---- in-register first levels: explicit SIMD through an LLVM intrinsic ----

VECTORS = 8
"""Vectors held in registers by :func:`_wht_in_registers` (of 16 AVX2 registers)."""



def _butterfly_network(builder, vs):
    """Emit the in-register Sylvester butterflies over the list of LLVM vectors ``vs`` (in place)."""
    step = 1
    while step < len(vs):
        for k in range(len(vs)):
            if not k & step:
                a, b = vs[k], vs[k + step]
                vs[k], vs[k + step] = builder.fadd(a, b), builder.fsub(a, b)
        step *= 2

@intrinsic
def _wht_in_registers(typingctx, arr, start):
    """All butterfly levels of the ``VECTORS * lanes`` values ``arr[start:]``, in place.

    ``lanes`` is 8 for float32 and 4 for float64 (256-bit vectors). Levels
    inside a vector are one shuffle, an add, a subtract and a blend each --
    the FFHT recipe, which LLVM's SLP vectorizer does not find from scalar
    code (it produced 4-wide shuffle chains 2.5x slower per level here);
    levels across vectors are plain vector adds and subtracts.
    """
    if not (isinstance(arr, types.Array) and arr.dtype in (types.float32, types.float64)):
        return None
    sig = types.void(arr, start)

    def codegen(context, builder, signature, args):
        arrty = signature.args[0]
        ary = context.make_array(arrty)(context, builder, args[0])
        fty = context.get_value_type(arrty.dtype)
        lanes = 8 if arrty.dtype == types.float32 else 4
        vty = ir.VectorType(fty, lanes)
        i32 = ir.IntType(32)
        vptr = builder.bitcast(builder.gep(ary.data, [args[1]]), vty.as_pointer())
        align = context.get_abi_sizeof(fty)  # rows need not be 32-byte aligned
        ptrs = [builder.gep(vptr, [ir.Constant(ir.IntType(64), k)]) for k in range(VECTORS)]
        vs = [builder.load(q, align=align) for q in ptrs]
        h = 1
        while h < lanes:
            partner = ir.Constant(ir.VectorType(i32, lanes), [j ^ h for j in range(lanes)])
            pick = ir.Constant(ir.VectorType(i32, lanes), [j + lanes if j & h else j for j in range(lanes)])
            for k, v in enumerate(vs):
                t = builder.shuffle_vector(v, v, partner)
                # lane j keeps x_j + x_(j^h) when bit h of j is clear, else x_(j^h) - x_j
                vs[k] = builder.shuffle_vector(builder.fadd(v, t), builder.fsub(t, v), pick)
            h *= 2
        _butterfly_network(builder, vs)
        for q, v in zip(ptrs, vs):
            builder.store(v, q, align=align)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _radix8_vectors(typingctx, arr, start, h):
    """Levels ``h, 2h, 4h`` on the 8 vectors at ``arr[start + k*h]``, ``k = 0..7``, in place.

    One vector (8 float32 / 4 float64) from each of the 8 butterfly legs:
    three levels per pass over memory, without the aliasing checks and
    remainder loops LLVM adds to the equivalent slice loops.
    """
    if not (isinstance(arr, types.Array) and arr.dtype in (types.float32, types.float64)):
        return None
    sig = types.void(arr, start, h)

    def codegen(context, builder, signature, args):
        arrty = signature.args[0]
        ary = context.make_array(arrty)(context, builder, args[0])
        fty = context.get_value_type(arrty.dtype)
        lanes = 8 if arrty.dtype == types.float32 else 4
        vty = ir.VectorType(fty, lanes)
        align = context.get_abi_sizeof(fty)
        i64 = ir.IntType(64)
        start_, h_ = builder.sext(args[1], i64) if args[1].type != i64 else args[1], args[2]
        if h_.type != i64:
            h_ = builder.sext(h_, i64)
        ptrs = []
        for k in range(8):
            off = builder.add(start_, builder.mul(h_, ir.Constant(i64, k)))
            ptrs.append(builder.bitcast(builder.gep(ary.data, [off]), vty.as_pointer()))
        vs = [builder.load(q, align=align) for q in ptrs]
        _butterfly_network(builder, vs)
        for q, v in zip(ptrs, vs):
            builder.store(v, q, align=align)
        return context.get_dummy_value()

    return sig, codegen


# ---- butterfly passes over memory ----


@njit(cache=True)
def _radix2_pass(a, h):
    for j in range(0, a.size, 2 * h):
        a0 = a[j : j + h]
        a1 = a[j + h : j + 2 * h]
        for i in range(h):
            x0 = a0[i]
            x1 = a1[i]
            a0[i] = x0 + x1
            a1[i] = x0 - x1


@njit(cache=True)
def _radix4_pass(a, h):
    # levels h and 2h at once: one read and one write of ``a`` instead of two
    for j in range(0, a.size, 4 * h):
        a0 = a[j : j + h]
        a1 = a[j + h : j + 2 * h]
        a2 = a[j + 2 * h : j + 3 * h]
        a3 = a[j + 3 * h : j + 4 * h]
        for i in range(h):
            x0 = a0[i]
            x1 = a1[i]
            x2 = a2[i]
            x3 = a3[i]
            s01 = x0 + x1
            d01 = x0 - x1
            s23 = x2 + x3
            d23 = x2 - x3
            a0[i] = s01 + s23
            a1[i] = d01 + d23
            a2[i] = s01 - s23
            a3[i] = d01 - d23


@njit(cache=True)
def _radix8_pass(a, h, lanes):
    for j in range(0, a.size, 8 * h):
        for i in range(j, j + h, lanes):
            _radix8_vectors(a, i, h)


@njit(cache=True)
def _levels_from(a, h):
    """Butterfly levels ``h, 2h, ..., a.size/2`` of ``a``."""
    n = a.size
    lanes = 32 // a.itemsize
    if h >= lanes:
        while 8 * h <= n:
            _radix8_pass(a, h, lanes)
            h *= 8
    while 4 * h <= n:
        _radix4_pass(a, h)
        h *= 4
    if 2 * h <= n:
        _radix2_pass(a, h)


@njit(cache=True)
def _in_register_levels(a, reg):
    for k in range(0, a.size, reg):
        _wht_in_registers(a, k)


@njit(cache=True)
def _sylvester_row(a, reg, block):
    """``a <- H_p a`` for ``p = a.size`` a power of two (unnormalized)."""
    n = a.size
    if n < reg:
        _levels_from(a, 1)
        return
    b = min(block, n)
    for j in range(0, n, b):
        sub = a[j : j + b]
        _in_register_levels(sub, reg)
        _levels_from(sub, reg)
    _levels_from(a, b)


# ---- the dense H_m part ----


@njit(cache=True)
def _group_table(a, p, c0, w, table):
    """For columns ``c0:c0+w`` and every group of 4 rows of the ``(m, p)`` matrix ``a``,
    the 8 signed sums ``z0 +- z1 +- z2 +- z3`` (code ``b1 + 2 b2 + 4 b3``, bit set = minus)."""
    ngroups = table.shape[0]
    for q in range(ngroups):
        r = 4 * q
        z0 = a[r * p + c0 : r * p + c0 + w]
        z1 = a[(r + 1) * p + c0 : (r + 1) * p + c0 + w]
        z2 = a[(r + 2) * p + c0 : (r + 2) * p + c0 + w]
        z3 = a[(r + 3) * p + c0 : (r + 3) * p + c0 + w]
        t = table[q]
        t0, t1, t2, t3 = t[0, :w], t[1, :w], t[2, :w], t[3, :w]
        t4, t5, t6, t7 = t[4, :w], t[5, :w], t[6, :w], t[7, :w]
        for k in range(w):
            x0 = z0[k]
            x1 = z1[k]
            x2 = z2[k]
            x3 = z3[k]
            u0 = x0 + x1
            u1 = x0 - x1
            v0 = u0 + x2
            v1 = u1 + x2
            v2 = u0 - x2
            v3 = u1 - x2
            t0[k] = v0 + x3
            t1[k] = v1 + x3
            t2[k] = v2 + x3
            t3[k] = v3 + x3
            t4[k] = v0 - x3
            t5[k] = v1 - x3
            t6[k] = v2 - x3
            t7[k] = v3 - x3


@njit(cache=True)
def _dense_part(a, p, codes, gsigns, w, table):
    """``a <- H_m a`` for ``a`` read as an ``(m, p)`` matrix, ``H_m`` given by group codes.

    Four-Russians scheme: row ``i`` of ``H_m`` restricted to rows ``4q..4q+3``
    is ``gsigns[i, q]`` times one of 8 sign patterns (``codes[i, q]``), so the
    product costs 14 vector additions per group plus ``m/4`` (not ``m``)
    multiply-adds per output element.
    """
    m, ngroups = codes.shape
    for c0 in range(0, p, w):
        _group_table(a, p, c0, w, table)
        for i in range(m):
            o = a[i * p + c0 : i * p + c0 + w]
            src = table[0, codes[i, 0], :w]
            s = gsigns[i, 0]
            for k in range(w):
                o[k] = s * src[k]
            q = 1
            # four groups per pass over ``o``: a quarter of the loads and stores of ``o``
            while q + 3 < ngroups:
                src1 = table[q, codes[i, q], :w]
                src2 = table[q + 1, codes[i, q + 1], :w]
                src3 = table[q + 2, codes[i, q + 2], :w]
                src4 = table[q + 3, codes[i, q + 3], :w]
                s1 = gsigns[i, q]
                s2 = gsigns[i, q + 1]
                s3 = gsigns[i, q + 2]
                s4 = gsigns[i, q + 3]
                for k in range(w):
                    o[k] += (s1 * src1[k] + s2 * src2[k]) + (s3 * src3[k] + s4 * src4[k])
                q += 4
            while q + 1 < ngroups:
                src1 = table[q, codes[i, q], :w]
                src2 = table[q + 1, codes[i, q + 1], :w]
                s1 = gsigns[i, q]
                s2 = gsigns[i, q + 1]
                for k in range(w):
                    o[k] += s1 * src1[k] + s2 * src2[k]
                q += 2
            if q < ngroups:
                src1 = table[q, codes[i, q], :w]
                s1 = gsigns[i, q]
                for k in range(w):
                    o[k] += s1 * src1[k]


# ---- one row, and the batch drivers ----


@njit(cache=True)
def _transform_row(a, p, codes, gsigns, w, pre, post, scale, reg, block, table):
    """``a <- post * scale * (H_m (x) H_p) (pre * a)``; empty ``pre``/``post`` mean none."""
    n = a.size
    if pre.size:
        for i in range(n):
            a[i] *= pre[i]
    if p > 1:
        for j in range(0, n, p):
            _sylvester_row(a[j : j + p], reg, block)
    if codes.shape[1] > 0:
        _dense_part(a, p, codes, gsigns, w, table)
    if post.size:
        for i in range(n):
            a[i] *= scale * post[i]
    elif scale != 1:
        for i in range(n):
            a[i] *= scale


@njit(cache=True)
def _rows(x, start, stop, p, codes, gsigns, w, pre, post, scale, reg, block):
    table = np.empty((codes.shape[1], 8, w), dtype=x.dtype)
    for r in range(start, stop):
        _transform_row(x[r], p, codes, gsigns, w, pre, post, scale, reg, block, table)


@njit(cache=True)
def transform_serial(x, p, codes, gsigns, w, pre, post, scale, reg, block):
    """In place on the rows of ``x`` (2-D, C-contiguous), one thread."""
    _rows(x, 0, x.shape[0], p, codes, gsigns, w, pre, post, scale, reg, block)


@njit(cache=True)
def sylvester_serial(x, scale, reg, block):
    """``x <- scale * x @ H_p`` on the rows of ``x`` (2-D, C-contiguous, ``p`` a power of two), one thread."""
    for r in range(x.shape[0]):
        a = x[r]
        _sylvester_row(a, reg, block)
        if scale != 1:
            for i in range(a.size):
                a[i] *= scale


@njit(cache=True, parallel=True)
def transform_parallel(x, p, codes, gsigns, w, pre, post, scale, reg, block, chunk):
    """In place on the rows of ``x`` (2-D, C-contiguous), ``chunk`` rows per parallel task.

    A task allocates its scratch buffer once for all its rows.
    """
    nrows = x.shape[0]
    ntasks = (nrows + chunk - 1) // chunk
    for t in prange(ntasks):
        _rows(x, t * chunk, min(nrows, (t + 1) * chunk), p, codes, gsigns, w, pre, post, scale, reg, block)
