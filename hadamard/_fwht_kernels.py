"""Numba kernels of the fast Walsh-Hadamard transform (no Python-level logic here).

Every kernel works in place on a C-contiguous 2-D float32/float64 array whose
rows are independent transforms of length ``n = m * p`` (``p`` a power of
two, ``H_n = H_m (x) H_p``). :mod:`hadamard._fwht` validates the input and
chooses the kernel; nothing here checks its arguments.

Why the code looks the way it does (each point was measured):

* All butterflies are written as explicit LLVM vector IR (numba
  intrinsics): numba switches LLVM's SLP vectorizer off by default, and even
  with it on (``numba.core.config.SLP_VECTORIZE``) fully unrolled scalar
  butterflies became 4-wide shuffle chains that cost 2.5x more per level
  (float32). So no numba setting is changed. Compiled code is cached on disk
  (``cache=True``): the JIT cost (tens of seconds for all kernels) is paid
  once per machine.
* The first levels run in registers on 8 AVX2 vectors
  (:func:`_wht_in_registers`). A level inside one vector is a shuffle and
  one FMA by a +-1 vector, ``fma(s, v, shuffle(v))`` -- exact, and half the
  instructions of FFHT's shuffle/add/sub/blend (25 % more float32
  throughput, 10-15 % float64). Writing the differences of the levels across
  vectors as ``fma(b, -1, a)`` too (to spread them over the FMA ports) was
  5-10 % slower and is not done.
* The later levels go three at a time (radix-8: one read and write of the
  array per three levels), or as radix-4/radix-2 passes for what is left;
  each pass calls a kernel that loads 8 vectors (8 legs of one column, or 4
  legs of 2 columns, or 2 legs of 4), so every register is in use and no
  loop carries aliasing checks or scalar remainders. When exactly 4 levels
  are left inside a 16 KiB block, one radix-16 pass (16 vectors, one per
  leg) replaces two radix-4 passes (float32 2^10: +15 %); across a whole
  row its 16 legs, a power-of-two stride apart, thrash the L1 sets (2x
  slower), so there the two radix-4 passes stay.
* Rows up to 16 KiB are transformed a group of whole rows at a time (8 KiB, or
  one row): a pass with stride ``h < n`` over back-to-back rows is the same pass
  on every row, so short rows cost no per-row work (8 KiB groups: 1.13-1.37x
  against 16 KiB on a Zen 4). The in-register pass over a group leaves the
  reading ahead to the hardware: a software prefetch 4 KiB ahead cost up to 14 %
  there on a Zen 4. Longer
  rows: the levels can run in any order, so the one pass over memory also
  does the one or two widest levels (2 or 4 runs a half or quarter row apart,
  :func:`_columns_kernel` with ``legs_first``); then each block gets its
  other levels in cache: a pass fewer than finishing every block first and
  the levels across blocks last (1.04-1.18x). 32 KiB rows do their first levels on
  4 whole in-register blocks a quarter row apart (:func:`_split_blocks_kernel`),
  which leaves one radix-32 pass per quarter: 2 passes in all. Rows shorter than one in-register block
  run the first log2(n) levels of the in-register kernel on a block of
  back-to-back rows.
* The first pass over memory multiplies what it loads by the scale of a normalized
  transform, or by the signs times the scale of a randomized one (factors loaded beside
  the values, indexed like them): a multiply per vector. Passes of their own had cost
  6-24 % for the scale, and made a randomized power of two 1.4-6.3x the plain transform
  (signs, levels and scale row by row). Each kind of factor (none, a float, int8 signs with
  their factor) is a type, so each compiles its own code.
* The ``H_m`` part (``m`` a multiple of 4) is a Four-Russians product on
  column blocks: 8 signed sums per group of 4 rows (the table), then each run
  of 8 output vectors summed over its ``m/4`` table rows in registers
  (:func:`_sum_table_rows`; 1.01-1.40x against numba's loops, which load and
  store the output once per pass of at most four groups), the column block
  sized so the table stays in L1, the scale carried by the group signs.
  Short sub-rows (``p <= 64``) go several rows at a time through a scratch
  that lays the same sub-row of each side by side, so those loops are long;
  with sub-rows of at least one run, the product writes straight back to the
  rows. The copy into that scratch does the in-register levels on the way
  (:func:`_gather_levels`; 1.08-1.29x against a copy and then the levels);
  the copy out of it as explicit vectors measured no better than numba's
  loop (0.87-1.08x) and is not done.
* For ``m <= 172``, where the rows fit in L1 (and for ``m >= 100`` on short
  sub-rows), the ``H_m`` part is instead straight-line code compiled for that
  one matrix (:func:`_hm_columns`): the same Four-Russians sums with the
  codes and signs fixed, on ``m`` vectors of one column, right after the
  ``H_p`` levels of a group of rows: no table in memory, no multiply by a
  sign, no scratch (1.5-2.4x against the table; sub-rows of 2 or 4 values
  take half or quarter vectors, 1.2-5x against the bundled table, except
  float32 ``172 * 2`` at 0.94x). Each ``(m, transposed)`` compiles on first
  use; numba caches it like the other kernels. The table remains for larger
  ``m`` and for long rows.
* Straight-line code for every output of a large ``m`` is about ``m**2 / 4``
  additions, each an instruction, far more than the micro-op cache holds: on
  one column in L1 it retired 1.2-1.5 vector additions per cycle at
  ``m = 108..180``, 1.7 at ``m = 100`` (of 2). Where ``H_m`` is a 4 x 4 array of
  circulant blocks (Williamson's construction), output ``r`` of a block row
  takes the same table entries as output 0, shifted by ``r`` groups: the
  groups' sums go to a table on the stack and one loop body serves all ``r``
  (:func:`_emit_circulant_product`; float32 172·2^6 1.16-1.36x, 172·2^10
  1.4-1.6x against the table; at 92·2^6, whose straight-line code fits that
  cache, 0.91-1.03x, so only from ``REGISTER_PRODUCT_LARGE_M`` on). Its body
  takes 4 output rows per pass as chains of additions, half of them FMAs, and
  loads the table entries they share once (``CIRCULANT_CHAINS``: 1.28x more at
  172·2^6).
* Paley's matrices over GF(q) take the same loop after Rader's reindexing of
  GF(q)* by the powers of a generator (:func:`circulant_form`): Paley II is
  then 8 circulant blocks and a border of 4, Paley I an even number of blocks
  (6 or more where ``q - 1`` allows, else 2) and a border of 2 (float32 148·2^7
  1.40x, 100·2^8 1.43x, 140·2^6 1.31x, 108·2^7 1.18x). That loop is also the
  only register product above ``m = 172``, up to ``CIRCULANT_MAX_M``: 1.1-3.4x
  against the table there.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import get_num_threads as numba_threads
from numba import literally, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._api import get as _hadamard_matrix
from ._finite_field import powers_of_x
from ._numbers import prime_power

L1_BLOCK_BYTES = 16384
"""Bytes per cache block of the plan of long rows, and the longest row transformed whole in
cache (16 KiB: half of a 32 KiB L1d; 8 and 32 KiB measured slower, 8 KiB 0.69-0.86x on Zen 4)."""
L1_BLOCK = {size: L1_BLOCK_BYTES // size for size in (4, 8)}
"""Elements per cache block, by item size."""
ROW_GROUP_BYTES = 8192
"""Rows up to 8 KiB are transformed this many bytes of whole rows at a time (longer rows, up to
``L1_BLOCK_BYTES``, one row at a time). Against 16 KiB groups (the block, as before) 8 KiB ran
1.13-1.37x faster on a Zen 4 (float32 2^8-2^11, float64 2^8-2^10, same bits); 4 KiB no faster."""
PREFETCH_BYTES = 4096
"""How far ahead the copy into a bundle prefetches (the first pass of rows up to one block did
too, until a Zen 4 ran it up to 14 % faster without: see :func:`_in_register_levels`)."""
NEXT_ROW_PREFETCH_STEP = 256
NEXT_ROW_PREFETCH_BYTES = 262144
"""Rows over 32 KiB: while their blocks get their levels in L1, every call of those passes
prefetches into L2, for reading, the next ``NEXT_ROW_PREFETCH_STEP`` bytes that the next row's
first pass will read, up to ``NEXT_ROW_PREFETCH_BYTES`` in all (:func:`_block_levels`): the whole
next row up to 256 KiB rows, its first half at 512 KiB (so that the row being transformed keeps
its half of the 1 MiB L2). Same bits; paired A/B against a thin ``prefetchw`` into L1 (128 bytes
per call, up to 32 KiB, rows up to 128 KiB), 64 MiB, one thread, Zen 4, 11 repeats, two runs:
float64 2^13 1.09-1.14x, 2^14 1.06-1.08x, 2^15 1.04-1.06x, float32 2^14 1.07-1.08x, 2^15
1.02-1.08x; 2^16 0.98-1.04x (noise either way; the whole 512 KiB row ahead 0.98x, 128 KiB of
it 0.99-1.01x). That ``prefetchw`` had gained 1.02-1.12x over none (ninth session)."""

VECTOR_BYTES = 32
"""Bytes per explicit SIMD vector (256-bit: AVX2).  64 (AVX-512) gives correct results but was
mixed on a Zen 4 (same-process A/B, two runs): float32 2^13 1.09-1.14x and 2^16 1.05-1.07x,
float64 2^11 0.85-0.87x, 172*2^6 0.91x, the rest 0.93-1.03x."""
VECTORS = 8
"""Vectors held in registers by the kernels below (of 16 AVX2 registers).  16 (AVX-512 has 32
registers) passes every fwht test but measured 0.80-1.07x on a Zen 4 (float32 2^10 0.82x,
float64 2^11 0.80x, float64 2^13 1.07x, 28*2^6 0.86x)."""
IN_REGISTER_BYTES = VECTORS * VECTOR_BYTES
"""Bytes per in-register block: ``VECTORS`` vectors."""
IN_REGISTER = {size: IN_REGISTER_BYTES // size for size in (4, 8)}
"""Values per in-register block, by item size."""


# ---- explicit SIMD through LLVM intrinsics ----

PREFETCH_LOCALITY = 3

#: Rows whose sub-rows are at most ``BUNDLE_WIDTH / BUNDLE_MIN`` (64) long go through the
#: bundled driver, ``BUNDLE_WIDTH // p`` rows side by side. Measured against one row at a
#: time (64 MiB, one thread, same run): float32 1.2-1.4x at p = 2^6 (m = 12, 28, 172),
#: float64 1.04-1.16x; at p = 2^7 it was 0.94-0.97x, so longer sub-rows stay row by row.
BUNDLE_WIDTH = 512
BUNDLE_MIN = 8


def _vector_setup(context, builder, arrty, arg):
    ary = context.make_array(arrty)(context, builder, arg)
    fty = context.get_value_type(arrty.dtype)
    lanes = VECTOR_BYTES // context.get_abi_sizeof(fty)
    vty = ir.VectorType(fty, lanes)
    align = context.get_abi_sizeof(fty)  # rows need not be 32-byte aligned
    return ary.data, fty, lanes, vty, align


def _as_i64(builder, v):
    i64 = ir.IntType(64)
    return v if v.type == i64 else builder.sext(v, i64)


def _fma(builder, a, b, c):
    """``a * b + c`` rounded once (``llvm.fma`` on vectors; llvmlite's ``builder.fma`` takes scalars only)."""
    vty = a.type
    name = f"llvm.fma.v{vty.count}{'f32' if vty.element == ir.FloatType() else 'f64'}"
    fn = builder.module.globals.get(name) or ir.Function(builder.module, ir.FunctionType(vty, [vty] * 3), name)
    return builder.call(fn, [a, b, c])


def _tree_sum(builder, values):
    """The sum of the LLVM values as a balanced tree (short dependency chains)."""
    if len(values) == 1:
        return values[0]
    half = len(values) // 2
    return builder.fadd(_tree_sum(builder, values[:half]), _tree_sum(builder, values[half:]))


def _signed_tree_sum(builder, plus, minus):
    """``sum(plus) - sum(minus)`` (not both empty), each sum a balanced tree."""
    if not minus:
        return _tree_sum(builder, plus)
    if not plus:
        return builder.fneg(_tree_sum(builder, minus))
    return builder.fsub(_tree_sum(builder, plus), _tree_sum(builder, minus))


def _splat(builder, value, vty):
    """The scalar ``value`` in every lane of a vector of type ``vty``."""
    i32 = ir.IntType(32)
    first = builder.insert_element(ir.Constant(vty, None), value, ir.Constant(i32, 0))
    return builder.shuffle_vector(first, ir.Constant(vty, None), ir.Constant(ir.VectorType(i32, vty.count), [0] * vty.count))


def _signed_sums(builder, x0, x1, x2, x3):
    """The 8 sums ``x0 +- x1 +- x2 +- x3``, sum ``e`` with ``x_j`` subtracted where bit ``j-1``
    of ``e`` is set: 14 additions, in the order the Four-Russians tables are built."""
    u0, u1 = builder.fadd(x0, x1), builder.fsub(x0, x1)
    v = [builder.fadd(u0, x2), builder.fadd(u1, x2), builder.fsub(u0, x2), builder.fsub(u1, x2)]
    return [builder.fadd(t, x3) for t in v] + [builder.fsub(t, x3) for t in v]


def _butterfly_network(builder, vs, width=None):
    """Emit the Sylvester butterflies over the list of LLVM vectors ``vs`` (in place),
    within each run of ``width`` vectors (default: all of them)."""
    width = len(vs) if width is None else width
    step = 1
    while step < width:
        for k in range(len(vs)):
            if not k & step:
                a, b = vs[k], vs[k + step]
                vs[k], vs[k + step] = builder.fadd(a, b), builder.fsub(a, b)
        step *= 2


def _in_register_network(builder, vs, lanes, vty, span):
    """Emit the first ``log2(span)`` levels over the vectors ``vs`` (in place): the levels inside
    a vector as ``fma(s, v, shuffle(v))``, then :func:`_butterfly_network` across vectors."""
    i32 = ir.IntType(32)
    h = 1
    while h < min(lanes, span):
        partner = ir.Constant(ir.VectorType(i32, lanes), [j ^ h for j in range(lanes)])
        sign = ir.Constant(vty, [-1.0 if j & h else 1.0 for j in range(lanes)])
        for k, v in enumerate(vs):
            vs[k] = _fma(builder, sign, v, builder.shuffle_vector(v, v, partner))
        h *= 2
    _butterfly_network(builder, vs, max(1, span // lanes))


def _float_array(arr):
    return isinstance(arr, types.Array) and arr.dtype in (types.float32, types.float64)


def _scale_argument(scale, arr):
    """Whether ``scale`` types as the factor of a first-pass kernel on ``arr``: a float, ``None``
    for none, or signs ``(s, c)``: a 1-D contiguous int8 array of +-1 indexed like ``arr`` and
    a float ``c`` (or ``None`` for 1) that multiplies them."""
    if isinstance(scale, types.BaseTuple) and len(scale) == 2:
        s, c = scale.types
        return (isinstance(s, types.Array) and s.ndim == 1 and s.layout == "C" and s.dtype == types.int8
                and isinstance(c, (types.Float, types.NoneType)))
    return isinstance(scale, (types.Float, types.NoneType))


def _kernel_codegen(emit, ints, scaled):
    """Codegen of an intrinsic ``(arr, i_1, ..., i_ints[, scale])`` whose body
    ``emit(builder, data, lanes, vty, align, *ints[, scale])`` writes, the integers as i64.

    ``scale`` reaches ``emit`` as what :func:`_scaled_loads` takes: ``None`` where it types as
    ``None`` (no multiply is emitted: each type compiles its own code), a float as a vector of
    ``arr``'s element type in every lane, and signs ``(s, c)`` as a function from a vector
    pointer into ``arr`` to the factors at the same index (:func:`_signs_like`)."""

    def codegen(context, builder, signature, args):
        data, fty, lanes, vty, align = _vector_setup(context, builder, signature.args[0], args[0])
        extra = [_as_i64(builder, v) for v in args[1 : 1 + ints]]
        if scaled:
            scale_type = signature.args[-1]
            if isinstance(scale_type, types.NoneType):
                extra.append(None)
            elif isinstance(scale_type, types.BaseTuple):
                signs_type, c_type = scale_type.types
                signs = context.make_array(signs_type)(context, builder, builder.extract_value(args[-1], 0))
                c = None
                if not isinstance(c_type, types.NoneType):
                    value = context.cast(builder, builder.extract_value(args[-1], 1), c_type, signature.args[0].dtype)
                    c = _splat(builder, value, vty)
                itemsize = context.get_abi_sizeof(fty)
                extra.append(_signs_like(builder, data, signs.data, vty, itemsize, c))
            else:
                value = context.cast(builder, args[-1], scale_type, signature.args[0].dtype)
                extra.append(_splat(builder, value, vty))
        emit(builder, data, lanes, vty, align, *extra)
        return context.get_dummy_value()

    return codegen


def _signs_like(builder, data, signs, vty, itemsize, c):
    """A function from a vector pointer ``q`` into the array at ``data`` to the vector of the
    int8 signs that start at the same index of the array at ``signs``, as floats, times the
    vector ``c`` (``None``: as they are). A byte per value, not a float: a row's signs take a
    quarter (float32) or an eighth (float64) of the L1d that float factors would."""
    i8, i64 = ir.IntType(8), ir.IntType(64)
    base = builder.ptrtoint(data, i64)
    shift = ir.Constant(i64, itemsize.bit_length() - 1)

    plus = ir.Constant(vty, [1.0] * vty.count) if c is None else c
    minus = builder.fneg(plus)
    zero = ir.Constant(ir.VectorType(i8, vty.count), [0] * vty.count)

    def factor(q):
        # exact: the offset is whole values, so LLVM may fold the shift into each vector's
        # constant offset from the first
        index = builder.ashr(builder.sub(builder.ptrtoint(q, i64), base), shift, flags=["exact"])
        at = builder.bitcast(builder.gep(signs, [index]), ir.VectorType(i8, vty.count).as_pointer())
        return builder.select(builder.icmp_signed("<", builder.load(at, align=1), zero), minus, plus)

    return factor


def _scaled_loads(builder, ptrs, align, scale):
    """The vectors at ``ptrs``, each times ``scale``: ``None`` (as loaded), a vector, or a
    function from the pointer to its own factors (:func:`_signs_like`).

    The first pass over memory scales what it loads (and multiplies by the signs of a
    randomized transform): a multiply per vector there, where a pass of its own to scale the
    row afterwards cost 6-24 % of the whole transform."""
    vs = [builder.load(q, align=align) for q in ptrs]
    if scale is None:
        return vs
    if callable(scale):
        return [builder.fmul(v, scale(q)) for q, v in zip(ptrs, vs)]
    return [builder.fmul(v, scale) for v in vs]


def _start_kernel(emit, scaled=False):
    """An intrinsic ``(arr, start)`` on a float32/float64 array whose body
    ``emit(builder, data, lanes, vty, align, start)`` writes (``start`` as i64).

    ``scaled``: ``(arr, start, scale)`` instead, ``scale`` a float, ``None`` or int8 signs with
    their factor (:func:`_scale_argument`), handed to ``emit`` as a last argument (see
    :func:`_kernel_codegen`)."""
    if scaled:

        @intrinsic
        def scaled_kernel(typingctx, arr, start, scale):
            if not (_float_array(arr) and _scale_argument(scale, arr)):
                return None
            return types.void(arr, start, scale), _kernel_codegen(emit, 1, True)

        return scaled_kernel

    @intrinsic
    def kernel(typingctx, arr, start):
        if not _float_array(arr):
            return None
        return types.void(arr, start), _kernel_codegen(emit, 1, False)

    return kernel


def _in_registers_kernel(levels=None):
    """An intrinsic ``(arr, start, scale)``: the first ``levels`` butterfly levels (default: all
    of them) of the ``VECTORS * lanes`` values ``arr[start:]`` times ``scale``, in place
    (a float, int8 signs indexed like ``arr`` with their factor, or ``None``: no multiply).

    ``lanes`` is 8 for float32 and 4 for float64 (256-bit vectors). A level
    inside a vector is one shuffle and one FMA: ``fma(s, v, shuffle(v))`` with
    ``s = +1`` on the lanes whose bit ``h`` is clear (``x_j + x_(j^h)``) and
    ``-1`` where it is set (``x_(j^h) - x_j``); multiplying by +-1 is exact,
    so this is the add/sub/blend recipe of FFHT in half the instructions.
    Levels across vectors are :func:`_butterfly_network`.  The first ``levels``
    levels are the whole transform of every run of ``2**levels`` values, so
    rows shorter than the block are transformed many at a time.
    """

    def emit(builder, data, lanes, vty, align, start, scale):
        # a row longer than the block never reaches here (callers dispatch on the
        # block size); the cap only keeps every variant compilable for both dtypes
        span = VECTORS * lanes if levels is None else min(1 << levels, VECTORS * lanes)
        vptr = builder.bitcast(builder.gep(data, [start]), vty.as_pointer())
        ptrs = [builder.gep(vptr, [ir.Constant(ir.IntType(64), k)]) for k in range(VECTORS)]
        vs = _scaled_loads(builder, ptrs, align, scale)
        _in_register_network(builder, vs, lanes, vty, span)
        for q, v in zip(ptrs, vs):
            builder.store(v, q, align=align)

    return _start_kernel(emit, scaled=True)


_wht_in_registers = _in_registers_kernel()


@intrinsic
def _sum_table_rows(typingctx, table, offsets, gsigns, i0, count, k, dst, d0):
    """``dst[d0:d0+VECTORS*lanes] <- sum over q < count of
    gsigns[i0+q] * table[offsets[i0+q]+k : ... + VECTORS*lanes]``.

    One output row of the Four-Russians product (:func:`_dense_part`) on one
    run of columns: the ``VECTORS`` partial sums stay in registers over all
    ``count`` groups, so each table row is loaded once and the output stored
    once (the loop of numba over the columns loads and stores the output once
    per pass of at most four groups). ``gsigns`` are +-1, or +-scale when the
    caller folds the transform's scale into them (:func:`_product_signs`).
    """
    arrays = (table, offsets, gsigns, dst)
    if not all(isinstance(a, types.Array) for a in arrays):
        return None
    if not (table.dtype in (types.float32, types.float64) and gsigns.dtype == table.dtype
            and dst.dtype == table.dtype and isinstance(offsets.dtype, types.Integer)):
        return None
    sig = types.void(table, offsets, gsigns, i0, count, k, dst, d0)

    def codegen(context, builder, signature, args):
        data, fty, lanes, vty, align = _vector_setup(context, builder, signature.args[0], args[0])
        i64 = ir.IntType(64)
        offs = context.make_array(signature.args[1])(context, builder, args[1]).data
        signs = context.make_array(signature.args[2])(context, builder, args[2]).data
        out = context.make_array(signature.args[6])(context, builder, args[6]).data
        i0, count, k, d0 = (_as_i64(builder, args[j]) for j in (3, 4, 5, 7))
        optr = builder.bitcast(builder.gep(out, [d0]), vty.as_pointer())

        def term(q):
            """The signs ``gsigns[i0+q]`` (splat) and the address of table row ``offsets[i0+q]``."""
            j = builder.add(i0, q)
            off = _as_i64(builder, builder.load(builder.gep(offs, [j])))
            s = builder.load(builder.gep(signs, [j]))
            return _splat(builder, s, vty), builder.bitcast(builder.gep(data, [builder.add(off, k)]), vty.as_pointer())

        def load(ptr, v):
            return builder.load(builder.gep(ptr, [ir.Constant(i64, v)]), align=align)

        def store(v, value):
            builder.store(value, builder.gep(optr, [ir.Constant(i64, v)]), align=align)

        # up to SHORT_SUMS groups: straight-line code, summed as a balanced tree (short
        # dependency chains; m = 12 gets t0 + (t1 + t2), as the loops of numba did)
        done = builder.append_basic_block("sum.done")
        loop = builder.append_basic_block("sum.loop")
        switch = builder.switch(count, loop)
        for c in range(1, SHORT_SUMS + 1):
            case = builder.append_basic_block(f"sum.{c}")
            switch.add_case(ir.Constant(count.type, c), case)
            builder.position_at_end(case)
            terms = [term(ir.Constant(i64, q)) for q in range(c)]
            for v in range(VECTORS):
                store(v, _tree_sum(builder, [builder.fmul(s, load(ptr, v)) for s, ptr in terms]))
            builder.branch(done)
        # more groups: a loop, the VECTORS partial sums carried in registers
        builder.position_at_end(loop)
        entry = switch.parent
        q = builder.phi(i64)
        accs = [builder.phi(vty) for _ in range(VECTORS)]
        splat, ptr = term(q)
        new = [_fma(builder, splat, load(ptr, v), acc) for v, acc in enumerate(accs)]
        q_next = builder.add(q, ir.Constant(i64, 1))
        exit_ = builder.append_basic_block("sum.exit")
        builder.cbranch(builder.icmp_signed("<", q_next, count), loop, exit_)
        q.add_incoming(ir.Constant(i64, 0), entry)
        q.add_incoming(q_next, loop)
        for acc, value in zip(accs, new):
            acc.add_incoming(ir.Constant(vty, [0.0] * lanes), entry)
            acc.add_incoming(value, loop)
        builder.position_at_end(exit_)
        for v, value in enumerate(new):
            store(v, value)
        builder.branch(done)
        builder.position_at_end(done)
        return context.get_dummy_value()

    return sig, codegen


SHORT_SUMS = 8
"""Up to this many groups, :func:`_sum_table_rows` is straight-line code."""

GROUP_COLUMNS = 2
"""Vectors of columns per call of :func:`_group_sums`."""


@intrinsic
def _group_sums(typingctx, src, s0, p, table, t0, w):
    """The 8 signed sums ``z0 +- z1 +- z2 +- z3`` of the rows ``z_r = src[s0 + r*p:]`` on
    ``GROUP_COLUMNS`` vectors of columns, sum ``e`` (bit ``j-1`` of ``e`` set: ``z_j`` minus)
    to ``table[t0 + e*w:]``: one group of :func:`_group_table`, with the same additions in
    the same order."""
    if not all(isinstance(a, types.Array) and a.dtype in (types.float32, types.float64) for a in (src, table)):
        return None
    sig = types.void(src, s0, p, table, t0, w)

    def codegen(context, builder, signature, args):
        data, fty, lanes, vty, align = _vector_setup(context, builder, signature.args[0], args[0])
        out = context.make_array(signature.args[3])(context, builder, args[3]).data
        i64 = ir.IntType(64)
        s0, p, t0, w = (_as_i64(builder, args[j]) for j in (1, 2, 4, 5))

        def at(base, start, stride, r, c):
            off = builder.add(start, builder.add(builder.mul(stride, ir.Constant(i64, r)), ir.Constant(i64, c * lanes)))
            return builder.bitcast(builder.gep(base, [off]), vty.as_pointer())

        for c in range(GROUP_COLUMNS):
            sums = _signed_sums(builder, *(builder.load(at(data, s0, p, r, c), align=align) for r in range(4)))
            for e, value in enumerate(sums):
                builder.store(value, at(out, t0, w, e, c), align=align)
        return context.get_dummy_value()

    return sig, codegen


# rows of 2, 4, ..., 32 values, a whole block of VECTORS vectors at a time (float32 needs up
# to 32 = 2^5 below its 64-value block, float64 up to 16 below its 32)
_wht_rows_of_2 = _in_registers_kernel(1)
_wht_rows_of_4 = _in_registers_kernel(2)
_wht_rows_of_8 = _in_registers_kernel(3)
_wht_rows_of_16 = _in_registers_kernel(4)
_wht_rows_of_32 = _in_registers_kernel(5)
_wht_rows_of_64 = _in_registers_kernel(6)


@intrinsic
def _gather_levels(typingctx, src, s0, sgn, g0, dst, d0, span):
    """``dst[d0:d0+span] <- H_span (sgn[g0:g0+span] * src[s0:s0+span])``, ``sgn=None``
    meaning no signs; ``span`` a power of two from one vector (``lanes`` values) to one
    in-register block (``VECTORS * lanes``); any other ``span`` does nothing.

    The copy into the scratch of :func:`_bundled_rows` fused with the in-register levels
    that follow it: the same operations on the same values, so the same bits, and one pass
    fewer over the scratch. The span is switched on inside the kernel, so the caller's
    loop holds no call (a dispatching function called per sub-row cost more than the
    fusion saved); signs or none is the type of ``sgn``, fixed when compiling (a run-time
    test cost 20 % at one-vector sub-rows).
    """
    signed = not isinstance(sgn, types.NoneType)
    float_arrays = all(isinstance(a, types.Array) and a.dtype == src.dtype for a in ((src, sgn, dst) if signed else (src, dst)))
    if not (float_arrays and src.dtype in (types.float32, types.float64) and isinstance(span, types.Integer)):
        return None
    sig = types.void(src, s0, sgn, g0, dst, d0, span)

    def codegen(context, builder, signature, args):
        data, fty, lanes, vty, align = _vector_setup(context, builder, signature.args[0], args[0])

        def vectors(index, start, count):
            base = _vector_setup(context, builder, signature.args[index], args[index])[0]
            vptr = builder.bitcast(builder.gep(base, [_as_i64(builder, start)]), vty.as_pointer())
            return [builder.gep(vptr, [ir.Constant(ir.IntType(64), k)]) for k in range(count)]

        def emit(width, with_signs):
            count = width // lanes
            vs = [builder.load(q, align=align) for q in vectors(0, args[1], count)]
            if with_signs:
                gs = [builder.load(q, align=align) for q in vectors(2, args[3], count)]
                vs = [builder.fmul(v, g) for v, g in zip(vs, gs)]
            _in_register_network(builder, vs, lanes, vty, width)
            for q, v in zip(vectors(4, args[5], count), vs):
                builder.store(v, q, align=align)

        done = builder.append_basic_block("gather.done")
        switch = builder.switch(args[6], done)
        width = lanes
        while width <= VECTORS * lanes:
            case = builder.append_basic_block(f"gather.{width}")
            switch.add_case(ir.Constant(args[6].type, width), case)
            builder.position_at_end(case)
            emit(width, signed)
            builder.branch(done)
            width *= 2
        builder.position_at_end(done)
        return context.get_dummy_value()

    return sig, codegen


def _prefetch_kernel(nbytes, into_l2=False):
    """An intrinsic ``(arr, start)`` that prefetches the ``nbytes`` bytes at ``arr[start:]``, a
    cache line at a time; it never faults, whatever ``start``.

    By default for writing, into L1 (``prefetchw``: LLVM emits any prefetch for writing so,
    whatever locality it is asked for). ``into_l2``: for reading, into L2 (``prefetcht1``; Zen 4
    is the first AMD core that keeps such lines out of L1). Only the read form into L2 can run
    beside passes that fill the L1d: in a scratch copy of the 32 KiB rows' loop, ``prefetchw``
    during the radix-32 pass ran 0.78x, ``prefetcht1`` 1.19-1.38x (see
    :func:`_quarters_radix32`)."""
    write, locality = (0, 2) if into_l2 else (1, PREFETCH_LOCALITY)

    def emit(builder, data, lanes, vty, align, start):
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = builder.module.globals.get("llvm.prefetch.p0") or ir.Function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
        )
        base = builder.bitcast(builder.gep(data, [start]), i8p)
        for line in range(0, nbytes, 64):
            q = builder.gep(base, [ir.Constant(ir.IntType(64), line)])
            builder.call(fn, [q, ir.Constant(i32, write), ir.Constant(i32, locality), ir.Constant(i32, 1)])

    return _start_kernel(emit)


# for writing into L1, one in-register block (the first pass of 32 KiB rows); into L2 for
# reading, one in-register block (their radix-32 pass) and the steps of _block_levels
_prefetch = _prefetch_kernel(IN_REGISTER_BYTES)
_prefetch_to_l2 = _prefetch_kernel(IN_REGISTER_BYTES, into_l2=True)
_prefetch_step_to_l2 = _prefetch_kernel(NEXT_ROW_PREFETCH_STEP, into_l2=True)


def _strided_kernel(emit, scaled=False):
    """An intrinsic ``(arr, start, h)`` on a float32/float64 array, in place, whose body
    ``emit(builder, data, lanes, vty, align, start, h)`` writes (``start`` and ``h`` as i64).

    ``scaled``: ``(arr, start, h, scale)`` instead, as in :func:`_start_kernel`."""
    if scaled:

        @intrinsic
        def scaled_kernel(typingctx, arr, start, h, scale):
            if not (_float_array(arr) and _scale_argument(scale, arr)):
                return None
            return types.void(arr, start, h, scale), _kernel_codegen(emit, 2, True)

        return scaled_kernel

    @intrinsic
    def kernel(typingctx, arr, start, h):
        if not _float_array(arr):
            return None
        return types.void(arr, start, h), _kernel_codegen(emit, 2, False)

    return kernel


def _columns_kernel(radix, legs_first=False):
    """An intrinsic ``(arr, start, h)``: levels ``h .. radix*h/2`` on ``VECTORS`` vectors.

    The vectors are ``arr[start + r*h + c*lanes]`` for ``r < radix`` and
    ``c < VECTORS // radix`` (``h >= VECTORS // radix * lanes``): ``radix``-point
    butterflies down each of the ``c`` columns, with every register in use.

    ``legs_first``: each leg ``r`` (its ``VECTORS // radix`` vectors side by side) first
    gets its own first levels, as in :func:`_in_registers_kernel`. With ``h`` a half or a
    quarter of a row, one pass over memory then does the first levels of the row *and*
    its widest one or two (the levels of a Sylvester transform can run in any order),
    instead of the widest levels taking a pass of their own. Being that first pass, it then
    takes a last argument ``scale`` that multiplies what it loads (see :func:`_start_kernel`).
    """
    cols = max(1, VECTORS // radix)

    def emit(builder, data, lanes, vty, align, start, h, scale=None):
        i64 = ir.IntType(64)
        ptrs = []
        for c in range(cols):
            for r in range(radix):
                off = builder.add(start, builder.add(builder.mul(h, ir.Constant(i64, r)), ir.Constant(i64, c * lanes)))
                ptrs.append(builder.bitcast(builder.gep(data, [off]), vty.as_pointer()))
        vs = _scaled_loads(builder, ptrs, align, scale)
        if legs_first:
            for r in range(radix):
                leg = vs[r::radix]
                _in_register_network(builder, leg, lanes, vty, cols * lanes)
                vs[r::radix] = leg
        for c in range(cols):
            col = vs[c * radix : (c + 1) * radix]
            _butterfly_network(builder, col)
            vs[c * radix : (c + 1) * radix] = col
        for q, v in zip(ptrs, vs):
            builder.store(v, q, align=align)

    return _strided_kernel(emit, scaled=legs_first)


def _split_blocks_kernel(legs):
    """An intrinsic ``(arr, start, h, scale)``: all in-register levels of the ``legs`` blocks
    at ``arr[start + j*h:]`` (``j < legs``, ``VECTORS`` vectors each) times ``scale``
    (as in :func:`_in_registers_kernel`), then the ``log2(legs)`` levels across them.

    Every block but the last is transformed and stored, the last kept in registers, then
    the others read back (from L1) vector by vector for the levels across. With ``h`` one
    block (``legs = 2``), one pass over memory does one level more than the in-register
    blocks alone; with ``h`` a fraction of a row, it does the first and the widest levels
    of the row, and what is left inside each ``h``-long part fits one radix-32 pass in L1.
    """

    def emit(builder, data, lanes, vty, align, start, h, scale):
        i64 = ir.IntType(64)
        ptrs = []
        for j in range(legs):
            base = builder.add(start, builder.mul(h, ir.Constant(i64, j)))
            vptr = builder.bitcast(builder.gep(data, [base]), vty.as_pointer())
            ptrs.append([builder.gep(vptr, [ir.Constant(i64, k)]) for k in range(VECTORS)])
        last = None
        for j in range(legs):
            vs = _scaled_loads(builder, ptrs[j], align, scale)
            _in_register_network(builder, vs, lanes, vty, VECTORS * lanes)
            if j < legs - 1:
                for q, v in zip(ptrs[j], vs):
                    builder.store(v, q, align=align)
            else:
                last = vs
        for k in range(VECTORS):
            col = [builder.load(ptrs[j][k], align=align) for j in range(legs - 1)] + [last[k]]
            _butterfly_network(builder, col)
            for j in range(legs):
                builder.store(col[j], ptrs[j][k], align=align)

    return _strided_kernel(emit, scaled=True)


# two blocks side by side (h = one block): one level more than _wht_in_registers per pass
# over memory, with never more than one block in registers (a 16-vector kernel spilled);
# where that leaves 4 levels for one radix-16 pass (float32 n = 2^11, float64 n = 2^10) a
# row takes 2 passes instead of 3 (1.08-1.16x, same bits)
_split_blocks_2 = _split_blocks_kernel(2)
_split_blocks_4 = _split_blocks_kernel(4)
_split_row_2 = _columns_kernel(2, legs_first=True)
_split_row_4 = _columns_kernel(4, legs_first=True)
_radix16_vectors = _columns_kernel(16)
_radix32_vectors = _columns_kernel(32)
_radix8_vectors = _columns_kernel(8)
_radix4_vectors = _columns_kernel(4)
_radix2_vectors = _columns_kernel(2)


# ---- butterfly passes over memory ----


@njit(cache=True)
def _radix32_pass(a, h, lanes):
    for j in range(0, a.size, 32 * h):
        for i in range(j, j + h, max(1, VECTORS // 32) * lanes):
            _radix32_vectors(a, i, h)


@njit(cache=True)
def _radix16_pass(a, h, lanes):
    for j in range(0, a.size, 16 * h):
        for i in range(j, j + h, max(1, VECTORS // 16) * lanes):
            _radix16_vectors(a, i, h)


@njit(cache=True)
def _radix8_pass(a, h, lanes):
    for j in range(0, a.size, 8 * h):
        for i in range(j, j + h, max(1, VECTORS // 8) * lanes):
            _radix8_vectors(a, i, h)


@njit(cache=True)
def _radix4_pass(a, h, lanes):
    for j in range(0, a.size, 4 * h):
        for i in range(j, j + h, max(1, VECTORS // 4) * lanes):
            _radix4_vectors(a, i, h)


@njit(cache=True)
def _radix2_pass(a, h, lanes):
    for j in range(0, a.size, 2 * h):
        for i in range(j, j + h, max(1, VECTORS // 2) * lanes):
            _radix2_vectors(a, i, h)


@njit(cache=True)
def _levels(a, h, stop, lanes):
    """Butterfly levels ``h, 2h, ..., stop/2`` of every length-``stop`` block of ``a``.

    ``h >= 4 * lanes``. Three levels per pass over memory where possible; a
    remainder of 4 levels goes as two radix-4 passes rather than 8 + 2, except
    within one L1-sized block, where 4 or 5 levels left take one radix-16 or
    radix-32 pass.
    """
    while h < stop:
        left = stop // h
        if left == 2:
            _radix2_pass(a, h, lanes)
            h *= 2
        elif left == 4:
            _radix4_pass(a, h, lanes)
            h *= 4
        elif left == 256 and stop * a.itemsize <= L1_BLOCK_BYTES:
            # two radix-16 passes rather than radix 8, 8, 4 (after a legs-first pass)
            _radix16_pass(a, h, lanes)
            h *= 16
        elif left == 32 and stop * a.itemsize <= L1_BLOCK_BYTES:
            # 32 legs, one vector each, within one L1-sized block (after a two-block pass)
            _radix32_pass(a, h, lanes)
            h *= 32
        elif left == 16 and stop * a.itemsize <= L1_BLOCK_BYTES:
            # 16 legs within one L1-sized block; across a whole row, 16 streams a
            # power-of-two stride apart thrash the L1 sets (measured 2x slower)
            _radix16_pass(a, h, lanes)
            h *= 16
        elif left == 16:
            _radix4_pass(a, h, lanes)
            h *= 4
        else:
            _radix8_pass(a, h, lanes)
            h *= 8


@njit(cache=True)
def _quarters_radix32(row, part, reg, lanes, a, ahead):
    """The radix-32 pass (levels ``reg .. 32 reg``) on each quarter of a 32 KiB ``row`` in L1,
    each of its calls prefetching into L2 the four ``reg``-value runs that the first pass will read
    in turn from the row at ``a[ahead]``, two rows on: the whole of that row, over this pass.

    The pass over memory then finds that row in L2, and memory works while this pass computes,
    which it did not before. Same bits; paired against the kernel without it
    (``fwht_kernel_ab.py``, 64 MiB, one thread, Zen 4, 11 repeats; the row after this one is
    prefetched into L1 by the first pass, as before): float64 2^12 1.26x on numpy's 16-byte-off
    rows and 1.30x on 64-byte-aligned ones, float32 2^13 1.16x and 1.24x, float32 12*2^13 1.09x.
    In a scratch copy of the loop, the next row instead (and no prefetch in the first pass)
    1.15-1.29x; the first pass's prefetch for reading rather than writing, 0.98-1.02x."""
    c = 0
    for j in range(0, row.size, part):
        b = row[j : j + part]
        for i in range(0, reg, max(1, VECTORS // 32) * lanes):
            _radix32_vectors(b, i, reg)
            for q in range(4):
                _prefetch_to_l2(a, ahead + q * part + c * reg)
            c += 1


@njit(cache=True)
def _block_levels(b, h, stop, lanes, a, nxt, runs, run, ahead, k):
    """``_levels(b, h, stop, lanes)`` on one L1 block ``b`` of a long row of the flat ``a``, and,
    where those levels are two radix-16 passes, a prefetch into L2 of the next row beside them.

    The next row's first pass reads ``runs`` (2 or 4) runs ``run`` values apart from
    ``a[nxt]``, all of them a step at a time. Call ``k`` of the passes here (counted over the row's
    blocks; the new count is returned) prefetches the next ``NEXT_ROW_PREFETCH_STEP`` bytes of
    that order, the runs in turn, up to ``ahead`` values into each.
    """
    if stop // h != 256 or stop * b.itemsize > L1_BLOCK_BYTES:
        _levels(b, h, stop, lanes)
        return k
    step = NEXT_ROW_PREFETCH_STEP // b.itemsize
    shift = runs >> 1  # runs is 2 or 4: shifts and masks, no division in the loop
    for _ in range(2):
        for j in range(0, b.size, 16 * h):
            for i in range(j, j + h, max(1, VECTORS // 16) * lanes):
                _radix16_vectors(b, i, h)
                at = (k >> shift) * step
                if at < ahead:
                    _prefetch_step_to_l2(a, nxt + (k & (runs - 1)) * run + at)
                k += 1
        h *= 16
    return k


@njit(cache=True)
def _short_rows(a, n, reg, scale):
    """All levels of the length-``n`` rows of ``a`` times ``scale`` (first-pass factors), ``n`` below
    one in-register block of ``reg`` values: whole blocks of rows in registers, a last partial
    block in scalar code."""
    whole = a.size - a.size % reg
    for k in range(0, whole, reg):
        if n == 2:
            _wht_rows_of_2(a, k, scale)
        elif n == 4:
            _wht_rows_of_4(a, k, scale)
        elif n == 8:
            _wht_rows_of_8(a, k, scale)
        elif n == 16:
            _wht_rows_of_16(a, k, scale)
        elif n == 32:
            _wht_rows_of_32(a, k, scale)
        else:
            _wht_rows_of_64(a, k, scale)
    _scale(a[whole:], _factors_at(scale, whole))
    _small_levels(a[whole:], n)


@njit(cache=True)
def _small_levels(a, n):
    """All levels of the length-``n`` rows of ``a`` (``n`` below one in-register block): scalar code."""
    for j in range(0, a.size, n):
        h = 1
        while h < n:
            for k in range(j, j + n, 2 * h):
                for i in range(k, k + h):
                    x0 = a[i]
                    x1 = a[i + h]
                    a[i] = x0 + x1
                    a[i + h] = x0 - x1
            h *= 2


# no software prefetch in these two first passes over a group of rows: the hardware's
# stream prefetch serves them, and one 4 KiB ahead cost (same bits, paired A/B on Zen 4, 21
# repeats): float64 2^11 1.09-1.11x, 2^7-2^9 1.10-1.14x, 2^6 and 2^10 1.03-1.05x, float32
# 2^7, 2^8, 2^12 1.03-1.05x, 12*2^6 1.03x faster without it, nothing slower


@njit(cache=True)
def _in_register_levels(a, reg, scale):
    for k in range(0, a.size, reg):
        _wht_in_registers(a, k, scale)


@njit(cache=True)
def _two_block_levels(a, reg, scale):
    for k in range(0, a.size, 2 * reg):
        _split_blocks_2(a, k, reg, scale)


# The factors of a first pass (``scale``) are a float, None for none, or signs (S, c): int8 +-1
# S and a float c (None for 1), that multiply the flat array elementwise, periodically:
# a[i] * S[i % S.size] * c, S.size a multiple of the row length (the signs of one row of a
# power of two, or of all of the rows of a group of composite rows). The kernels index S as
# they index the rows, so the drivers hand them views of S at the row's offset (_factors_at)
# or S repeated to the length of a group (_group_factors). These helpers are numba-only; the
# type of ``scale`` picks the code.


def _scale(a, scale):
    """The flat ``a`` times ``scale`` (first-pass factors, see above), elementwise."""


@overload(_scale)
def _scale_by_type(a, scale):
    if isinstance(scale, types.NoneType):
        return lambda a, scale: None
    if isinstance(scale, types.BaseTuple):

        def by_signs(a, scale):
            # _times_each_row's loop, but a last part may be shorter than the signs (the tail
            # of _short_rows); _times_each_row itself runs whole rows to a constant count, which
            # the inverse's pass over each group ran 0.96-0.97x without (float64 2^8, 2^10)
            signs, c = scale
            for r in range(0, a.size, signs.size):
                part = a[r : r + signs.size]  # a slice view: the loop vectorizes
                for i in range(part.size):
                    part[i] *= signs[i]
            _scale(a, c)  # None: nothing

        return by_signs

    def by_scalar(a, scale):
        for i in range(a.size):
            a[i] *= scale

    return by_scalar


def _factors_at(scale, i):
    """The factors of the flat array from index ``i`` on (a view; a float or None as it is)."""


@overload(_factors_at)
def _factors_at_by_type(scale, i):
    if isinstance(scale, types.BaseTuple):
        return lambda scale, i: (scale[0][i % scale[0].size :], scale[1])
    return lambda scale, i: scale


def _group_factors(scale, size, total):
    """Factors that :func:`_factors_at` can hand out whole for groups of ``size`` values of a
    flat array of ``total``: F repeated to length ``size`` where F is shorter than both (its
    size then divides ``size``); otherwise F, or the float or None, as it is."""


@overload(_group_factors)
def _group_factors_by_type(scale, size, total):
    if not isinstance(scale, types.BaseTuple):
        return lambda scale, size, total: scale

    def tiled(scale, size, total):  # S not empty
        signs, c = scale
        if signs.size >= size or signs.size >= total:
            return scale
        out = np.empty(size, dtype=signs.dtype)
        for j in range(0, size, signs.size):
            out[j : j + signs.size] = signs
        return (out, c)

    return tiled


@njit(cache=True)
def _int8_signs(v):
    """The +-1 values of ``v`` as int8."""
    out = np.empty(v.size, dtype=np.int8)
    for i in range(v.size):
        out[i] = 1 if v[i] > 0 else -1
    return out


@njit(cache=True)
def _sylvester_rows(a, n, reg, block, scale):
    """``a <- scale * H_n a`` on each of the length-``n`` rows stored back to back in the flat ``a``.

    ``n`` a power of two. Rows up to ``block`` long are transformed a group of
    whole rows at a time (``ROW_GROUP_BYTES``, or one row; no per-row work: every
    pass runs over the group).
    Longer rows: one pass with the first levels and the widest one or two, then
    the rest of the levels block by block (32 KiB rows: quarter by quarter), then any
    levels still left across blocks. The first pass over memory multiplies what it loads
    by ``scale``; at ``scale == 1`` its kernels are compiled without the multiply.
    """
    if scale == 1:
        _sylvester_levels(a, n, reg, block, None)
    else:
        _sylvester_levels(a, n, reg, block, scale)


@njit(cache=True)
def _sylvester_levels(a, n, reg, block, scale):
    """``a <- H_n (scale * a)`` row by row, as :func:`_sylvester_rows`, with ``scale`` a float,
    ``None`` for none, or int8 signs with their factor (those of a randomized transform, and
    its scale), periodic over the flat ``a`` (see :func:`_scale`). Each type compiles its own
    code: the multiply by a broadcast value, by the loaded signs, or no trace of it."""
    if n == 1:
        _scale(a, scale)
        return
    if n < reg:
        group = ROW_GROUP_BYTES // a.itemsize
        factors = _group_factors(scale, group, a.size)
        for j in range(0, a.size, group):
            _short_rows(a[j : j + group], n, reg, _factors_at(factors, j))
        return
    lanes = VECTOR_BYTES // a.itemsize
    if n <= block:
        group = max(n, ROW_GROUP_BYTES // a.itemsize)
        factors = _group_factors(scale, group, a.size)
        for j in range(0, a.size, group):
            b = a[j : j + group]
            f = _factors_at(factors, j)
            # 1 + log2(reg) levels in one pass: the whole row at n = 2 * reg (a radix-2 pass
            # fewer: float32 2^7 1.12-1.37x, float64 2^6 1.41-1.43x, float32 12*2^7 1.05-1.09x),
            # 4 left for one radix-16 pass at n = 32 * reg, and 5 for one radix-32 pass at
            # n = 64 * reg (2 passes instead of 3: float32 2^12 1.10-1.19x and float64 2^11
            # 1.03-1.17x in most runs on Zen 4, 0.83-0.92x in the disturbed ones; also on a
            # 16-register AVX2 target, NUMBA_CPU_NAME=haswell: 1.10-1.11x and 1.00-1.14x)
            if n == 2 * reg or n == 32 * reg or n == 64 * reg:
                _two_block_levels(b, reg, f)
                _levels(b, 2 * reg, n, lanes)
            else:
                _in_register_levels(b, reg, f)
                _levels(b, reg, n, lanes)
        return
    if n == 128 * reg:
        # 32 KiB rows (float32 2^13, float64 2^12): 4 whole in-register blocks a quarter row
        # apart with the 2 levels across them, then one radix-32 pass in L1 on each quarter,
        # 2 passes instead of 3 (same-process A/B on Zen 4: float32 1.05-1.08x in four runs,
        # float64 0.99-1.26x; on a 16-register target 1.02x and 1.05x). Eight blocks an eighth
        # of a 64 KiB row apart measured 0.91x and 0.98x, with prefetching 0.73-0.78x.
        # The first pass prefetches the next row's four runs as far as it has come in this
        # row's, a whole row ahead (same bits; same-process A/B, 64 MiB, one thread, Zen 4:
        # float64 2^12 1.08-1.10x, float32 2^13 1.03-1.07x, float32 12*2^13 1.07x). Closer
        # (1-4 KiB ahead in each run) it lost, 0.88-0.98x; so did a row ahead for longer rows
        # (0.88-1.00x) and the 8-run first pass of 64 KiB rows with it (0.75-0.83x).
        part = n // 4
        for r in range(0, a.size, n):
            row = a[r : r + n]
            factors = _factors_at(scale, r)
            for i in range(0, part, reg):
                for q in range(4):
                    _prefetch(a, r + n + q * part + i)
                _split_blocks_4(row, i, part, factors)
            _quarters_radix32(row, part, reg, lanes, a, r + 2 * n)
        return
    # longer rows (and 2-block rows where a block holds other than 64 in-register blocks,
    # which the default settings do not give): the first pass over memory does the first
    # levels of 2 or 4 runs a quarter (or half) row apart and the 1 or 2 levels across them,
    # then every block gets its remaining levels in cache, then any levels left across blocks
    # (one pass fewer than whole blocks first and all levels across blocks last); the passes
    # in L1 prefetch the next row's runs into L2 (up to NEXT_ROW_PREFETCH_BYTES of it)
    parts = 2 if n == 2 * block else 4
    span = reg // parts
    quarter = n // parts
    ahead = min(quarter, NEXT_ROW_PREFETCH_BYTES // a.itemsize // parts)
    for r in range(0, a.size, n):
        row = a[r : r + n]
        factors = _factors_at(scale, r)
        for i in range(0, quarter, span):
            if parts == 2:
                _split_row_2(row, i, quarter, factors)
            else:
                _split_row_4(row, i, quarter, factors)
        k = 0
        for j in range(0, n, block):
            k = _block_levels(row[j : j + block], span, block, lanes, a, r + n, parts, quarter, ahead, k)
        if quarter > block:
            _levels(row, block, quarter, lanes)


@njit(cache=True)
def _sylvester_row(a, reg, block):
    """``a <- H_p a`` for ``p = a.size`` a power of two (unnormalized)."""
    _sylvester_rows(a, a.size, reg, block, 1.0)


# ---- the dense H_m part ----


@njit(cache=True)
def _group_table(a, p, c0, w, table):
    """For columns ``c0:c0+w`` and every group of 4 rows of the ``(m, p)`` matrix ``a``,
    the 8 signed sums ``z0 +- z1 +- z2 +- z3`` (code ``b1 + 2 b2 + 4 b3``, bit set = minus).
    ``w`` a multiple of one run of :func:`_sum_table_rows` (so of :func:`_group_sums`'s too)."""
    ngroups = table.shape[0]
    tw = table.shape[2]
    flat = table.reshape(table.size)
    run = GROUP_COLUMNS * VECTOR_BYTES // a.itemsize
    for q in range(ngroups):
        for k in range(0, w, run):
            _group_sums(a, 4 * q * p + c0 + k, p, flat, q * 8 * tw + k, tw)


@njit(cache=True)
def table_offsets(codes, w):
    """Where the Four-Russians product (:func:`_dense_part`) reads: element offsets into the
    flat ``(ngroups, 8, w)`` table of the entry ``codes[i, q]`` of group ``q``, row by row."""
    m, ngroups = codes.shape
    offsets = np.empty(m * ngroups, dtype=np.int64)
    for i in range(m):
        for q in range(ngroups):
            offsets[i * ngroups + q] = (q * 8 + codes[i, q]) * w
    return offsets


@njit(cache=True)
def _dense_part(a, p, codes, signs, w, table, offsets, dst, d0, sub, stride, limit):
    """``H_m a`` for ``a`` read as an ``(m, p)`` matrix, on its first ``limit`` columns,
    ``H_m`` given by group codes, written to ``dst``.

    Four-Russians scheme: row ``i`` of ``H_m`` restricted to rows ``4q..4q+3``
    is ``signs[i*ngroups + q]`` times one of 8 sign patterns (``codes[i, q]``), so the
    product costs 14 vector additions per group plus ``m/4`` (not ``m``)
    multiply-adds per output element. ``signs`` may carry a scale too. ``offsets`` is
    :func:`table_offsets` of ``codes`` and ``w`` (the table's last axis); the columns
    go ``w`` at a time, ``VECTORS`` vectors per call of :func:`_sum_table_rows`, so ``w``
    and ``limit`` are multiples of that run (``hadamard._fwht._column_block`` and the
    drivers see to it: powers of two of at least one run).

    Output ``(i, c)`` goes to ``dst[d0 + (c // sub) * stride + i * sub + c % sub]``:
    ``dst = a, d0 = 0, sub = p`` is in place; a bundle (:func:`_bundled_rows`) with
    ``sub`` its sub-row length and ``stride`` the rows' length writes straight back to
    the rows (``sub`` a multiple of one run of registers, so no run straddles two).
    """
    m, ngroups = codes.shape
    run = IN_REGISTER_BYTES // a.itemsize
    flat = table.reshape(table.size)
    for c0 in range(0, limit, w):
        width = min(w, limit - c0)
        _group_table(a, p, c0, width, table)
        for i in range(m):
            for k in range(0, width, run):
                c = c0 + k
                _sum_table_rows(flat, offsets, signs, i * ngroups, ngroups, k, dst, d0 + (c // sub) * stride + i * sub + c % sub)


REGISTER_PRODUCT_MAX_M = 172
"""The largest ``m`` whose ``H_m`` product is compiled as straight-line code (its size, and
the compile time, grow as ``m**2``: 1.6 s for ``m = 172``, once per machine)."""
REGISTER_PRODUCT_ROW_BYTES = 32768
"""Rows up to this many bytes (a 32 KiB L1d) take the straight-line product whatever ``m``.
Longer rows, against the table (same-process A/B, 64 MiB float32, Zen 4): 24-38 KiB rows
1.05-1.50x, but 44-60 KiB rows of ``m = 28, 44, 60`` 0.69-0.94x: their ``m`` sub-rows, a
power-of-two stride apart, need more lines of one L1 set than it has ways."""
REGISTER_PRODUCT_LARGE_M = 100
REGISTER_PRODUCT_LARGE_M_SUB_ROW_BYTES = 1024
"""From ``m = REGISTER_PRODUCT_LARGE_M`` on, rows of any length take the straight-line
product when their sub-rows are at most this long: ``m/4`` additions per value loaded hide
the reloads (float32 100x256 1.07x, 140x64 1.18x, 172x64 1.27x, 172x256 1.08x; float64
172x64 1.15x); 2 and 4 KiB sub-rows were 0.83-0.95x. Matrices with circulant blocks
(:func:`circulant_form`) take it on sub-rows of any length: their product reads each
input once, so the crowded L1 sets cost little (float32 172x1024 1.36-1.62x against the table;
92x1024, below ``REGISTER_PRODUCT_LARGE_M``, 0.96x)."""


def group_codes(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The +-1 matrix ``h`` (``m x m``, ``m`` a multiple of 4) in the form the Four-Russians
    products read, ``(codes, gsigns)`` of shape ``(m, m/4)``:
    ``h[i, 4q + k] = gsigns[i, q] * (-1)^(bit k-1 of codes[i, q])`` for ``k = 1, 2, 3`` (and
    ``gsigns[i, q]`` for ``k = 0``), ``codes[i, q]`` the index of the sum of
    :func:`_signed_sums` that row ``i`` takes from group ``q``."""
    g = np.asarray(h).reshape(h.shape[0], h.shape[1] // 4, 4)
    first = g[:, :, 0]
    codes = ((g[:, :, 1:] != first[:, :, None]) * np.array([1, 2, 4])).sum(axis=2).astype(np.int64)
    return codes, np.ascontiguousarray(first)


def _product_kind(m: int, transposed: bool, rows_in_l1: bool = False) -> int:
    """The compile-time constant that names ``H_m`` (or its transpose) to :func:`_hm_columns`,
    and whether its rows fit in L1 where that changes the product (:func:`circulant_product`)."""
    in_l1 = bool(rows_in_l1) and _straight_line_first(m, circulant_form_blocks(m))
    return 4 * m + 2 * int(in_l1) + int(transposed)


def _straight_line_first(m: int, blocks: int) -> bool:
    """Whether rows of ``H_m`` that fit in L1 take the straight-line code rather than the loop of
    a circulant form of ``blocks`` blocks: for forms of 2 blocks, where there is such code
    (:func:`circulant_product`)."""
    return 0 < blocks < 4 and m <= REGISTER_PRODUCT_MAX_M


def _hm_network(builder, xs, h):
    """Emit ``H @ xs`` for the LLVM vectors ``xs`` and the +-1 matrix ``h`` (``m x m``, ``m`` a
    multiple of 4): the Four-Russians scheme of :func:`_dense_part` with the codes and signs
    known when compiling, so a term is one addition or subtraction of a table entry held in
    a register (no table in memory, no multiply by a sign). Each output sums its positive
    and its negative terms as two balanced trees (short dependency chains)."""
    tables = [_signed_sums(builder, *xs[4 * q : 4 * q + 4]) for q in range(len(xs) // 4)]
    codes, gsigns = group_codes(h)
    out = []
    for code_row, sign_row in zip(codes, gsigns):
        plus = [tables[q][c] for q, (c, s) in enumerate(zip(code_row, sign_row)) if s > 0]
        minus = [tables[q][c] for q, (c, s) in enumerate(zip(code_row, sign_row)) if s < 0]
        out.append(_signed_tree_sum(builder, plus, minus))
    return out


class CirculantForm(NamedTuple):
    """``H_m`` (or its transpose) as ``K`` blocks of ``w`` indices whose ``K x K`` blocks are
    circulant, plus a border of rows and columns (:func:`circulant_form`).

    Block ``j``'s element ``s`` is index ``index[j][s]`` of the matrix; block ``(i, j)`` is
    ``f_ij[(s - r) mod w]`` at ``(r, s)``, so output ``r`` of block row ``i`` is the same sum
    for every ``r``, shifted by ``r``: ``sum sign * T[r + t][entry]`` over ``terms[i]``, plus
    ``bias[i]`` (the border columns, constant down a block row). Table row ``T[u]`` holds, for
    each group of 4 ``(block, shift)``, the 8 signed sums (:func:`_signed_sums`) of its inputs
    ``x_j[(u + shift) mod w]``, then ``x_j[u]`` for each ``j`` in ``singles``: the inputs that
    the groups' translates leave out. The border rows are sums of whole blocks (``border_rows``:
    a sign per block, then a sign per border index).
    """

    w: int
    index: tuple  # K tuples of w matrix indices
    border: tuple  # matrix indices outside the blocks
    groups: tuple  # groups of 4 (block, shift)
    singles: tuple  # blocks whose single inputs follow the groups' sums in a table row
    terms: tuple  # per block row: ((t, entry, sign), ...)
    bias: tuple  # per block row: ((border position, sign), ...)
    border_rows: tuple  # per border index: ((sign per block), (sign per border index))


def _is_circulant(block: np.ndarray) -> bool:
    return all((block[r] == np.roll(block[0], r)).all() for r in range(block.shape[0]))


CIRCULANT_BLOCK_TARGET = 24
"""Paley I's reindexed core can be cut into any even number ``K`` of blocks that divides
``q - 1``: the ``K`` nearest this block size ``w = (q - 1) / K`` is tried first (at least 6
blocks of at least 8; then 2 blocks). Same-process, float32, 64 MiB, one thread, Zen 4, against
2 blocks: 140x64 (6 of 23) 1.17x, 164x64 (6 of 27) 1.16x, 132x64 (10 of 13) 1.15x, 252x64 (10
of 25) 1.16x; at 212x64, 10 blocks of 21 took 1.21 ns per element, 6 of 35 1.30 and 14 of 15
1.28 (2 of 105: 1.48)."""


def _paley1_blocks(q: int) -> list[int]:
    """Block counts to try for Paley I over GF(q), ``q = 3 mod 4``: the even divisors ``K >= 6``
    of ``q - 1`` with blocks of at least 8, nearest ``CIRCULANT_BLOCK_TARGET`` first, then 2."""
    many = [k for k in range(6, (q - 1) // 8 + 1, 2) if (q - 1) % k == 0]
    return sorted(many, key=lambda k: abs((q - 1) // k - CIRCULANT_BLOCK_TARGET)) + [2]


def _circulant_layouts(m: int):
    """Candidate ``(border, index)`` for :func:`circulant_form`.

    * Williamson's array: 4 blocks of ``m / 4`` consecutive indices, no border.
    * Paley I over ``q = m - 1`` (index ``1 + x`` for the code ``x`` of an element of GF(q), 0
      for infinity): reindexed by the powers ``x = g^(Ka + rho)`` of a generator ``g`` of GF(q)*
      (Rader's reindexing: ``chi(g^j - g^i) = chi(g)^i chi(g^(j-i) - 1)``, circulant in
      ``j - i`` up to a sign that is constant on each residue class ``rho`` when ``K`` is
      even), ``K`` from :func:`_paley1_blocks`, ``w = (q - 1) / K``; border: infinity and 0.
    * Paley II over ``q = m / 2 - 1`` (indices ``2 + 2x + e``, ``e`` in {0, 1}): the same
      reindexing with ``K = 4`` classes (``4`` divides ``q - 1``) for each ``e``, so 8 blocks
      of ``(q - 1) / 4``; border: infinity and 0, both ``e``.
    """
    if m % 4 == 0 and m >= 32:
        w = m // 4
        yield (), tuple(tuple(range(j * w, (j + 1) * w)) for j in range(4))
    q = m - 1
    if q % 4 == 3 and q > 7 and prime_power(q):
        powers = powers_of_x(q)
        for k in _paley1_blocks(q):
            yield (0, 1), tuple(tuple(1 + powers[k * a + rho] for a in range((q - 1) // k)) for rho in range(k))
    q = m // 2 - 1
    if m % 2 == 0 and q % 4 == 1 and q > 13 and prime_power(q):
        powers = powers_of_x(q)
        yield (0, 1, 2, 3), tuple(tuple(2 + 2 * powers[4 * a + rho] + e for a in range((q - 1) // 4))
                                  for e in range(2) for rho in range(4))


def circulant_form(h: np.ndarray) -> CirculantForm | None:
    """The :class:`CirculantForm` of the +-1 matrix ``h``, or ``None`` if it has none.

    The structure is checked in the matrix itself, entry for entry, for each layout of
    :func:`_circulant_layouts`; a test rebuilds ``h`` from the form.
    """
    m = h.shape[0]
    for border, index in _circulant_layouts(m):
        k, w = len(index), len(index[0])
        idx = [np.array(ix) for ix in index]
        blocks = [[h[np.ix_(idx[i], idx[j])] for j in range(k)] for i in range(k)]
        if not all(_is_circulant(b) for row in blocks for b in row):
            continue
        bias_cols = [h[idx[i]][:, list(border)] for i in range(k)]
        edge = [h[b] for b in border]
        if not (all((c == c[0]).all() for c in bias_cols)
                and all((row[idx[j]] == row[idx[j][0]]).all() for row in edge for j in range(k))):
            continue
        # groups of 4 inputs: 4 blocks at one shift (their translates cover every offset);
        # 2 blocks left over go as one group at 2 shifts `span` apart after the first
        # `lead` offsets, which are singles (so no term of theirs reaches past T[w + span])
        groups = [(tuple((c + j, 0) for j in range(4)), w) for c in range(0, k - k % 4, 4)]
        lead = 0
        if k % 4:
            span = w // 2
            lead = w - 2 * span
            groups.append((tuple((j, lead + d * span) for d in range(2) for j in range(k - 2, k)), span))
        singles = tuple(range(k - 2, k)) if lead else ()
        first = [[blocks[i][j][0] for j in range(k)] for i in range(k)]
        terms = []
        for i in range(k):
            row = []
            for number, (group, span) in enumerate(groups):
                signs = np.array([[first[i][j][(t + d) % w] for j, d in group] for t in range(span)])
                codes, gsigns = group_codes(signs)
                row += [(t, 8 * number + int(codes[t, 0]), int(gsigns[t, 0])) for t in range(span)]
            row += [(t, 8 * len(groups) + singles.index(j), int(first[i][j][t])) for t in range(lead) for j in singles]
            terms.append(tuple(row))
        groups = tuple(group for group, _ in groups)
        bias = tuple(tuple((b, int(c[0, b])) for b in range(len(border))) for c in bias_cols)
        border_rows = tuple((tuple(int(row[idx[j][0]]) for j in range(k)), tuple(int(row[b]) for b in border))
                            for row in edge)
        return CirculantForm(w, index, tuple(border), groups, singles, tuple(terms), bias, border_rows)
    return None


def circulant_product(h: np.ndarray, rows_in_l1: bool = False):
    """:func:`circulant_form` of ``h`` where :func:`_hm_columns` runs ``H_m`` (or its
    transpose) as the loop of :func:`_emit_circulant_product`, else ``None``.

    Below ``REGISTER_PRODUCT_LARGE_M`` the straight-line code fits the micro-op cache (92x64:
    0.91-1.03x against the loop). A form of 2 blocks (Paley I's where ``(q - 1)/2`` is prime)
    has a table row serve 2 output rows, not 4 to 10: on rows that fit in L1 (``rows_in_l1``)
    it ran 0.85-1.07x against the straight-line code (float32 108x16 0.85x, 108x64 1.04x, and
    five shapes of orders that now take 6 or 10 blocks), so those keep it; on longer rows with
    sub-rows up to 1 KiB, 1.10-1.25x.
    """
    if not REGISTER_PRODUCT_LARGE_M <= h.shape[0] <= CIRCULANT_MAX_M:
        return None
    form = circulant_form(h)
    if form is not None and rows_in_l1 and _straight_line_first(h.shape[0], len(form.index)):
        return None
    return form


@lru_cache(maxsize=None)
def circulant_form_blocks(m: int) -> int:
    """Blocks of the circulant form the product of ``H_m`` (and of its transpose) would take,
    0 if none (below ``REGISTER_PRODUCT_LARGE_M``, above ``CIRCULANT_MAX_M``, or no form)."""
    if not REGISTER_PRODUCT_LARGE_M <= m <= CIRCULANT_MAX_M:
        return 0
    form = circulant_form(_hadamard_matrix(m))
    return 0 if form is None else len(form.index)


CIRCULANT_MAX_M = 1024
"""The largest ``m`` whose product is compiled as the circulant loop (its body has about ``4m``
additions; compiling it took about 20 s at ``m = 924``, once per machine and matrix). Above
``REGISTER_PRODUCT_MAX_M`` it is the only product besides the table, which it beat at every
shape measured: Paley II over a prime (8 blocks), float32 196x64 2.35x, 204x64 2.49x, 276x64
2.66x, 516x64 3.35x, 924x32 2.43x, 924x4 1.81x, 196x1024 1.92x, float64 196x64 2.53x; Paley I
with 2 blocks, float32 180x64 1.65x, 212x64 1.77x, 228x128 1.59x, 180x16 1.58x, 212x8 1.88x,
228x32 1.60x, 180x512 1.25x, 228x1024 1.11x, float64 180x64 1.51x, 180x8 1.94x, 252x16 1.85x,
212x256 1.63x; with 10 blocks, 212x64 2.10x, 252x64 1.97x (same-process A/B, 64 MiB, one
thread, Zen 4)."""


CIRCULANT_CHAINS = 16
"""Outputs per pass of the loop of :func:`_emit_circulant_product`: consecutive rows of each
block row (4 of each of Williamson's 4), 16 independent chains of additions, and a table entry
that several of them take is loaded once (at ``m = 172``: 196 loads for the 688 terms of a
pass; 180 for 344 at 2 rows). Same-process A/B, 64 MiB, one thread, Zen 4, against one row
per pass summed as trees: float32 172x64 1.28x, 116x64 1.22x, 156x16 1.33x, float64 172x64
1.28x; 172x1024 0.96x (its 16 output rows, 4 KiB apart, share one L1 set). 8 chains: 1.08x;
32: 1.25x (0.85x at 172x1024)."""


@contextmanager
def _maybe(builder, conditional, predicate):
    """Code emitted in the block runs where ``predicate`` holds if ``conditional``, else always."""
    if conditional:
        with cgutils.if_likely(builder, predicate):
            yield
    else:
        yield


def _emit_circulant_product(builder, data, vty, align, s0, stride, form, splat):
    """``H_m`` on the ``m`` vectors ``data[s0 + i * stride]`` for a matrix with a
    :class:`CirculantForm`, times ``splat`` (finite, non-zero).

    The table ``T[u]`` of every ``u < w`` goes onto the stack, its first rows written again
    after the last so that ``T[r + t]`` needs no wrap-around. Then a loop over ``r``, a few
    rows of every block row at a time, whose body is the same for every pass: code that fits
    the micro-op cache, where straight-line code for every output (about ``m**2 / 4``
    instructions) does not. Each output is a chain of additions, every other one an FMA by a
    run-time 1 so that the two FMA pipes add beside the two adders (without it: 1.06x instead
    of 1.28x; with two in three: 1.24x). The border rows are sums of whole blocks, which the
    first loop adds up on the way.
    """
    w, k = form.w, len(form.index)
    entries = 8 * len(form.groups) + len(form.singles)
    i64 = ir.IntType(64)
    reach = max(t for row in form.terms for t, _, _ in row) + 1
    table = cgutils.alloca_once(builder, vty, size=ir.Constant(i64, (w + reach) * entries))
    wide = ir.Constant(i64, w)

    def ptr(index):
        return builder.bitcast(builder.gep(data, [builder.add(s0, builder.mul(stride, index))]), vty.as_pointer())

    # block j's element s: an affine index where the blocks are runs (Williamson's), else
    # read from a constant array (Rader's reindexing of Paley's matrices)
    lookups = []
    for j, ix in enumerate(form.index):
        if ix == tuple(range(ix[0], ix[0] + w)):
            lookups.append(ix[0])
        else:
            array = ir.ArrayType(i64, w)
            table_of_indices = ir.GlobalVariable(builder.module, array, name=builder.module.get_unique_name("circulant_index"))
            table_of_indices.global_constant = True
            table_of_indices.linkage = "internal"
            table_of_indices.initializer = ir.Constant(array, list(ix))
            lookups.append(table_of_indices)

    def block_ptr(j, s):
        found = lookups[j]
        if isinstance(found, int):
            return ptr(builder.add(s, ir.Constant(i64, found)))
        return ptr(builder.load(builder.gep(found, [ir.Constant(i64, 0), s])))

    edge = [builder.load(ptr(ir.Constant(i64, b)), align=align) for b in form.border]
    totals = []
    if form.border:
        for _ in range(k):
            slot = cgutils.alloca_once(builder, vty)
            builder.store(ir.Constant(vty, None), slot)  # zeroinitializer
            totals.append(slot)
    with cgutils.for_range(builder, wide) as loop:
        u = loop.index
        values = []
        loaded = {}
        for group in form.groups:
            xs = []
            for j, shift in group:
                s = builder.add(u, ir.Constant(i64, shift))
                if shift:
                    s = builder.select(builder.icmp_unsigned(">=", s, wide), builder.sub(s, wide), s)
                xs.append(builder.load(block_ptr(j, s), align=align))
                if not shift:
                    loaded[j] = xs[-1]
            values += _signed_sums(builder, *xs)
        for j in range(k):
            if j not in loaded and (j in form.singles or totals):
                loaded[j] = builder.load(block_ptr(j, u), align=align)
        values += [loaded[j] for j in form.singles]
        for e, v in enumerate(values):
            slot = builder.add(builder.mul(u, ir.Constant(i64, entries)), ir.Constant(i64, e))
            builder.store(v, builder.gep(table, [slot]))
        # the first rows again after the last, so that T[r + t] needs no wrap-around
        with _maybe(builder, reach < w, builder.icmp_unsigned("<", u, ir.Constant(i64, reach))):
            for e, v in enumerate(values):
                slot = builder.add(builder.mul(builder.add(u, wide), ir.Constant(i64, entries)), ir.Constant(i64, e))
                builder.store(v, builder.gep(table, [slot]))
        for j, slot in enumerate(totals):
            builder.store(builder.fadd(builder.load(slot), loaded[j]), slot)
    one = builder.fdiv(splat, splat)  # 1, but no constant: LLVM would fold fma(v, 1, a) into a + v
    minus_one = builder.fneg(one)

    def signed(values):
        # sum of sign * v (a few terms, once per column); None for no terms
        plus, minus = [v for v, s in values if s > 0], [v for v, s in values if s < 0]
        return _signed_tree_sum(builder, plus, minus) if values else None

    bias = [signed([(edge[b], s) for b, s in row]) for row in form.bias]
    block_sums = [builder.load(slot) for slot in totals]
    border_out = [signed([(block_sums[j], s) for j, s in enumerate(per_block)] + [(edge[b], s) for b, s in enumerate(per_edge)])
                  for per_block, per_edge in form.border_rows]
    by_offset = []
    for row in form.terms:
        at = {}
        for t, entry, sign in row:
            at.setdefault(t, []).append((entry, sign))
        by_offset.append(at)

    def outputs(r0, rows):
        # outputs r0 .. r0 + rows - 1 of every block row, each a chain of additions; a table
        # entry that several of them take is loaded once
        base = builder.gep(table, [builder.mul(r0, ir.Constant(i64, entries))])
        acc = {(u, i): bias[i] for u in range(rows) for i in range(k) if bias[i] is not None}
        count = 0
        for d in range(reach + rows - 1):
            users = {}
            for u in range(rows):
                for i, at in enumerate(by_offset):
                    for entry, sign in at.get(d - u, ()):
                        users.setdefault(entry, []).append((u, i, sign))
            for entry, who in users.items():
                v = builder.load(builder.gep(base, [ir.Constant(i64, entries * d + entry)]))
                for u, i, sign in who:
                    a = acc.get((u, i))
                    if a is None:
                        acc[(u, i)] = v if sign > 0 else builder.fneg(v)
                    elif count % 2:
                        acc[(u, i)] = _fma(builder, v, one if sign > 0 else minus_one, a)
                    else:
                        acc[(u, i)] = builder.fadd(a, v) if sign > 0 else builder.fsub(a, v)
                    count += 1
        for (u, i), y in acc.items():
            builder.store(builder.fmul(y, splat), block_ptr(i, builder.add(r0, ir.Constant(i64, u))), align=align)

    rows = max(1, round(CIRCULANT_CHAINS / k))
    main = w - w % rows
    with cgutils.for_range_slice(builder, ir.Constant(i64, 0), ir.Constant(i64, main), ir.Constant(i64, rows)) as (r0, _):
        outputs(r0, rows)
    if w % rows:
        outputs(ir.Constant(i64, main), w % rows)
    for b, y in zip(form.border, border_out):
        builder.store(builder.fmul(y, splat), ptr(ir.Constant(i64, b)), align=align)


@intrinsic
def _hm_columns(typingctx, arr, start, p, scale, kind, narrow):
    """``scale * H_m`` (or its transpose) on one vector of columns of an ``(m, p)`` row, in place:
    the ``m`` vectors ``arr[start + i*p : ... + width]``, ``i < m``, ``width = lanes >> narrow``
    (``narrow`` a compile-time constant: 1 and 2 serve sub-rows shorter than a vector).

    ``kind`` must be a compile-time constant, :func:`_product_kind` of ``(m, transposed)``:
    the matrix is built into the code (:func:`_hm_network`). LLVM keeps what it can of the
    ``m`` inputs, ``m/4`` tables of 8 and ``m`` outputs in registers and spills the rest;
    even at ``m = 172`` that beat the table in memory. From ``REGISTER_PRODUCT_LARGE_M``
    on, a matrix of circulant blocks (Williamson's: ``m = 116, 156, 172``) is instead a
    loop whose body serves every output row (:func:`_emit_circulant_product`).
    """
    if not (isinstance(kind, types.IntegerLiteral) and isinstance(narrow, types.IntegerLiteral)
            and isinstance(arr, types.Array) and arr.dtype in (types.float32, types.float64)):
        return None
    m, flags = divmod(kind.literal_value, 4)
    rows_in_l1, transposed = divmod(flags, 2)
    h = _hadamard_matrix(m)
    h = h.T if transposed else h
    circulant = circulant_product(h, bool(rows_in_l1))
    sig = types.void(arr, start, p, scale, kind, narrow)

    def codegen(context, builder, signature, args):
        data, fty, lanes, vty, align = _vector_setup(context, builder, signature.args[0], args[0])
        lanes = max(1, lanes >> narrow.literal_value)
        vty = ir.VectorType(fty, lanes)
        i64 = ir.IntType(64)
        s0, stride = _as_i64(builder, args[1]), _as_i64(builder, args[2])
        splat = _splat(builder, context.cast(builder, args[3], signature.args[3], signature.args[0].dtype), vty)
        if circulant is not None:
            _emit_circulant_product(builder, data, vty, align, s0, stride, circulant, splat)
            return context.get_dummy_value()
        ptrs = [builder.bitcast(builder.gep(data, [builder.add(s0, builder.mul(stride, ir.Constant(i64, i)))]),
                                vty.as_pointer()) for i in range(m)]
        ys = _hm_network(builder, [builder.load(q, align=align) for q in ptrs], h)
        for q, y in zip(ptrs, ys):
            builder.store(builder.fmul(y, splat), q, align=align)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def _register_product_rows(x, start, stop, p, pre, post, scale, reg, block, kind):
    """Rows ``start:stop`` of ``x`` (2-D, C-contiguous), ``post * scale * (H_m (x) H_p) (pre * row)``,
    ``H_m`` as straight-line code (:func:`_hm_columns`, ``kind`` a compile-time constant).

    A group of whole rows (``ROW_GROUP_BYTES``, or one row) gets its ``H_p`` levels, then
    the ``H_m`` product column by column while the group is still in cache: one read of the
    rows from memory in all. Against the table of :func:`_dense_part` (through
    :func:`_bundled_rows` or :func:`_transform_row`) this was 1.7-2.4x faster for
    ``m = 12, 28, 36`` and 1.5-1.6x up to ``m = 172`` on rows in L1 (float32 and float64,
    64 MiB, Zen 4). Which rows come here is ``hadamard._fwht._register_product_fits``
    (see ``REGISTER_PRODUCT_ROW_BYTES``).
    """
    literally(kind)
    n = x.shape[1]
    lanes = VECTOR_BYTES // x.itemsize
    flat = x.reshape(x.size)
    rows = max(1, (ROW_GROUP_BYTES // x.itemsize) // n)
    # the signs ride on the first pass of the H_p levels, as its factors (for the rows of a
    # whole group: the levels run over the group's sub-rows as one flat array)
    signs = (_int8_signs(pre), None)
    if pre.size:
        signs = _group_factors(signs, rows * n, rows * n)
    for r0 in range(start, stop, rows):
        g = flat[r0 * n : min(stop, r0 + rows) * n]
        if pre.size:
            _sylvester_levels(g, p, reg, block, signs)
        else:
            _sylvester_levels(g, p, reg, block, None)
        if p >= lanes:
            for r in range(0, g.size, n):
                for c in range(0, p, lanes):
                    _hm_columns(g, r + c, p, scale, kind, 0)
        elif 2 * p >= lanes:
            for r in range(0, g.size, n):
                _hm_columns(g, r, p, scale, kind, 1)
        else:
            for r in range(0, g.size, n):
                _hm_columns(g, r, p, scale, kind, 2)
        if post.size:
            _times_each_row(g, n, post)


@njit(cache=True)
def _times_each_row(g, n, v):
    """Each length-``n`` row of the flat ``g`` times ``v``, elementwise."""
    for r in range(0, g.size, n):
        row = g[r : r + n]  # a slice view: computed indices would keep the loop scalar
        for i in range(n):
            row[i] *= v[i]


def register_product_drivers(m: int, transposed: bool, rows_in_l1: bool = False):
    """``(serial, parallel)`` drivers of :func:`_register_product_rows` for one ``H_m``
    (``rows_in_l1``: whether the rows they will take fit in L1, :func:`circulant_product`).

    ``serial(x, p, pre, post, scale, reg, block)`` and ``parallel(..., chunk)`` (``chunk``
    rows per task) take ``H_m`` as a constant of their own, so each ``(m, transposed)`` is
    compiled (and cached on disk: numba keys the cache by the closure's values) on first
    use only. Call once per ``(m, transposed)`` and keep the result; each call makes new
    dispatchers.
    """
    kind = _product_kind(m, transposed, rows_in_l1)

    @njit(cache=True)
    def serial(x, p, pre, post, scale, reg, block):
        _register_product_rows(x, 0, x.shape[0], p, pre, post, scale, reg, block, kind)

    @njit(cache=True, parallel=True)
    def parallel(x, p, pre, post, scale, reg, block, chunk):
        nrows = x.shape[0]
        ntasks = (nrows + chunk - 1) // chunk
        for t in prange(ntasks):
            _register_product_rows(x, t * chunk, min(nrows, (t + 1) * chunk), p, pre, post, scale, reg, block, kind)

    return serial, parallel


# ---- one row, and the batch drivers ----


@njit(cache=True)
def _transform_row(a, p, codes, signs, w, pre, post, scale, reg, block, table, offsets):
    """``a <- post * scale * (H_m (x) H_p) (pre * a)``; empty ``pre``/``post`` mean none
    (``pre`` as int8 signs, :func:`_int8_signs`).

    With a dense part and no ``post``, ``signs`` (:func:`_product_signs`) carry the scale.
    """
    n = a.size
    if pre.size:
        _sylvester_levels(a, p, reg, block, (pre, None))  # the signs ride on its first pass
    else:
        _sylvester_levels(a, p, reg, block, None)
    if codes.shape[1] > 0:
        _dense_part(a, p, codes, signs, w, table, offsets, a, 0, p, 0, p)
    if post.size:
        for i in range(n):
            a[i] *= scale * post[i]
    elif scale != 1 and codes.shape[1] == 0:  # else the scale was in the signs
        for i in range(n):
            a[i] *= scale


@njit(cache=True)
def _product_signs(gsigns, post, scale):
    """The group signs of :func:`_dense_part`, flat, times ``scale`` unless ``post`` signs
    follow (then the scale goes with them): the product's output is then final, with no
    pass of its own to scale it."""
    signs = gsigns.reshape(gsigns.size).copy()
    if not post.size:
        for j in range(signs.size):
            signs[j] *= scale
    return signs


@njit(cache=True)
def _gather_bundle(x, r0, count, m, p, sgn, scratch, width, span):
    """Rows ``r0:r0+count`` of ``x`` into the bundle scratch, sub-row ``i`` of row ``r`` at
    ``i * width + r * p``, through :func:`_gather_levels` (``sgn`` the signs or None)."""
    n = m * p
    # the sources are read once, from memory: prefetch ahead, as the first pass of the
    # power-of-two path does (16 KiB ahead against none: 1.07-1.16x at 12*2^5, 12*2^6, 36*2^4
    # in float32; 4 KiB against 16: 0.92-1.09x, mostly above 1; one bundle, 24-56 KiB, worse)
    ahead = PREFETCH_BYTES // x.itemsize
    for r in range(count):
        for i in range(m):
            for k in range(0, p, span):
                _prefetch(x, (r0 + r) * n + i * p + k + ahead)
                _gather_levels(x, (r0 + r) * n + i * p + k, sgn, i * p + k, scratch, i * width + r * p + k, span)


@njit(cache=True)
def _bundled_rows(x, start, stop, p, codes, gsigns, w, pre, post, scale, reg, block, bundle):
    """Rows ``start:stop`` of ``x``, ``bundle`` at a time, through a scratch laid out sub-row major;
    the ``H_m`` product runs on column blocks of ``w``.

    For short sub-rows (small ``p``) the passes of the ``H_m`` product over one
    row are a few vectors long and cost mostly their set-up.  The scratch holds
    sub-row ``i`` of ``bundle`` rows side by side, so each pass runs over
    ``bundle * p`` columns; the same operations in the same order as
    :func:`_transform_row`, so the result is bit-identical.
    """
    m = codes.shape[0]
    n = m * p
    lanes = VECTOR_BYTES // x.itemsize
    width = bundle * p
    w = min(width, w)
    scratch = np.zeros(m * width, dtype=x.dtype)  # zeros: a short last bundle leaves finite values behind
    table = np.empty((codes.shape[1], 8, w), dtype=x.dtype)
    offsets = table_offsets(codes, w)
    # sub-rows of at least one vector: the copy into the scratch does the in-register levels
    # on the way (1.08-1.29x against a copy and then the levels; shorter ones copy first)
    fused = p >= lanes
    span = min(p, reg)
    signs = _product_signs(gsigns, post, scale)
    # sub-rows of at least one run of the product's registers, and no signs after it: the
    # product writes its (scaled) output straight to the rows, with no copy out of the scratch
    direct = p >= VECTORS * lanes and not post.size
    flat = x.reshape(x.size)
    for r0 in range(start, stop, bundle):
        count = min(bundle, stop - r0)
        if fused:
            if pre.size:
                _gather_bundle(x, r0, count, m, p, pre, scratch, width, span)
            else:
                _gather_bundle(x, r0, count, m, p, None, scratch, width, span)
            if p > reg:
                _levels(scratch, reg, p, lanes)
        else:
            for r in range(count):
                row = x[r0 + r]
                for i in range(m):
                    src = row[i * p : (i + 1) * p]
                    dst = scratch[i * width + r * p : i * width + (r + 1) * p]
                    if pre.size:
                        sgn = pre[i * p : (i + 1) * p]
                        for k in range(p):
                            dst[k] = src[k] * sgn[k]
                    else:
                        for k in range(p):
                            dst[k] = src[k]
            _sylvester_rows(scratch, p, reg, block, 1.0)
        if direct:
            _dense_part(scratch, width, codes, signs, w, table, offsets, flat, r0 * n, p, n, count * p)
            continue
        _dense_part(scratch, width, codes, signs, w, table, offsets, scratch, 0, width, 0, width)
        for r in range(count):
            row = x[r0 + r]
            for i in range(m):
                src = scratch[i * width + r * p : i * width + (r + 1) * p]
                dst = row[i * p : (i + 1) * p]
                if post.size:
                    sgn = post[i * p : (i + 1) * p]
                    for k in range(p):
                        dst[k] = src[k] * (scale * sgn[k])
                else:  # the scale is in the signs
                    for k in range(p):
                        dst[k] = src[k]


@njit(cache=True)
def _signed_sylvester_rows(x, start, stop, pre, post, scale, reg, block):
    """Rows ``start:stop`` of ``x`` (2-D, C-contiguous, ``n = x.shape[1]`` a power of two),
    ``post * scale * H_n (pre * row)``; empty ``pre``/``post`` mean none.

    ``pre`` (as int8 signs) and ``scale`` are the factors of the first pass over memory (no
    pass of its own for the signs); ``post`` signs, which must come after the levels, go over
    each group of rows (``ROW_GROUP_BYTES``, or one row) while it is still in cache.
    """
    n = x.shape[1]
    flat = x.reshape(x.size)[start * n : stop * n]
    if not post.size:
        if pre.size:
            _sylvester_levels(flat, n, reg, block, (_int8_signs(pre), scale))
        else:
            _sylvester_rows(flat, n, reg, block, scale)
        return
    last = _times(post, scale)
    first = _int8_signs(pre)
    group = max(1, (ROW_GROUP_BYTES // x.itemsize) // n) * n
    for j in range(0, flat.size, group):
        g = flat[j : j + group]
        if pre.size:
            _sylvester_levels(g, n, reg, block, (first, None))
        else:
            _sylvester_levels(g, n, reg, block, None)
        _times_each_row(g, n, last)


@njit(cache=True)
def _times(v, scale):
    """``v * scale`` in ``v``'s dtype."""
    out = np.empty_like(v)
    for i in range(v.size):
        out[i] = v[i] * scale
    return out


@njit(cache=True)
def _rows(x, start, stop, p, codes, gsigns, w, pre, post, scale, reg, block):
    if codes.shape[1] == 0:
        _signed_sylvester_rows(x, start, stop, pre, post, scale, reg, block)
        return
    if p * BUNDLE_MIN <= BUNDLE_WIDTH:
        _bundled_rows(x, start, stop, p, codes, gsigns, w, pre, post, scale, reg, block, BUNDLE_WIDTH // p)
        return
    w = min(p, w)
    table = np.empty((codes.shape[1], 8, w), dtype=x.dtype)
    offsets = table_offsets(codes, w)
    signs = _product_signs(gsigns, post, scale)
    pre_signs = _int8_signs(pre)
    for r in range(start, stop):
        _transform_row(x[r], p, codes, signs, w, pre_signs, post, scale, reg, block, table, offsets)


@njit(cache=True)
def transform_serial(x, p, codes, gsigns, w, pre, post, scale, reg, block):
    """In place on the rows of ``x`` (2-D, C-contiguous), one thread."""
    _rows(x, 0, x.shape[0], p, codes, gsigns, w, pre, post, scale, reg, block)


@njit(cache=True)
def sylvester_serial(x, scale, reg, block):
    """``x <- scale * x @ H_p`` on the rows of ``x`` (2-D, C-contiguous, ``p`` a power of two), one thread."""
    _sylvester_rows(x.reshape(x.size), x.shape[1], reg, block, scale)


@intrinsic
def _like_elements(typingctx, arr, value):
    """``value`` converted to ``arr``'s element type (as ``np.float32(value)`` would round it)."""
    if not isinstance(arr, types.Array):
        return None
    sig = arr.dtype(arr, value)

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[1], signature.args[1], signature.return_type)

    return sig, codegen


@njit(
    [f"void({t}[{dims}::1], float64)" for t in ("float32", "float64") for dims in ("", ":, ", ":, :, ")],
    cache=True,
)
def sylvester_inplace(x, scale):
    """``x <- scale * x @ H_p`` on the last axis of ``x`` (1-, 2- or 3-D, C-contiguous, writeable,
    ``p = x.shape[-1]`` a power of two), one thread.

    The latency path: two arguments and fixed signatures, so that numba's dispatch is as
    short as it gets and any other input (dtype, layout, read-only) raises TypeError
    instead of compiling. ``scale`` is rounded to the element type first, as the
    general path does.
    """
    itemsize = x.itemsize
    _sylvester_rows(x.reshape(x.size), x.shape[-1], IN_REGISTER_BYTES // itemsize, L1_BLOCK_BYTES // itemsize,
                    _like_elements(x, scale))


@njit(cache=True, parallel=True)
def sylvester_parallel(x, scale, reg, block, chunk):
    """``x <- scale * x @ H_p`` on the rows of ``x`` (2-D, C-contiguous, ``p`` a power of two),
    ``chunk`` rows per parallel task, each task a run of back-to-back rows."""
    n = x.shape[1]
    nrows = x.shape[0]
    flat = x.reshape(x.size)
    ntasks = (nrows + chunk - 1) // chunk
    for t in prange(ntasks):
        _sylvester_rows(flat[t * chunk * n : min(nrows, (t + 1) * chunk) * n], n, reg, block, scale)


@njit(cache=True, parallel=True)
def transform_parallel(x, p, codes, gsigns, w, pre, post, scale, reg, block, chunk):
    """In place on the rows of ``x`` (2-D, C-contiguous), ``chunk`` rows per parallel task.

    A task allocates its scratch buffer once for all its rows.
    """
    nrows = x.shape[0]
    ntasks = (nrows + chunk - 1) // chunk
    for t in prange(ntasks):
        _rows(x, t * chunk, min(nrows, (t + 1) * chunk), p, codes, gsigns, w, pre, post, scale, reg, block)
