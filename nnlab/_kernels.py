"""Compiled training kernels (numba): the fast path of `nnlab.sgd.train`.

Plain SGD without weight decay fuses each step into the backward pass and keeps no state; every other
rule (momentum, nesterov, adam, adamw, SGD with decay: `_v_update`) keeps its state in arrays laid out
exactly like the parameters, and takes each update step's constants (learning rate, bias corrections)
from a table computed once in Python (`nnlab.sgd.OptimizerSpec.rates`), so every engine and layout
uses the same numbers.

They run the recursion of `nnlab.network.backprop` one sample at a time, with replicas as the innermost,
contiguous axis: params (C, P, LANES), C = ceil(R / LANES) chunks of LANES replicas (the last padded
with frozen dummies), P = the parameters of one replica, layer i's W_i (n_in * n_out, row-major) then
b_i (n_out). Every operation acts on the LANES replicas of a chunk at once through the vector type
below, so the SIMD units are full at any width, and every replica follows its own sample order.
Row q of an array (.., LANES) starts at flat offset q * LANES. Chunks run in parallel (prange).

Lanes never mix, and the per-lane arithmetic does not depend on LANES, on the lane or on the chunk, so
a replica's numbers depend only on its own initial weights, data, order and hyperparameters.

Numba does not vectorize the short lane loops by itself (it cannot prove that the arrays do not alias),
so the first section below defines `f64x_lanes` (f64x16), a numba type whose value is an LLVM
<LANES x double> vector held in registers, with loads, stores, arithmetic and the activations written
as LLVM IR. The IR has no fast-math flags: every FMA is spelled out and each lane gets the same IEEE
operations whatever LANES is.
(It lives in this file on purpose: numba's on-disk cache is invalidated by changes to the file that
defines a function, not by changes to the modules it imports.)
"""

from __future__ import annotations

import collections
import functools
import math

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.core.datamodel import models, register_default
from numba.extending import intrinsic, overload

from nnlab import machine

# ---------------------------------------------------------------------------------------------------
# The vector type.

# float64 lanes per vector, chosen for the machine (`nnlab.machine.lanes`: 16 with AVX-512, 8 without, or
# NNLAB_LANES): LLVM splits <LANES x double> into two registers either way, two independent chains.
LANES = machine.lanes()
_D = ir.DoubleType()
_I64 = ir.IntType(64)
_VT = ir.VectorType(_D, LANES)
_VI = ir.VectorType(_I64, LANES)


class F64xLanes(types.Type):
    """LANES float64 lanes held in registers."""

    def __init__(self) -> None:
        super().__init__(name=f"f64x{LANES}")


f64x_lanes = F64xLanes()


@register_default(F64xLanes)
class _F64xLanesModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VT)


def _intrinsic_fn(builder, name, n_args, vtype=_VT):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(vtype, [vtype] * n_args), name)


def _splat(value: float) -> ir.Constant:
    return ir.Constant(_VT, [value] * LANES)


def _ptr(context, builder, aryty, ary, off):
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.bitcast(builder.gep(data, [off]), _VT.as_pointer())


@intrinsic
def vload(typingctx, arr, off):
    """arr[off : off + LANES] as a vector (arr: contiguous float64 array, flat offset)."""

    def codegen(context, builder, sig, args):
        return builder.load(_ptr(context, builder, sig.args[0], args[0], args[1]), align=8)

    return f64x_lanes(arr, off), codegen


@intrinsic
def vstore(typingctx, arr, off, v):
    """arr[off : off + LANES] = v."""

    def codegen(context, builder, sig, args):
        builder.store(args[2], _ptr(context, builder, sig.args[0], args[0], args[1]), align=8)
        return context.get_dummy_value()

    return types.void(arr, off, v), codegen


@intrinsic
def vsplat(typingctx, x):
    """(x, x, ..., x)."""

    def codegen(context, builder, sig, args):
        x = context.cast(builder, args[0], sig.args[0], types.float64)
        v = builder.insert_element(ir.Constant(_VT, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        return builder.shuffle_vector(v, ir.Constant(_VT, ir.Undefined), mask)

    return f64x_lanes(x), codegen


@intrinsic
def vget(typingctx, v, i):
    """Lane i of v."""

    def codegen(context, builder, sig, args):
        return builder.extract_element(args[0], args[1])

    return types.float64(v, i), codegen


def _binary(op):
    @intrinsic
    def fn(typingctx, a, b):
        def codegen(context, builder, sig, args):
            return getattr(builder, op)(args[0], args[1])

        return f64x_lanes(a, b), codegen

    return fn


vadd = _binary("fadd")
vsub = _binary("fsub")
vmul = _binary("fmul")
vdiv = _binary("fdiv")


@intrinsic
def vfma(typingctx, a, b, c):
    """a * b + c, fused (one rounding)."""

    def codegen(context, builder, sig, args):
        return builder.call(_intrinsic_fn(builder, f"llvm.fma.v{LANES}f64", 3), list(args))

    return f64x_lanes(a, b, c), codegen


@intrinsic
def vfnma(typingctx, a, b, c):
    """c - a * b, fused (one rounding)."""

    def codegen(context, builder, sig, args):
        neg = builder.fneg(args[0])
        return builder.call(_intrinsic_fn(builder, f"llvm.fma.v{LANES}f64", 3), [neg, args[1], args[2]])

    return f64x_lanes(a, b, c), codegen


@intrinsic
def vsqrt(typingctx, v):
    """sqrt lane-wise (IEEE, correctly rounded)."""

    def codegen(context, builder, sig, args):
        return builder.call(_intrinsic_fn(builder, f"llvm.sqrt.v{LANES}f64", 1), [args[0]])

    return f64x_lanes(v), codegen


def _sqrt_newton_ir(builder, v):
    """sqrt lane-wise from FMAs, off the divider (which the division of Adam's step needs): 1/sqrt(v)
    from the exponent trick's estimate (0x5FE6EB50C7B537A9 - bits / 2, within 3.5%) and four Newton
    steps y <- y + y (1/2 - v y^2 / 2) (to about 1e-21), then s = v y and Markstein's correction
    s + (v - s^2) y / 2 with the residual exact by FMA: equal to IEEE sqrt on every one of 176,000
    test values (tests/test_sgd.py), subnormals, 0, inf and NaN included. v below 2^-900 is scaled by
    2^1000 first (exact), so that the estimate starts in range."""
    fma = _intrinsic_fn(builder, f"llvm.fma.v{LANES}f64", 3)
    tiny = builder.fcmp_ordered("<", v, _splat(2.0**-900))
    vs = builder.select(tiny, builder.fmul(v, _splat(2.0**1000)), v)
    magic = ir.Constant(_VI, [0x5FE6EB50C7B537A9] * LANES)
    half_bits = builder.lshr(builder.bitcast(vs, _VI), ir.Constant(_VI, [1] * LANES))
    y = builder.bitcast(builder.sub(magic, half_bits), _VT)
    h = builder.fmul(vs, _splat(0.5))
    for _ in range(4):
        e = builder.call(fma, [builder.fneg(h), builder.fmul(y, y), _splat(0.5)])
        y = builder.call(fma, [y, e, y])
    s = builder.fmul(vs, y)
    residual = builder.call(fma, [builder.fneg(s), s, vs])
    s = builder.call(fma, [residual, builder.fmul(y, _splat(0.5)), s])
    s = builder.select(tiny, builder.fmul(s, _splat(2.0**-500)), s)
    # 0, inf and NaN are their own square roots (the iteration would not give them).
    big = builder.fcmp_unordered(">", v, _splat(1.7976931348623157e308))
    own = builder.or_(big, builder.fcmp_ordered("==", v, _splat(0.0)))
    return builder.select(own, v, s)


@intrinsic
def vsqrt_newton(typingctx, v):
    """sqrt lane-wise by Newton's iteration (`_sqrt_newton_ir`), for v >= 0."""

    def codegen(context, builder, sig, args):
        return _sqrt_newton_ir(builder, args[0])

    return f64x_lanes(v), codegen


@intrinsic
def vselect(typingctx, mask, a, b):
    """Lane-wise: a where mask != 0 else b (mask: a vector of 0.0 / 1.0)."""

    def codegen(context, builder, sig, args):
        m = builder.fcmp_unordered("!=", args[0], _splat(0.0))
        return builder.select(m, args[1], args[2])

    return f64x_lanes(mask, a, b), codegen


@intrinsic
def visfinite(typingctx, v):
    """1.0 where the lane is finite, else 0.0."""

    def codegen(context, builder, sig, args):
        fabs = _intrinsic_fn(builder, f"llvm.fabs.v{LANES}f64", 1)
        ok = builder.fcmp_ordered("<", builder.call(fabs, [args[0]]), _splat(float("inf")))
        return builder.select(ok, _splat(1.0), _splat(0.0))

    return f64x_lanes(v), codegen


def _exp_reduce(builder, x):
    """Cephes' exp kernel: x = m ln2 + r with |r| <= ln2 / 2 (ln2 split in two for an exact
    reduction), and exp(r) = (q + p) / (q - p) with p = r P(r^2), q = Q(r^2). Returns (m, p, q)."""
    fma = _intrinsic_fn(builder, f"llvm.fma.v{LANES}f64", 3)
    floor = _intrinsic_fn(builder, f"llvm.floor.v{LANES}f64", 1)
    m = builder.call(floor, [builder.call(fma, [_splat(1.4426950408889634), x, _splat(0.5)])])
    r = builder.call(fma, [builder.fneg(m), _splat(6.93145751953125e-1), x])
    r = builder.call(fma, [builder.fneg(m), _splat(1.42860682030941723212e-6), r])
    rr = builder.fmul(r, r)
    p = builder.call(fma, [_splat(1.26177193074810590878e-4), rr, _splat(3.02994407707441961300e-2)])
    p = builder.fmul(r, builder.call(fma, [p, rr, _splat(1.0)]))
    q = builder.call(fma, [_splat(3.00198505138664455042e-6), rr, _splat(2.52448340349684104192e-3)])
    q = builder.call(fma, [q, rr, _splat(2.27265548208155028766e-1)])
    q = builder.call(fma, [q, rr, _splat(2.0)])
    return m, p, q


def _exp_parts(builder, x):
    """exp(x) = t / u = 2^m (q + p) / (q - p) from `_exp_reduce`. Returns (t / 4, u / 4): callers
    fold the division into their own. x must lie in [-708, 709.78] or be NaN."""
    m, p, q = _exp_reduce(builder, x)
    # Both parts scaled by 1/4 (the ratio is what matters), so that 2^(m-2) (q + p), with q + p < 4,
    # stays finite up to m = 1024; 2^(m-2) comes from the exponent bits. NaN gives m = 0.
    isnum = builder.fcmp_ordered("==", x, x)
    mi = builder.select(isnum, builder.fptosi(m, _VI), ir.Constant(_VI, [0] * LANES))
    bits = builder.shl(builder.add(mi, ir.Constant(_VI, [1021] * LANES)), ir.Constant(_VI, [52] * LANES))
    scaled = builder.fmul(builder.fadd(q, p), builder.bitcast(bits, _VT))
    return scaled, builder.fmul(builder.fsub(q, p), _splat(0.25))


def _tanh_ir(builder, x):
    """tanh lane-wise from Cephes' exp kernel, one formula for every x: with a = |x| (clamped at
    22, where tanh is 1.0 in float64), 2a = m ln2 + r and exp(r) = (q + p) / (q - p),
    tanh(a) = (e^2a - 1) / (e^2a + 1) = ((2^m - 1) q + (2^m + 1) p) / ((2^m + 1) q + (2^m - 1) p).
    At m = 0 this is p / q, with no cancellation for small a; the sign of x is copied back."""
    fma = _intrinsic_fn(builder, f"llvm.fma.v{LANES}f64", 3)
    fabs = _intrinsic_fn(builder, f"llvm.fabs.v{LANES}f64", 1)
    copysign = _intrinsic_fn(builder, f"llvm.copysign.v{LANES}f64", 2)
    a = builder.call(fabs, [x])
    a = builder.select(builder.fcmp_ordered(">", a, _splat(22.0)), _splat(22.0), a)  # NaN stays
    m, p, q = _exp_reduce(builder, builder.fadd(a, a))
    # 2^m (0 <= m <= 64) from the exponent bits; NaN gives m = 0 and the NaN flows through p.
    isnum = builder.fcmp_ordered("==", a, a)
    mi = builder.select(isnum, builder.fptosi(m, _VI), ir.Constant(_VI, [0] * LANES))
    s = builder.bitcast(
        builder.shl(builder.add(mi, ir.Constant(_VI, [1023] * LANES)), ir.Constant(_VI, [52] * LANES)), _VT
    )
    sm, sp = builder.fsub(s, _splat(1.0)), builder.fadd(s, _splat(1.0))
    num = builder.call(fma, [sm, q, builder.fmul(sp, p)])
    den = builder.call(fma, [sp, q, builder.fmul(sm, p)])
    return builder.call(copysign, [builder.fdiv(num, den), x])


def _sigmoid_ir(builder, v):
    """1 / (1 + exp(-v)) = u / (u + t) with exp(-v) = t / u from `_exp_parts`: one division.
    exp(-v) overflows (v < -709.78) to sigmoid 0, and is clamped at -v = -708 where sigmoid is 1."""
    x = builder.fneg(v)
    sel = builder.select
    xc = sel(builder.fcmp_ordered(">", x, _splat(709.78)), _splat(709.78), x)
    xc = sel(builder.fcmp_ordered("<", xc, _splat(-708.0)), _splat(-708.0), xc)
    t, u = _exp_parts(builder, xc)
    y = builder.fdiv(u, builder.fadd(u, t))
    return sel(builder.fcmp_ordered(">", x, _splat(709.782712893384)), _splat(0.0), y)


@intrinsic
def vtanh(typingctx, v):
    """tanh lane-wise (within about 2 ulp)."""

    def codegen(context, builder, sig, args):
        return _tanh_ir(builder, args[0])

    return f64x_lanes(v), codegen


@intrinsic
def vsigmoid(typingctx, v):
    """1 / (1 + exp(-v)) lane-wise."""

    def codegen(context, builder, sig, args):
        return _sigmoid_ir(builder, args[0])

    return f64x_lanes(v), codegen


@intrinsic
def vrelu(typingctx, v):
    """v where v > 0 else 0 * v (NaN stays NaN)."""

    def codegen(context, builder, sig, args):
        pos = builder.fcmp_ordered(">", args[0], _splat(0.0))
        return builder.select(pos, args[0], builder.fmul(_splat(0.0), args[0]))

    return f64x_lanes(v), codegen


@intrinsic
def vstep(typingctx, v):
    """1.0 where v > 0 else 0.0 (relu' from its output)."""

    def codegen(context, builder, sig, args):
        pos = builder.fcmp_ordered(">", args[0], _splat(0.0))
        return builder.select(pos, _splat(1.0), _splat(0.0))

    return f64x_lanes(v), codegen


@intrinsic
def vpos(typingctx, v):
    """max(v, 0) lane-wise, NaN kept (the hinge's max(0, 1 - y f) as numpy computes it)."""

    def codegen(context, builder, sig, args):
        keep = builder.fcmp_unordered(">", args[0], _splat(0.0))
        return builder.select(keep, args[0], _splat(0.0))

    return f64x_lanes(v), codegen


@intrinsic
def vhinge_slope(typingctx, margin, y):
    """-y where the margin y f is below 1, else 0 (the hinge's subgradient, 0 at the kink)."""

    def codegen(context, builder, sig, args):
        inside = builder.fcmp_ordered("<", args[0], _splat(1.0))
        return builder.select(inside, builder.fneg(args[1]), _splat(0.0))

    return f64x_lanes(margin, y), codegen


# ---------------------------------------------------------------------------------------------------
# The kernels.

IDENTITY, TANH, RELU, SIGMOID, SOFTMAX = 0, 1, 2, 3, 4
ACTIVATION_CODES = {"identity": IDENTITY, "tanh": TANH, "relu": RELU, "sigmoid": SIGMOID, "softmax": SOFTMAX}
HALF_SQUARED, SQUARED, CROSS_ENTROPY, HINGE = 0, 1, 2, 3
LOSS_CODES = {
    "half_squared": HALF_SQUARED,
    "squared": SQUARED,
    "cross_entropy": CROSS_ENTROPY,
    "hinge": HINGE,
}

# No fast-math: the vector code spells out every FMA, and divergence detection needs NaN and inf. The
# disk cache holds the detected lane count's code only (`nnlab.machine.cached_lanes`).
_OPTS = dict(cache=machine.cached_lanes(), nogil=True, error_model="numpy")

# The update rules (`nnlab.sgd.OptimizerSpec`): their codes, and what a kernel knows of one.
SGD, MOMENTUM, NESTEROV, ADAM, ADAMW = 0, 1, 2, 3, 4
OPTIMIZER_CODES = {"sgd": SGD, "momentum": MOMENTUM, "nesterov": NESTEROV, "adam": ADAM, "adamw": ADAMW}
# One namedtuple class per rule, with the same fields: numba types a namedtuple by its class, so every
# kernel taking a rule is compiled once per rule, with the other rules' code left out (`_kind_of` is a
# constant there). A run compiles only the optimizer it uses.
_RULE_FIELDS = ["kind", "momentum", "beta1", "beta2", "eps", "weight_decay"]
SgdRule = collections.namedtuple("SgdRule", _RULE_FIELDS)
MomentumRule = collections.namedtuple("MomentumRule", _RULE_FIELDS)
NesterovRule = collections.namedtuple("NesterovRule", _RULE_FIELDS)
AdamRule = collections.namedtuple("AdamRule", _RULE_FIELDS)
AdamwRule = collections.namedtuple("AdamwRule", _RULE_FIELDS)
_RULE_CLASSES = (SgdRule, MomentumRule, NesterovRule, AdamRule, AdamwRule)


def Rule(kind, momentum, beta1, beta2, eps, weight_decay):  # noqa: N802 (it builds a namedtuple)
    """The update rule ``kind`` (an OPTIMIZER_CODES value) with its hyperparameters, as kernels take it."""
    return _RULE_CLASSES[kind](kind, momentum, beta1, beta2, eps, weight_decay)


def _kind_of(rule):
    """The rule's code, a compile-time constant in the kernels."""
    return rule.kind


@overload(_kind_of, jit_options=_OPTS)
def _kind_of_compiled(rule):
    kind = _RULE_CLASSES.index(rule.instance_class)
    return lambda rule: kind


@njit(**_OPTS)
def _fused_sgd(rule):
    """Whether the steps are plain SGD without decay: the kernels then fuse each step into the
    backward pass (W -= lr f^T delta as delta goes by) and keep no gradient or state."""
    return _kind_of(rule) == SGD and rule.weight_decay == 0.0


@njit(**_OPTS)
def _step_constants(rule, rates, j):
    """The scalars of update step j of a slice: rates[j] = (lr_t, 1 - beta1^t, sqrt(1 - beta2^t))
    (`nnlab.sgd.OptimizerSpec.rates`). Returns (lr_t, momentum, beta1, 1 - beta1, beta2, 1 - beta2,
    eps, weight_decay, lr_t / (1 - beta1^t), 1 / sqrt(1 - beta2^t), 1 - lr_t weight_decay)."""
    lr = rates[j, 0]
    b1, b2, wd = rule.beta1, rule.beta2, rule.weight_decay
    return (
        lr,
        rule.momentum,
        b1,
        1.0 - b1,
        b2,
        1.0 - b2,
        rule.eps,
        wd,
        lr / rates[j, 1],
        1.0 / rates[j, 2],
        1.0 - lr * wd,
    )


@njit(**_OPTS)
def _v_update(rule, pv, gv, s, oa, ob, k):
    """One optimizer step on a vector of parameters pv with gradient gv (the batch mean): returns the
    new parameters, which the caller stores where the replica is active; the state (momentum: buf at
    s[oa:]; adam: m at s[oa:], v at s[ob:]) is updated in place on every lane (a diverged replica's
    state is never read again: it stops updating for good). k: `_step_constants`. As torch.optim:
    coupled decay g += wd theta for all but adamw, which scales theta by 1 - lr_t wd first."""
    kind = _kind_of(rule)
    lr, mu, b1, c1, b2, c2, eps, wd, step, inv2, decay = k
    if kind != ADAMW and wd != 0.0:
        gv = vfma(vsplat(wd), pv, gv)
    if kind == SGD:
        return vfnma(vsplat(lr), gv, pv)
    if kind == MOMENTUM or kind == NESTEROV:
        buf = vfma(vsplat(mu), vload(s, oa), gv)  # zero at the start: buf = g at the first step
        vstore(s, oa, buf)
        if kind == NESTEROV:
            return vfnma(vsplat(lr), vfma(vsplat(mu), buf, gv), pv)
        return vfnma(vsplat(lr), buf, pv)
    if kind == ADAMW:
        pv = vmul(pv, vsplat(decay))
    m = vfma(vsplat(b1), vload(s, oa), vmul(vsplat(c1), gv))
    v = vfma(vsplat(b2), vload(s, ob), vmul(vsplat(c2), vmul(gv, gv)))
    vstore(s, oa, m)
    vstore(s, ob, v)
    # m_hat / (sqrt(v_hat) + eps) as torch.optim arranges it: lr_t / (1 - beta1^t) times
    # m / (sqrt(v) / sqrt(1 - beta2^t) + eps). The square root by FMAs leaves the divider (shared by
    # IEEE sqrt and division, and the bottleneck of a per-sample step) to the division alone.
    return vfnma(vsplat(step), vdiv(m, vfma(vsqrt_newton(v), vsplat(inv2), vsplat(eps))), pv)


@njit(**_OPTS)
def _v_act(v, code):
    if code == TANH:
        return vtanh(v)
    if code == RELU:
        return vrelu(v)
    if code == SIGMOID:
        return vsigmoid(v)
    return v


@njit(**_OPTS)
def _v_dact(fv, code):
    """act'(z) from the output f."""
    if code == TANH:
        return vfnma(fv, fv, vsplat(1.0))
    if code == RELU:
        return vstep(fv)
    if code == SIGMOID:
        return vmul(fv, vsub(vsplat(1.0), fv))
    return vsplat(1.0)


@njit(**_OPTS)
def _forward_code(outc, lossc):
    """The activation the forward pass applies to the output layer: none (z_L is kept) for
    cross_entropy, whose loss and delta are computed from z_L (`_output_row`)."""
    return IDENTITY if lossc == CROSS_ENTROPY else outc


@njit(**_OPTS)
def _dact(f, code):
    """act'(z) from the output f, one number."""
    if code == TANH:
        return 1.0 - f * f
    if code == RELU:
        return 1.0 if f > 0.0 else 0.0
    if code == SIGMOID:
        return f * (1.0 - f)
    return 1.0


@njit(**_OPTS)
def _output_row(f, fo, fs, y, yo, ys, nout, outc, lossc, d, do, ds):
    """One sample's output layer, unit k at f[fo + k fs], y[yo + k ys], d[do + k ds]: returns its loss
    and writes delta_L = dLoss/dz_L into d, as `nnlab.functions.output_loss` and `output_delta` do.
    f holds f_L, or z_L for cross_entropy."""
    if lossc == CROSS_ENTROPY:
        if nout == 1:
            # softplus(z) - y z, and delta = sigmoid(z) - y.
            z, t = f[fo], y[yo]
            e = math.exp(-abs(z))
            d[do] = (1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)) - t
            return max(z, 0.0) - t * z + math.log1p(e)
        # m = max z at unit top; loss = sum_k y_k (m - z_k) + sum_k y_k log1p(sum_{k != top} e_k).
        top, m = 0, f[fo]
        for k in range(1, nout):
            if f[fo + k * fs] > m:
                top, m = k, f[fo + k * fs]
        rest, total = 0.0, 0.0
        for k in range(nout):
            e = math.exp(f[fo + k * fs] - m)
            d[do + k * ds] = e
            total += e
            if k != top:
                rest += e
        margin, ysum = 0.0, 0.0
        for k in range(nout):
            t = y[yo + k * ys]
            if t != 0.0:
                margin += t * (m - f[fo + k * fs])
                ysum += t
            d[do + k * ds] = d[do + k * ds] / total - t  # softmax(z) - y
        return margin + ysum * math.log1p(rest)
    loss = 0.0
    for k in range(nout):
        fk, t = f[fo + k * fs], y[yo + k * ys]
        if lossc == HINGE:
            slack = 1.0 - t * fk
            loss += slack if (slack > 0.0 or slack != slack) else 0.0
            g = -t if t * fk < 1.0 else 0.0
        else:
            e = fk - t
            loss += e * e
            g = e if lossc == HALF_SQUARED else 2.0 * e
        d[do + k * ds] = g * _dact(fk, outc)
    return 0.5 * loss if lossc == HALF_SQUARED else loss


@njit(**_OPTS)
def _lanes_forward(p, lay, foff, f, hid, outc):
    """f_i rows = act(b_i[k] + sum_j f_{i-1}[j] W_i[j, k]) for every layer; f_0 rows in place.
    Four units at a time: four independent FMA chains share each load of f_{i-1}[j]; every unit
    still sums over j in order, so the blocking does not change the numbers."""
    L = lay.shape[0]
    zero = vsplat(0.0)
    for i in range(L):
        nin, nout, wo, bo = lay[i, 0], lay[i, 1], lay[i, 2], lay[i, 3]
        fi, fo = foff[i], foff[i + 1]
        code = outc if i == L - 1 else hid
        k = 0
        while k + 4 <= nout:
            a0 = vload(p, (bo + k) * LANES) if bo >= 0 else zero
            a1 = vload(p, (bo + k + 1) * LANES) if bo >= 0 else zero
            a2 = vload(p, (bo + k + 2) * LANES) if bo >= 0 else zero
            a3 = vload(p, (bo + k + 3) * LANES) if bo >= 0 else zero
            for j in range(nin):
                fj = vload(f, (fi + j) * LANES)
                q = (wo + j * nout + k) * LANES
                a0 = vfma(fj, vload(p, q), a0)
                a1 = vfma(fj, vload(p, q + LANES), a1)
                a2 = vfma(fj, vload(p, q + 2 * LANES), a2)
                a3 = vfma(fj, vload(p, q + 3 * LANES), a3)
            vstore(f, (fo + k) * LANES, _v_act(a0, code))
            vstore(f, (fo + k + 1) * LANES, _v_act(a1, code))
            vstore(f, (fo + k + 2) * LANES, _v_act(a2, code))
            vstore(f, (fo + k + 3) * LANES, _v_act(a3, code))
            k += 4
        while k < nout:
            # A lone unit (an output, say): four partial sums over j break the FMA latency chain.
            a0 = vload(p, (bo + k) * LANES) if bo >= 0 else zero
            a1, a2, a3 = zero, zero, zero
            j = 0
            while j + 4 <= nin:
                q = (wo + j * nout + k) * LANES
                a0 = vfma(vload(f, (fi + j) * LANES), vload(p, q), a0)
                a1 = vfma(vload(f, (fi + j + 1) * LANES), vload(p, q + nout * LANES), a1)
                a2 = vfma(vload(f, (fi + j + 2) * LANES), vload(p, q + 2 * nout * LANES), a2)
                a3 = vfma(vload(f, (fi + j + 3) * LANES), vload(p, q + 3 * nout * LANES), a3)
                j += 4
            while j < nin:
                a0 = vfma(vload(f, (fi + j) * LANES), vload(p, (wo + j * nout + k) * LANES), a0)
                j += 1
            vstore(f, (fo + k) * LANES, _v_act(vadd(vadd(a0, a1), vadd(a2, a3)), code))
            k += 1


@njit(**_OPTS)
def _lanes_forward4(p, lay, foff, f, nf, hid, outc):
    """`_lanes_forward` on four samples at once, sample s's rows at f[s * nf * LANES:]: each weight row
    loaded once feeds four samples, which keeps the end-of-epoch loss pass off the memory bus for
    large networks. Every unit sums in exactly the order `_lanes_forward` uses, so the numbers are
    the same."""
    L = lay.shape[0]
    zero = vsplat(0.0)
    s1, s2, s3 = nf * LANES, 2 * nf * LANES, 3 * nf * LANES
    for i in range(L):
        nin, nout, wo, bo = lay[i, 0], lay[i, 1], lay[i, 2], lay[i, 3]
        fi, fo = foff[i] * LANES, foff[i + 1] * LANES
        code = outc if i == L - 1 else hid
        blocked = nout - nout % 4  # the units `_lanes_forward` sums in order, four at a time
        for k in range(0, blocked, 2):
            b0 = vload(p, (bo + k) * LANES) if bo >= 0 else zero
            b1 = vload(p, (bo + k + 1) * LANES) if bo >= 0 else zero
            a00, a01, a10, a11, a20, a21, a30, a31 = b0, b1, b0, b1, b0, b1, b0, b1
            for j in range(nin):
                q = (wo + j * nout + k) * LANES
                w0, w1 = vload(p, q), vload(p, q + LANES)
                x0, x1 = vload(f, fi + j * LANES), vload(f, s1 + fi + j * LANES)
                x2, x3 = vload(f, s2 + fi + j * LANES), vload(f, s3 + fi + j * LANES)
                a00, a01 = vfma(x0, w0, a00), vfma(x0, w1, a01)
                a10, a11 = vfma(x1, w0, a10), vfma(x1, w1, a11)
                a20, a21 = vfma(x2, w0, a20), vfma(x2, w1, a21)
                a30, a31 = vfma(x3, w0, a30), vfma(x3, w1, a31)
            o = fo + k * LANES
            vstore(f, o, _v_act(a00, code))
            vstore(f, o + LANES, _v_act(a01, code))
            vstore(f, s1 + o, _v_act(a10, code))
            vstore(f, s1 + o + LANES, _v_act(a11, code))
            vstore(f, s2 + o, _v_act(a20, code))
            vstore(f, s2 + o + LANES, _v_act(a21, code))
            vstore(f, s3 + o, _v_act(a30, code))
            vstore(f, s3 + o + LANES, _v_act(a31, code))
        for k in range(blocked, nout):
            # Lone units: the four partial sums over j of `_lanes_forward`, two samples at a time.
            for s in range(0, 4, 2):
                ta, tb = s * nf * LANES, (s + 1) * nf * LANES
                a0 = vload(p, (bo + k) * LANES) if bo >= 0 else zero
                c0 = a0
                a1, a2, a3, c1, c2, c3 = zero, zero, zero, zero, zero, zero
                j = 0
                while j + 4 <= nin:
                    q = (wo + j * nout + k) * LANES
                    w0, w1 = vload(p, q), vload(p, q + nout * LANES)
                    w2, w3 = vload(p, q + 2 * nout * LANES), vload(p, q + 3 * nout * LANES)
                    r = fi + j * LANES
                    a0 = vfma(vload(f, ta + r), w0, a0)
                    a1 = vfma(vload(f, ta + r + LANES), w1, a1)
                    a2 = vfma(vload(f, ta + r + 2 * LANES), w2, a2)
                    a3 = vfma(vload(f, ta + r + 3 * LANES), w3, a3)
                    c0 = vfma(vload(f, tb + r), w0, c0)
                    c1 = vfma(vload(f, tb + r + LANES), w1, c1)
                    c2 = vfma(vload(f, tb + r + 2 * LANES), w2, c2)
                    c3 = vfma(vload(f, tb + r + 3 * LANES), w3, c3)
                    j += 4
                while j < nin:
                    wv = vload(p, (wo + j * nout + k) * LANES)
                    a0 = vfma(vload(f, ta + fi + j * LANES), wv, a0)
                    c0 = vfma(vload(f, tb + fi + j * LANES), wv, c0)
                    j += 1
                vstore(f, ta + fo + k * LANES, _v_act(vadd(vadd(a0, a1), vadd(a2, a3)), code))
                vstore(f, tb + fo + k * LANES, _v_act(vadd(vadd(c0, c1), vadd(c2, c3)), code))


@njit(**_OPTS)
def _lanes_output_delta(f, fo, y, nout, outc, lossc, d):
    """Per-sample loss of each lane (returned vector); d rows = delta_L = dLoss/dz_L (for the
    elementwise pairs dLoss/df_L * act'(f_L)). f rows hold f_L, or z_L for cross_entropy."""
    ls = vsplat(0.0)
    if lossc == CROSS_ENTROPY:
        # Lane by lane (a softmax mixes the units; exp and log1p per sample are cheap here).
        out = np.empty(LANES)
        for l in range(LANES):
            out[l] = _output_row(f, fo * LANES + l, LANES, y, l, LANES, nout, outc, lossc, d, l, LANES)
        return vload(out, 0)
    for k in range(nout):
        fv = vload(f, (fo + k) * LANES)
        yv = vload(y, k * LANES)
        if lossc == HINGE:
            margin = vmul(yv, fv)
            ls = vadd(ls, vpos(vsub(vsplat(1.0), margin)))
            g = vhinge_slope(margin, yv)
        else:
            e = vsub(fv, yv)
            ls = vfma(e, e, ls)
            g = e if lossc == HALF_SQUARED else vmul(vsplat(2.0), e)
        vstore(d, k * LANES, vmul(g, _v_dact(fv, outc)))
    return vmul(vsplat(0.5), ls) if lossc == HALF_SQUARED else ls


@njit(**_OPTS)
def _lanes_backward_update(p, lay, foff, f, d, g, hid, lr, on):
    """One SGD step on the lanes where on == 1: W_i -= lr f_{i-1}^T delta_i, fused with
    delta_{i-1} = act'(f_{i-1}) * (delta_i W_i^T) from the old W_i. d rows hold delta_L.
    Four input rows at a time: four independent chains for (delta_i W_i^T)[j] share each load of
    delta_i[k]; every row still sums over k in order."""
    L = lay.shape[0]
    lrv = vsplat(lr)
    zero = vsplat(0.0)
    for i in range(L - 1, -1, -1):
        nin, nout, wo, bo = lay[i, 0], lay[i, 1], lay[i, 2], lay[i, 3]
        fi = foff[i]
        if bo >= 0:
            for k in range(nout):
                q = (bo + k) * LANES
                pv = vload(p, q)
                vstore(p, q, vselect(on, vfnma(lrv, vload(d, k * LANES), pv), pv))
        j = 0
        while j + 4 <= nin:
            c0 = vmul(lrv, vload(f, (fi + j) * LANES))
            c1 = vmul(lrv, vload(f, (fi + j + 1) * LANES))
            c2 = vmul(lrv, vload(f, (fi + j + 2) * LANES))
            c3 = vmul(lrv, vload(f, (fi + j + 3) * LANES))
            g0, g1, g2, g3 = zero, zero, zero, zero
            r0 = (wo + j * nout) * LANES
            r1, r2, r3 = r0 + nout * LANES, r0 + 2 * nout * LANES, r0 + 3 * nout * LANES
            for k in range(nout):
                dv = vload(d, k * LANES)
                kq = k * LANES
                w0 = vload(p, r0 + kq)
                w1 = vload(p, r1 + kq)
                w2 = vload(p, r2 + kq)
                w3 = vload(p, r3 + kq)
                g0 = vfma(w0, dv, g0)
                g1 = vfma(w1, dv, g1)
                g2 = vfma(w2, dv, g2)
                g3 = vfma(w3, dv, g3)
                vstore(p, r0 + kq, vselect(on, vfnma(c0, dv, w0), w0))
                vstore(p, r1 + kq, vselect(on, vfnma(c1, dv, w1), w1))
                vstore(p, r2 + kq, vselect(on, vfnma(c2, dv, w2), w2))
                vstore(p, r3 + kq, vselect(on, vfnma(c3, dv, w3), w3))
            if i > 0:
                vstore(g, j * LANES, vmul(g0, _v_dact(vload(f, (fi + j) * LANES), hid)))
                vstore(g, (j + 1) * LANES, vmul(g1, _v_dact(vload(f, (fi + j + 1) * LANES), hid)))
                vstore(g, (j + 2) * LANES, vmul(g2, _v_dact(vload(f, (fi + j + 2) * LANES), hid)))
                vstore(g, (j + 3) * LANES, vmul(g3, _v_dact(vload(f, (fi + j + 3) * LANES), hid)))
            j += 4
        while j < nin and i == 0:
            # The input layer needs no delta_0: update only.
            cf = vmul(lrv, vload(f, (fi + j) * LANES))
            for k in range(nout):
                q = (wo + j * nout + k) * LANES
                wv = vload(p, q)
                vstore(p, q, vselect(on, vfnma(cf, vload(d, k * LANES), wv), wv))
            j += 1
        while j < nin:
            # A lone row: four partial sums over k break the FMA latency chain.
            fj = vload(f, (fi + j) * LANES)
            cf = vmul(lrv, fj)
            g0, g1, g2, g3 = zero, zero, zero, zero
            row = (wo + j * nout) * LANES
            k = 0
            while k + 4 <= nout:
                q = row + k * LANES
                w0, w1, w2, w3 = (
                    vload(p, q),
                    vload(p, q + LANES),
                    vload(p, q + 2 * LANES),
                    vload(p, q + 3 * LANES),
                )
                d0, d1, d2, d3 = (
                    vload(d, k * LANES),
                    vload(d, (k + 1) * LANES),
                    vload(d, (k + 2) * LANES),
                    vload(d, (k + 3) * LANES),
                )
                g0 = vfma(w0, d0, g0)
                g1 = vfma(w1, d1, g1)
                g2 = vfma(w2, d2, g2)
                g3 = vfma(w3, d3, g3)
                vstore(p, q, vselect(on, vfnma(cf, d0, w0), w0))
                vstore(p, q + LANES, vselect(on, vfnma(cf, d1, w1), w1))
                vstore(p, q + 2 * LANES, vselect(on, vfnma(cf, d2, w2), w2))
                vstore(p, q + 3 * LANES, vselect(on, vfnma(cf, d3, w3), w3))
                k += 4
            while k < nout:
                q = row + k * LANES
                wv = vload(p, q)
                dv = vload(d, k * LANES)
                g0 = vfma(wv, dv, g0)
                vstore(p, q, vselect(on, vfnma(cf, dv, wv), wv))
                k += 1
            vstore(g, j * LANES, vmul(vadd(vadd(g0, g1), vadd(g2, g3)), _v_dact(fj, hid)))
            j += 1
        if i > 0:
            for q in range(nin * LANES):
                d[q] = g[q]


@njit(**_OPTS)
def _lanes_backward_accumulate(p, lay, foff, f, d, g, hid, acc):
    """acc rows += dLoss_sample/dparams of each lane (no update). d rows hold delta_L."""
    L = lay.shape[0]
    for i in range(L - 1, -1, -1):
        nin, nout, wo, bo = lay[i, 0], lay[i, 1], lay[i, 2], lay[i, 3]
        fi = foff[i]
        if bo >= 0:
            for k in range(nout):
                q = (bo + k) * LANES
                vstore(acc, q, vadd(vload(acc, q), vload(d, k * LANES)))
        for j in range(nin):
            fj = vload(f, (fi + j) * LANES)
            gacc = vsplat(0.0)
            for k in range(nout):
                q = (wo + j * nout + k) * LANES
                dv = vload(d, k * LANES)
                gacc = vfma(vload(p, q), dv, gacc)
                vstore(acc, q, vfma(fj, dv, vload(acc, q)))
            if i > 0:
                vstore(g, j * LANES, vmul(gacc, _v_dact(fj, hid)))
        if i > 0:
            for q in range(nin * LANES):
                d[q] = g[q]


@njit(**_OPTS)
def _lanes_masked(on, c, R):
    """Whether a replica of chunk c has diverged (on == 0 in a lane r < R): only then must an update
    be masked lane by lane (the padding lanes r >= R may step freely: they are never read)."""
    for l in range(LANES):
        if vget(on, l) == 0.0 and c * LANES + l < R:
            return True
    return False


@njit(**_OPTS)
def _lanes_rule_store(p, s, q, wv, gv, rule, PW, k, on, masked):
    """p[q] = the step (`_v_update`) from wv = p[q] with gradient gv; with ``masked``, only on the
    lanes where on != 0."""
    new = _v_update(rule, wv, gv, s, q, q + PW, k)
    vstore(p, q, vselect(on, new, wv) if masked else new)


@njit(**_OPTS)
def _lanes_backward_rule(p, s, lay, foff, f, d, g, hid, rule, k, on, masked):
    """One sample's optimizer step (`_v_update`, step constants k), fused like
    `_lanes_backward_update`: each weight's gradient f_{i-1}[j] delta_i[k] is used as it is formed,
    delta_{i-1} taken from the old W_i; with ``masked``, only on the lanes where on != 0. d rows hold
    delta_L; the state s holds the optimizer's arrays (P rows each) one after the other. Four input
    rows at a time, each row's (delta_i W_i^T)[j] summed over k in order (as a lone row's is)."""
    L = lay.shape[0]
    PW = s.shape[0] // 2 * LANES if _kind_of(rule) >= ADAM else 0  # where the second array (v) starts
    zero = vsplat(0.0)
    for i in range(L - 1, -1, -1):
        nin, nout, wo, bo = lay[i, 0], lay[i, 1], lay[i, 2], lay[i, 3]
        fi = foff[i]
        if bo >= 0:
            for kk in range(nout):
                q = (bo + kk) * LANES
                _lanes_rule_store(p, s, q, vload(p, q), vload(d, kk * LANES), rule, PW, k, on, masked)
        j = 0
        while j + 4 <= nin:
            f0, f1 = vload(f, (fi + j) * LANES), vload(f, (fi + j + 1) * LANES)
            f2, f3 = vload(f, (fi + j + 2) * LANES), vload(f, (fi + j + 3) * LANES)
            g0, g1, g2, g3 = zero, zero, zero, zero
            r0 = (wo + j * nout) * LANES
            r1, r2, r3 = r0 + nout * LANES, r0 + 2 * nout * LANES, r0 + 3 * nout * LANES
            for kk in range(nout):
                dv = vload(d, kk * LANES)
                kq = kk * LANES
                w0, w1, w2, w3 = vload(p, r0 + kq), vload(p, r1 + kq), vload(p, r2 + kq), vload(p, r3 + kq)
                g0, g1 = vfma(w0, dv, g0), vfma(w1, dv, g1)
                g2, g3 = vfma(w2, dv, g2), vfma(w3, dv, g3)
                _lanes_rule_store(p, s, r0 + kq, w0, vmul(f0, dv), rule, PW, k, on, masked)
                _lanes_rule_store(p, s, r1 + kq, w1, vmul(f1, dv), rule, PW, k, on, masked)
                _lanes_rule_store(p, s, r2 + kq, w2, vmul(f2, dv), rule, PW, k, on, masked)
                _lanes_rule_store(p, s, r3 + kq, w3, vmul(f3, dv), rule, PW, k, on, masked)
            if i > 0:
                vstore(g, j * LANES, vmul(g0, _v_dact(f0, hid)))
                vstore(g, (j + 1) * LANES, vmul(g1, _v_dact(f1, hid)))
                vstore(g, (j + 2) * LANES, vmul(g2, _v_dact(f2, hid)))
                vstore(g, (j + 3) * LANES, vmul(g3, _v_dact(f3, hid)))
            j += 4
        while j < nin:
            fj = vload(f, (fi + j) * LANES)
            gacc = zero
            for kk in range(nout):
                q = (wo + j * nout + kk) * LANES
                dv = vload(d, kk * LANES)
                wv = vload(p, q)
                gacc = vfma(wv, dv, gacc)
                _lanes_rule_store(p, s, q, wv, vmul(fj, dv), rule, PW, k, on, masked)
            if i > 0:
                vstore(g, j * LANES, vmul(gacc, _v_dact(fj, hid)))
            j += 1
        if i > 0:
            for q in range(nin * LANES):
                d[q] = g[q]


@njit(**_OPTS)
def _lanes_gather(A3, rows, idx, width, out):
    """out[j, l] = A3[rows[l], idx[l], j]: each lane's sample (A3 C-contiguous)."""
    flat = A3.reshape(A3.size)
    n = A3.shape[1]
    for l in range(LANES):
        at = (rows[l] * n + idx[l]) * width
        for j in range(width):
            out[j * LANES + l] = flat[at + j]


@njit(**_OPTS)
def _lanes_sample(A3, rows, s, width, out):
    """out[j, l] = A3[rows[l], s, j]: sample s for every lane, a broadcast when the data is shared."""
    if A3.shape[0] > 1:
        for l in range(LANES):
            for j in range(width):
                out[j * LANES + l] = A3[rows[l], s, j]
    else:
        for j in range(width):
            vstore(out, j * LANES, vsplat(A3[0, s, j]))


@njit(**_OPTS)
def _lanes_full(p, lay, foff, X3, Y3, xr, hid, outc, lossc, f, d, g, y, acc, idx, want_grad, gn):
    """Mean loss over all samples of each lane (returned vector); with want_grad, gn = the norm of
    each lane's mean gradient."""
    n, nx = X3.shape[1], X3.shape[2]
    L = lay.shape[0]
    nout = lay[L - 1, 1]
    total = vsplat(0.0)
    if want_grad:
        acc[:] = 0.0
    s = 0
    if not want_grad:
        nf = f.shape[0] // (4 * LANES)
        while s + 4 <= n:
            for t in range(4):
                _lanes_sample(X3, xr, s + t, nx, f[t * nf * LANES :])
                _lanes_sample(Y3, xr, s + t, nout, y[t * nout * LANES :])
            _lanes_forward4(p, lay, foff, f, nf, hid, _forward_code(outc, lossc))
            for t in range(4):
                ls = _lanes_output_delta(
                    f[t * nf * LANES :], foff[L], y[t * nout * LANES :], nout, outc, lossc, d
                )
                total = vadd(total, ls)
            s += 4
    while s < n:
        _lanes_sample(X3, xr, s, nx, f)
        _lanes_sample(Y3, xr, s, nout, y)
        _lanes_forward(p, lay, foff, f, hid, _forward_code(outc, lossc))
        total = vadd(total, _lanes_output_delta(f, foff[L], y, nout, outc, lossc, d))
        if want_grad:
            _lanes_backward_accumulate(p, lay, foff, f, d, g, hid, acc)
        s += 1
    if want_grad:
        sq = vsplat(0.0)
        inv = vsplat(1.0 / n)
        for q in range(acc.shape[0] // LANES):
            m = vmul(vload(acc, q * LANES), inv)
            sq = vfma(m, m, sq)
        for l in range(LANES):
            gn[l] = math.sqrt(vget(sq, l))
    return vmul(total, vsplat(1.0 / n))


@njit(**_OPTS)
def _lanes_rows(c, R, nrows):
    """Row of each lane of chunk c in an array with nrows (1 or R) replica rows; padding lanes -> 0."""
    xr = np.zeros(LANES, dtype=np.int64)
    if nrows > 1:
        for l in range(LANES):
            r = c * LANES + l
            xr[l] = r if r < R else 0
    return xr


@njit(**_OPTS)
def aligned_zeros(n):
    """n float64 zeros starting on a 64-byte boundary, so that no vector load splits a cache line."""
    raw = np.zeros(n + 8)
    skip = ((64 - raw.ctypes.data % 64) % 64) // 8
    return raw[skip : skip + n]


@njit(**_OPTS)
def _lanes_buffers(lay, foff, P):
    nf = foff[-1] + lay[-1, 1]
    wmax = 1
    for i in range(lay.shape[0]):
        wmax = max(wmax, lay[i, 0], lay[i, 1])
    f = aligned_zeros(4 * nf * LANES)  # room for the four samples of `_lanes_forward4`
    d = aligned_zeros(wmax * LANES)
    g = aligned_zeros(wmax * LANES)
    y = aligned_zeros(4 * lay[-1, 1] * LANES)
    acc = aligned_zeros(P * LANES)
    return f, d, g, y, acc


@njit(**_OPTS)
def _lanes_update(p, acc, s, P, m, rule, k, on):
    """One optimizer step (`_v_update`) on the lanes where on != 0, from acc = the gradient summed
    over the batch's m samples; the state s (S * P rows) holds the optimizer's S arrays."""
    mv = vsplat(float(m))
    for q in range(P):
        o = q * LANES
        pv = vload(p, o)
        gv = vload(acc, o)
        if m > 1:
            gv = vdiv(gv, mv)
        vstore(p, o, vselect(on, _v_update(rule, pv, gv, s, o, o + P * LANES, k), pv))


@njit(parallel=True, **_OPTS)
def lanes_train(params, state, lay, foff, X3, Y3, order3, rates, rule, B, hid, outc, lossc, active, curve):
    """Train every replica through the epochs of order3.

    params (C, P, LANES) updated in place; state (C, S * P, LANES) the optimizer's state, laid out
    like params (S = 0, 1 or 2 arrays), updated in place; X3 (1 or R, n, d); Y3 (1 or R, n, out);
    order3 (1 or R, E, n); rates (E * ceil(n / B), 3) the step constants of
    `nnlab.sgd.OptimizerSpec.rates`; rule a `Rule`; active (R,) uint8, cleared when a replica's loss
    stops being finite (it then stops updating, its state too); curve (R, E) receives the full-data
    loss after each epoch.
    """
    C, P = params.shape[0], params.shape[1]
    R = active.shape[0]
    E, n = order3.shape[1], order3.shape[2]
    nx = X3.shape[2]
    L = lay.shape[0]
    nout = lay[L - 1, 1]
    fused = _fused_sgd(rule)
    for c in prange(C):
        p, s = params[c], state[c]
        f, d, g, y, acc = _lanes_buffers(lay, foff, P)
        idx = np.zeros(LANES, dtype=np.int64)
        gn = np.zeros(LANES)
        onb = aligned_zeros(LANES)
        xr = _lanes_rows(c, R, X3.shape[0])
        orow = _lanes_rows(c, R, order3.shape[0])
        for l in range(LANES):
            r = c * LANES + l
            onb[l] = 1.0 if r < R and active[r] != 0 else 0.0
        on = vload(onb, 0)
        j = 0  # the update step within the slice
        for e in range(E):
            start = 0
            while start < n:
                stop = min(start + B, n)
                m = stop - start
                lr = rates[j, 0]
                if m > 1:
                    acc[:] = 0.0
                bl = vsplat(0.0)
                for t in range(start, stop):
                    for l in range(LANES):
                        idx[l] = order3[orow[l], e, t]
                    _lanes_gather(X3, xr, idx, nx, f)
                    _lanes_gather(Y3, xr, idx, nout, y)
                    _lanes_forward(p, lay, foff, f, hid, _forward_code(outc, lossc))
                    bl = vadd(bl, _lanes_output_delta(f, foff[L], y, nout, outc, lossc, d))
                    if m == 1 and fused:
                        on = vmul(on, visfinite(bl))
                        _lanes_backward_update(p, lay, foff, f, d, g, hid, lr, on)
                    elif m == 1:
                        on = vmul(on, visfinite(bl))
                        k = _step_constants(rule, rates, j)
                        masked = _lanes_masked(on, c, R)
                        _lanes_backward_rule(p, s, lay, foff, f, d, g, hid, rule, k, on, masked)
                    else:
                        _lanes_backward_accumulate(p, lay, foff, f, d, g, hid, acc)
                if m > 1:
                    on = vmul(on, visfinite(bl))
                    if fused:
                        lrv = vsplat(lr)
                        mv = vsplat(float(m))
                        for q in range(P):
                            pv = vload(p, q * LANES)
                            step = vmul(lrv, vdiv(vload(acc, q * LANES), mv))
                            vstore(p, q * LANES, vselect(on, vsub(pv, step), pv))
                    else:
                        _lanes_update(p, acc, s, P, m, rule, _step_constants(rule, rates, j), on)
                start = stop
                j += 1
            out = _lanes_full(p, lay, foff, X3, Y3, xr, hid, outc, lossc, f, d, g, y, acc, idx, False, gn)
            on = vmul(on, visfinite(out))
            for l in range(LANES):
                r = c * LANES + l
                if r < R:
                    curve[r, e] = vget(out, l)
        for l in range(LANES):
            r = c * LANES + l
            if r < R:
                active[r] = 1 if vget(on, l) != 0.0 else 0


@njit(parallel=True, **_OPTS)
def lanes_evaluate(params, lay, foff, X3, Y3, hid, outc, lossc, want_grad, loss, gnorm):
    """loss (R,) = full-data mean loss; with want_grad, gnorm (R,) = the norm of its gradient."""
    C, P = params.shape[0], params.shape[1]
    R = loss.shape[0]
    for c in prange(C):
        f, d, g, y, acc = _lanes_buffers(lay, foff, P)
        idx = np.zeros(LANES, dtype=np.int64)
        gn = np.zeros(LANES)
        xr = _lanes_rows(c, R, X3.shape[0])
        out = _lanes_full(
            params[c], lay, foff, X3, Y3, xr, hid, outc, lossc, f, d, g, y, acc, idx, want_grad, gn
        )
        for l in range(LANES):
            r = c * LANES + l
            if r < R:
                loss[r] = vget(out, l)
                gnorm[r] = gn[l]


# ---------------------------------------------------------------------------------------------------
# The replica layout: one replica at a time, each minibatch step a few small matrix products.
#
# params (R, P): replica r's W_1, b_1, W_2, ... in one row, every W_i (n_in, n_out, row-major) and b_i
# starting on a 64-byte boundary (`lay` offsets). A replica is trained start to end by one thread, so
# its weights stay in that core's cache for the whole epoch, and its numbers cannot depend on the other
# replicas or on the threads. The activations of a batch of m samples are rows: F_i (m, h_i) at
# f[rows * foff[i]:], rows >= m. The products go to BLAS dgemm (scipy's cython_blas, passed in as
# `gemm`: a function pointer argument keeps these functions in numba's disk cache), which the caller
# keeps single-threaded; every buffer BLAS sees is aligned alike for every replica, so its numbers
# depend only on the shapes and the data.


@functools.cache
def blas_dgemm():
    """scipy's BLAS dgemm as a ctypes function (all arguments by reference, Fortran order)."""
    import ctypes

    from numba.extending import get_cython_function_address

    vp = ctypes.c_void_p
    address = get_cython_function_address("scipy.linalg.cython_blas", "dgemm")
    return ctypes.CFUNCTYPE(None, *[vp] * 13)(address)


_N, _T = ord("N"), ord("T")


@njit(**_OPTS)
def _gemm(gemm, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, iw, fw):
    """Column-major c (m, n) = alpha op(a) op(b) + beta c; a, b, c are flat arrays starting at their
    matrix. iw (8,) int32 and fw (2,) hold the arguments BLAS takes by reference."""
    iw[0], iw[1], iw[2], iw[3], iw[4], iw[5], iw[6], iw[7] = ta, tb, m, n, k, lda, ldb, ldc
    fw[0], fw[1] = alpha, beta
    gemm(
        iw[0:].ctypes,
        iw[1:].ctypes,
        iw[2:].ctypes,
        iw[3:].ctypes,
        iw[4:].ctypes,
        fw[0:].ctypes,
        a.ctypes,
        iw[5:].ctypes,
        b.ctypes,
        iw[6:].ctypes,
        fw[1:].ctypes,
        c.ctypes,
        iw[7:].ctypes,
    )


@njit(**_OPTS)
def _mm(gemm, a, b, c, m, k, n, iw, fw):
    """Row-major c (m, n) = a (m, k) @ b (k, n) (column-major: c^T = b^T a^T)."""
    _gemm(gemm, _N, _N, n, m, k, 1.0, b, n, a, k, 0.0, c, n, iw, fw)


@njit(**_OPTS)
def _mm_bt(gemm, a, b, c, m, k, n, iw, fw):
    """Row-major c (m, n) = a (m, k) @ b^T, b (n, k)."""
    _gemm(gemm, _T, _N, n, m, k, 1.0, b, k, a, k, 0.0, c, n, iw, fw)


@njit(**_OPTS)
def _mm_at(gemm, a, b, c, k, m, n, alpha, beta, iw, fw):
    """Row-major c (m, n) = alpha a^T @ b + beta c, a (k, m), b (k, n)."""
    _gemm(gemm, _N, _T, n, m, k, alpha, b, n, a, m, beta, c, n, iw, fw)


@njit(**_OPTS)
def _rows_bias_act(f, fo, m, nout, p, bo, code, tmp):
    """Rows f[fo + s nout + k] = act(f[...] + b[k]) for s < m, LANES units at a time (the last few
    through `tmp`, so that every unit goes through the same vector code)."""
    full = nout - nout % LANES
    for s in range(m):
        row = fo + s * nout
        for k in range(0, full, LANES):
            v = vload(f, row + k)
            if bo >= 0:
                v = vadd(v, vload(p, bo + k))
            vstore(f, row + k, _v_act(v, code))
        if full < nout:
            for k in range(full, nout):
                tmp[k - full] = f[row + k] + (p[bo + k] if bo >= 0 else 0.0)
            vstore(tmp, 0, _v_act(vload(tmp, 0), code))
            for k in range(full, nout):
                f[row + k] = tmp[k - full]


@njit(**_OPTS)
def _rows_times_dact(g, f, fi, m, nin, hid, tmp):
    """Rows g[s nin + j] *= act'(f_i[s, j]): delta_i = act'(f_i) * (delta_{i+1} W_{i+1}^T)."""
    full = nin - nin % LANES
    for s in range(m):
        row = s * nin
        for j in range(0, full, LANES):
            vstore(g, row + j, vmul(vload(g, row + j), _v_dact(vload(f, fi + row + j), hid)))
        if full < nin:
            for j in range(full, nin):
                tmp[j - full] = f[fi + row + j]
            vstore(tmp, 0, _v_dact(vload(tmp, 0), hid))
            for j in range(full, nin):
                g[row + j] *= tmp[j - full]


# What the replica kernels know of the network: the layer table (n_in, n_out, W offset, b offset),
# the offsets of the activations f_i, and the codes of the hidden and output activations and the loss.
Spec = collections.namedtuple("Spec", ["lay", "foff", "hid", "outc", "lossc"])
# One thread's working memory: the activations f of up to `rows` samples (every layer's), deltas d
# and g (rows x the widest layer), tmp (one vector) and the by-reference arguments of BLAS (iw, fw).
Work = collections.namedtuple("Work", ["f", "d", "g", "tmp", "iw", "fw", "rows"])


@njit(**_OPTS)
def _work(spec, rows):
    lay, foff = spec.lay, spec.foff
    wmax = 1
    for i in range(lay.shape[0]):
        wmax = max(wmax, lay[i, 0], lay[i, 1])
    f = aligned_zeros(rows * (foff[foff.shape[0] - 1] + lay[lay.shape[0] - 1, 1]))
    d, g = aligned_zeros(rows * wmax), aligned_zeros(rows * wmax)
    return Work(f, d, g, aligned_zeros(LANES), np.zeros(8, dtype=np.int32), np.zeros(2), rows)


@njit(**_OPTS)
def _rows_forward(gemm, p, spec, work, m):
    """z_i = f_{i-1} W_i + b_i and f_i = act(z_i) for the m rows of f_0 (the output layer keeps z_L
    for cross_entropy, see `_forward_code`)."""
    lay, foff, f, rows = spec.lay, spec.foff, work.f, work.rows
    L = lay.shape[0]
    for i in range(L):
        nin, nout, wo, bo = lay[i, 0], lay[i, 1], lay[i, 2], lay[i, 3]
        fo = rows * foff[i + 1]
        _mm(gemm, f[rows * foff[i] :], p[wo:], f[fo:], m, nin, nout, work.iw, work.fw)
        code = _forward_code(spec.outc, spec.lossc) if i == L - 1 else spec.hid
        _rows_bias_act(f, fo, m, nout, p, bo, code, work.tmp)


@njit(**_OPTS)
def _rows_output(spec, work, Y, idx, m):
    """Sum over the m rows of the per-sample loss (row s's target Y[idx[s]]); d rows = delta_L."""
    fo = work.rows * spec.foff[spec.foff.shape[0] - 1]
    nout = spec.lay[spec.lay.shape[0] - 1, 1]
    total = 0.0
    for s in range(m):
        total += _output_row(
            work.f, fo + s * nout, 1, Y[idx[s]], 0, 1, nout, spec.outc, spec.lossc, work.d, s * nout, 1
        )
    return total


@njit(**_OPTS)
def _rows_delta(gemm, p, spec, work, i, m, d, g):
    """g rows = delta_{i-1} = act'(f_{i-1}) * (delta_i W_i^T) from d rows = delta_i (layer i > 0)."""
    nin, nout, wo = spec.lay[i, 0], spec.lay[i, 1], spec.lay[i, 2]
    _mm_bt(gemm, d, p[wo:], g, m, nout, nin, work.iw, work.fw)
    _rows_times_dact(g, work.f, work.rows * spec.foff[i], m, nin, spec.hid, work.tmp)


@njit(**_OPTS)
def _rows_backward(gemm, p, spec, work, m, lr, acc):
    """From delta_L (rows of work.d): with lr > 0 one SGD step, W_i -= lr/m f_{i-1}^T delta_i and
    b_i -= lr mean(delta_i), each delta_{i-1} = act'(f_{i-1}) * (delta_i W_i^T) taken from the old
    W_i; with lr = 0, acc += the summed gradient instead (acc laid out like p)."""
    lay, f, rows, iw, fw = spec.lay, work.f, work.rows, work.iw, work.fw
    d, g = work.d, work.g
    for i in range(lay.shape[0] - 1, -1, -1):
        nin, nout, wo, bo = lay[i, 0], lay[i, 1], lay[i, 2], lay[i, 3]
        fi = rows * spec.foff[i]
        if i > 0:
            _rows_delta(gemm, p, spec, work, i, m, d, g)
        if lr > 0.0:
            _mm_at(gemm, f[fi:], d, p[wo:], m, nin, nout, -lr / m, 1.0, iw, fw)
        else:
            _mm_at(gemm, f[fi:], d, acc[wo:], m, nin, nout, 1.0, 1.0, iw, fw)
        if bo >= 0:
            _rows_bias_step(p, acc, bo, d, m, nout, lr)
        d, g = g, d


@njit(**_OPTS)
def _rows_backward_rule(gemm, p, s, spec, work, m, rule, k, acc, tail):
    """From delta_L (rows of work.d): one optimizer step (`_rows_update`, step constants k) layer by
    layer from the top, each layer's summed gradient written to its part of acc (laid out like p)
    just before its update, each delta_{i-1} taken from the old W_i."""
    lay, f, rows, iw, fw = spec.lay, work.f, work.rows, work.iw, work.fw
    d, g = work.d, work.g
    for i in range(lay.shape[0] - 1, -1, -1):
        nin, nout, wo, bo = lay[i, 0], lay[i, 1], lay[i, 2], lay[i, 3]
        if i > 0:
            _rows_delta(gemm, p, spec, work, i, m, d, g)
        fi = rows * spec.foff[i]
        if m == 1:
            _rows_rank1_update(p, acc, s, wo, nin, nout, f, fi, d, rule, k, tail)
        else:
            _mm_at(gemm, f[fi:], d, acc[wo:], m, nin, nout, 1.0, 0.0, iw, fw)
            _rows_update(p, acc, s, wo, wo + nin * nout, m, rule, k, tail)
        if bo >= 0:
            acc[bo : bo + nout] = 0.0
            _rows_bias_step(p, acc, bo, d, m, nout, 0.0)
            _rows_update(p, acc, s, bo, bo + nout, m, rule, k, tail)
        d, g = g, d


@njit(**_OPTS)
def _rows_bias_step(p, acc, bo, d, m, nout, lr):
    """b -= lr * (sum of the m rows of d) / m (lr > 0), or acc[b] += that sum (lr = 0); LANES units at
    a time, each unit's rows summed in order."""
    full = nout - nout % LANES
    lrv, mv = vsplat(lr), vsplat(float(m))
    for k in range(0, full, LANES):
        col = vload(d, k)
        for s in range(1, m):
            col = vadd(col, vload(d, s * nout + k))
        if lr > 0.0:
            vstore(p, bo + k, vsub(vload(p, bo + k), vmul(lrv, vdiv(col, mv))))
        else:
            vstore(acc, bo + k, vadd(vload(acc, bo + k), col))
    for k in range(full, nout):
        col = d[k]
        for s in range(1, m):
            col += d[s * nout + k]
        if lr > 0.0:
            p[bo + k] -= lr * (col / m)
        else:
            acc[bo + k] += col


@njit(**_OPTS)
def loss_block(lay, foff):
    """Rows of the blocks the full-data pass runs through: its activations about 1 MB, 8 to 256."""
    width = foff[foff.shape[0] - 1] + lay[lay.shape[0] - 1, 1]
    return max(8, min(256, (131072 // width) // 8 * 8))


@njit(**_OPTS)
def _rows_full(gemm, p, spec, work, X, Y, acc):
    """Mean loss over all n samples, in blocks of `loss_block` rows; with acc (size P, else size 0),
    acc = the summed gradient as well."""
    n, nx = X.shape
    nb = loss_block(spec.lay, spec.foff)
    idx = np.arange(nb)
    total = 0.0
    for s0 in range(0, n, nb):
        m = min(nb, n - s0)
        for s in range(m):
            idx[s] = s0 + s
            work.f[s * nx : (s + 1) * nx] = X[s0 + s]
        _rows_forward(gemm, p, spec, work, m)
        total += _rows_output(spec, work, Y, idx, m)
        if acc.shape[0] > 0:
            _rows_backward(gemm, p, spec, work, m, 0.0, acc)
    return total / n


@njit(**_OPTS)
def _pick(r, A3):
    """The row of A3 (1 or R rows: shared or per replica) that replica r reads."""
    return min(np.int64(r), A3.shape[0] - 1)  # (prange's index may be unsigned)


@njit(**_OPTS)
def _rows_rank1_update(p, acc, s, wo, nin, nout, f, fi, d, rule, k, tail):
    """One sample's step (`_v_update`) on W_i (nin, nout at p[wo:]): its gradient, the outer product
    f_{i-1}^T delta_i, formed LANES entries at a time as the update goes (no pass through acc but for
    each row's last few entries, which go through `_rows_update`)."""
    P = p.shape[0]
    full = nout - nout % LANES
    for j in range(nin):
        fj = vsplat(f[fi + j])
        row = wo + j * nout
        for kk in range(0, full, LANES):
            q = row + kk
            vstore(p, q, _v_update(rule, vload(p, q), vmul(fj, vload(d, kk)), s, q, q + P, k))
        if full < nout:
            for kk in range(full, nout):
                acc[row + kk] = f[fi + j] * d[kk]
            _rows_update(p, acc, s, row + full, row + nout, 1, rule, k, tail)


@njit(**_OPTS)
def _rows_update(p, acc, s, lo, hi, m, rule, k, tail):
    """One optimizer step (`_v_update`) on one replica's parameters p[lo:hi] from acc = the gradient
    summed over the batch's m samples (laid out like p); its state s holds the optimizer's arrays
    (each as long as p) one after the other. LANES parameters at a time, the last few through ``tail``
    (4 vectors: p, g and the two state arrays), so that every parameter goes through the same
    vector code."""
    P = p.shape[0]
    full = hi - (hi - lo) % LANES
    mv = vsplat(float(m))
    for q in range(lo, full, LANES):
        gv = vload(acc, q)
        if m > 1:
            gv = vdiv(gv, mv)
        vstore(p, q, _v_update(rule, vload(p, q), gv, s, q, q + P, k))
    if full < hi:
        S = s.shape[0] // P
        for q in range(full, hi):
            tail[q - full] = p[q]
            tail[LANES + q - full] = acc[q]
            for a in range(S):
                tail[(2 + a) * LANES + q - full] = s[a * P + q]
        gv = vload(tail, LANES)
        if m > 1:
            gv = vdiv(gv, mv)
        vstore(tail, 0, _v_update(rule, vload(tail, 0), gv, tail, 2 * LANES, 3 * LANES, k))
        for q in range(full, hi):
            p[q] = tail[q - full]
            for a in range(S):
                s[a * P + q] = tail[(2 + a) * LANES + q - full]


@njit(**_OPTS)
def _replica_epochs(gemm, p, s, spec, X, Y, order, rates, rule, B, on, curve):
    """One replica through the epochs of order (E, n) with the step constants ``rates`` and update
    rule ``rule`` (its state s); returns whether it is still active. (The parallel loops below only
    call this and `_rows_full`: numba's parfors mishandle a Work tuple made inside their body.)"""
    E, n = order.shape
    nx = X.shape[1]
    work = _work(spec, max(min(B, n), loss_block(spec.lay, spec.foff)))  # a batch is at most n rows
    none = np.zeros(0)
    fused = _fused_sgd(rule)
    acc = aligned_zeros(0 if fused else p.shape[0])
    tail = aligned_zeros(4 * LANES)
    j = 0  # the update step within the slice
    for e in range(E):
        start = 0
        while on and start < n:
            m = min(B, n - start)
            idx = order[e, start : start + m]
            for s_ in range(m):
                work.f[s_ * nx : (s_ + 1) * nx] = X[idx[s_]]
            _rows_forward(gemm, p, spec, work, m)
            if not math.isfinite(_rows_output(spec, work, Y, idx, m)):
                on = False  # the batch loss before the step: this replica has diverged
                break
            if fused:
                if rates[j, 0] > 0.0:  # (a step schedule's lr may underflow to 0: no step)
                    _rows_backward(gemm, p, spec, work, m, rates[j, 0], none)
            else:
                k = _step_constants(rule, rates, j)
                _rows_backward_rule(gemm, p, s, spec, work, m, rule, k, acc, tail)
            start += m
            j += 1
        curve[e] = _rows_full(gemm, p, spec, work, X, Y, none)
        on = on and math.isfinite(curve[e])
    return on


@njit(**_OPTS)
def _replica_loss(gemm, p, spec, X, Y, want_grad):
    """(full-data mean loss, norm of its gradient or 0) of one replica."""
    acc = np.zeros(p.shape[0] if want_grad else 0)
    loss = _rows_full(gemm, p, spec, _work(spec, loss_block(spec.lay, spec.foff)), X, Y, acc)
    sq = 0.0
    for q in range(acc.shape[0]):
        sq += (acc[q] / X.shape[0]) ** 2
    return loss, math.sqrt(sq)


@njit(parallel=True, **_OPTS)
def replica_train(gemm, params, state, spec, X3, Y3, order3, rates, rule, B, active, curve):
    """Train every replica through the epochs of order3, one replica per thread at a time.

    params (R, P) updated in place; state (R, S * P) the optimizer's S arrays (0, 1 or 2) of each
    replica, updated in place; spec a `Spec`; X3 (1 or R, n, d); Y3 (1 or R, n, out); order3 (1 or R,
    E, n); rates (E * ceil(n / B), 3) the step constants of `nnlab.sgd.OptimizerSpec.rates`; rule a
    `Rule`; active (R,) uint8, cleared when a replica's loss stops being finite (it then stops
    updating, its state too); curve (R, E) receives the full-data loss after each epoch.
    """
    for r in prange(params.shape[0]):
        X, Y, order = X3[_pick(r, X3)], Y3[_pick(r, Y3)], order3[_pick(r, order3)]
        on = _replica_epochs(
            gemm, params[r], state[r], spec, X, Y, order, rates, rule, B, active[r] != 0, curve[r]
        )
        active[r] = 1 if on else 0


@njit(parallel=True, **_OPTS)
def replica_evaluate(gemm, params, spec, X3, Y3, want_grad, loss, gnorm):
    """loss (R,) = full-data mean loss; with want_grad, gnorm (R,) = the norm of its gradient."""
    for r in prange(params.shape[0]):
        loss[r], norm = _replica_loss(gemm, params[r], spec, X3[_pick(r, X3)], Y3[_pick(r, Y3)], want_grad)
        if want_grad:
            gnorm[r] = norm


# ---------------------------------------------------------------------------------------------------
# Sample orders: Fisher-Yates shuffles driven by SplitMix64, one stream per (replica key, epoch).

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_EPOCH_MIX = np.uint64(0xD1B54A32D192ED03)


@njit(inline="always", **_OPTS)
def _splitmix64(state):
    """(next state, 64 random bits): Steele, Lea and Flood's SplitMix64."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(parallel=True, **_OPTS)
def shuffled_orders(keys, e0, E, n):
    """(R, E, n) int64: row [r, e] is the permutation of range(n) for replica key keys[r] at epoch
    e0 + e. Each (key, epoch) has its own stream, so any epoch can be drawn alone."""
    R = keys.shape[0]
    out = np.empty((R, E, n), dtype=np.int64)
    for r in prange(R):
        for e in range(E):
            _, state = _splitmix64(keys[r] ^ (np.uint64(e0 + e) * _EPOCH_MIX))
            row = out[r, e]
            for i in range(n):
                row[i] = i
            for i in range(n - 1, 0, -1):
                state, bits = _splitmix64(state)
                # 53 random bits as a float in [0, 1): bias below n / 2^53, negligible.
                j = np.int64(np.float64(bits >> np.uint64(11)) * (1.0 / 9007199254740992.0) * (i + 1))
                row[i], row[j] = row[j], row[i]
    return out


@njit(**_OPTS)
def _apply(x, which):
    out = aligned_zeros(x.size + LANES)
    buf = aligned_zeros(x.size + LANES)
    buf[: x.size] = x.ravel()
    for q in range(0, x.size, LANES):
        v = vload(buf, q)
        if which == 0:
            vstore(out, q, vtanh(v))
        elif which == 1:
            vstore(out, q, vsigmoid(v))
        else:
            vstore(out, q, vsqrt_newton(v))
    return out[: x.size].reshape(x.shape)


def tanh_array(x: np.ndarray) -> np.ndarray:
    """The kernels' vector tanh applied to an array (for tests and comparisons)."""
    return _apply(np.ascontiguousarray(x, dtype=np.float64), 0)


def sigmoid_array(x: np.ndarray) -> np.ndarray:
    """The kernels' vector sigmoid applied to an array (for tests and comparisons)."""
    return _apply(np.ascontiguousarray(x, dtype=np.float64), 1)


def sqrt_array(x: np.ndarray) -> np.ndarray:
    """The kernels' square root by Newton's iteration (Adam's step) applied to an array (x >= 0)."""
    return _apply(np.ascontiguousarray(x, dtype=np.float64), 2)
