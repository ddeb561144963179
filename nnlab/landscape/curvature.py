"""Second-order back-propagation: Hessian-vector products of the full-data loss by Pearlmutter's
R-operator, the full Hessian, and its spectrum, for all replicas at once.

Notation of `nnlab.network`, indexed like the math: layers i = 1..L with W_i (R, n_{i-1}, n_i) and
b_i (R, n_i) (``net.weights[i - 1]``, ``net.biases[i - 1]``). A direction V = (V_1, v_1, ..., V_L, v_L)
in parameter space is flattened like `nnlab.network.flat_params`; K directions per replica are taken at
once, V (R, K, P). R{x} is the derivative of x along V. The loss is the mean over the n samples of the
per-sample loss, as in `backprop`.

Forward, with R{f_0} = 0:

    R{z_i} = R{f_{i-1}} W_i + f_{i-1} V_i + v_i
    R{f_i} = act'(f_i) * R{z_i}

Backward, with g_i = delta_{i+1} W_{i+1}^T (so that delta_i = act'(f_i) * g_i):

    R{delta_L} = (d2Loss/dz_L2) R{z_L}                      (`nnlab.functions.output_delta_r`)
    R{delta_i} = act''(f_i) * R{z_i} * g_i + act'(f_i) * (R{delta_{i+1}} W_{i+1}^T + delta_{i+1} V_{i+1}^T)

and the product H V, the R-derivative of the gradient:

    (H V)_{W_i} = (R{f_{i-1}}^T delta_i + f_{i-1}^T R{delta_i}) / n,    (H V)_{b_i} = sum_s R{delta_i} / n
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnlab.errors import InputError
from nnlab.functions import DERIVATIVES, SECOND_DERIVATIVES, output_delta, output_delta_r
from nnlab.network import Network, ParamLayout, forward_checked

# Directions per block are chosen so that one block's arrays stay near this many float64s (~64 MB).
BLOCK_FLOATS = 1_000_000


@dataclass(frozen=True, eq=False)
class _Point:
    """What the R-operator needs of the network at its point, indexed like the math (entry 0 unused):
    f_0..f_L (R, n, n_i), delta_1..delta_L, and for the hidden layers act'(f_i) and act''(f_i) * g_i,
    computed once for every direction."""

    net: Network
    Y: np.ndarray
    loss: str
    W: tuple
    b: tuple | None
    f: tuple
    delta: tuple
    d1: tuple
    d2g: tuple

    @property
    def L(self) -> int:
        return len(self.W) - 1


def _point(net: Network, X: np.ndarray, Y: np.ndarray, loss: str) -> _Point:
    f, _, Y = forward_checked(net, X, Y, loss)
    R, n = net.n_replicas, f[0].shape[1]
    L = len(net.weights)
    W = (None, *net.weights)
    b = None if net.biases is None else (None, *net.biases)
    f = tuple(np.broadcast_to(fi, (R, n, fi.shape[2])) for fi in f)
    delta: list = [None] * (L + 1)
    d1: list = [None] * (L + 1)
    d2g: list = [None] * (L + 1)
    delta[L] = np.broadcast_to(output_delta(net.output, loss, f[L], Y), f[L].shape)
    for i in range(L - 1, 0, -1):
        g = delta[i + 1] @ W[i + 1].transpose(0, 2, 1)  # (R, n, n_{i+1}) @ (R, n_{i+1}, n_i)
        d1[i] = DERIVATIVES[net.hidden](f[i])
        d2g[i] = SECOND_DERIVATIVES[net.hidden](f[i]) * g
        delta[i] = d1[i] * g
    return _Point(net, Y, loss, W, b, f, tuple(delta), tuple(d1), tuple(d2g))


def _products(
    p: _Point, V: np.ndarray | None, layer: int | None = None, units: tuple[int, int] | None = None
) -> np.ndarray:
    """H V for K directions per replica: V (R, K, P) -> (R, K, P).

    With ``layer`` = j, the directions lie in layer j's parameters only: the forward R-pass starts
    at layer j (R{z_i} = 0 below it) and the backward one stops there, and only the products' entries
    of layers j..L are computed (the others are left 0; `hessian` takes them from the symmetry).
    With ``units`` = (start, K) as well, the directions are the unit vectors e_start, ...,
    e_{start+K-1} (V is not needed): R{z_j} is then a column of f_{j-1} (or of ones, for a bias).

    The R-arrays are laid out (R, n, K, n_i), samples and directions together, so that every
    product below is one matrix product per replica: (n K, n_{i-1}) @ (n_{i-1}, n_i) and the like.
    """
    net, L = p.net, p.L
    R, n = p.f[0].shape[:2]
    K = units[1] if units is not None else V.shape[1]
    P = net.n_params
    offsets = ParamLayout.of(net).offsets
    first = 1 if layer is None else layer
    mm = np.matmul  # (R, a, b) @ (R, b, c): one matrix product per replica
    # The direction, per layer: V_i (R, n_{i-1}, K, n_i) and v_i (R, K, n_i); None where it is 0.
    Vw: list = [None] * (L + 2)
    Vb: list = [None] * (L + 2)
    for i in range(first, L + 1 if layer is None else layer + 1) if units is None else ():
        n_in, n_out = p.W[i].shape[1:]
        w_at, b_at = offsets[i]
        Vw[i] = V[:, :, w_at : w_at + n_in * n_out].reshape(R, K, n_in, n_out).transpose(0, 2, 1, 3)
        if b_at >= 0:
            Vb[i] = V[:, :, b_at : b_at + n_out]
    # Forward: R{z_i} and R{f_i}, each (R, n, K, n_i).
    Rz: list = [None] * (L + 1)
    Rf: list = [None] * (L + 1)
    for i in range(first, L + 1):
        n_in, n_out = p.W[i].shape[1:]
        Rz[i] = np.zeros((R, n, K, n_out))
        if units is not None and i == first:
            _unit_rz(p, Rz[i], i, units[0] - offsets[i][0])
        if Vw[i] is not None:
            # f_{i-1} V_i: (R, n, n_{i-1}) @ (R, n_{i-1}, K n_i)
            Rz[i] += mm(p.f[i - 1], Vw[i].reshape(R, n_in, K * n_out)).reshape(R, n, K, n_out)
        if i > first:
            # R{f_{i-1}} W_i: (R, n K, n_{i-1}) @ (R, n_{i-1}, n_i)
            Rz[i] += mm(Rf[i - 1].reshape(R, n * K, n_in), p.W[i]).reshape(R, n, K, n_out)
        if Vb[i] is not None:
            Rz[i] += Vb[i][:, None]
        if i < L:
            Rf[i] = p.d1[i][:, :, None] * Rz[i]
    # Backward: R{delta_i}, (R, n, K, n_i), and the products, layer by layer.
    HV = np.zeros((R, K, P))
    Rdelta = output_delta_r(net.output, p.loss, p.f[L][:, :, None], p.Y[:, :, None], Rz[L])
    for i in range(L, first - 1, -1):
        n_in, n_out = p.W[i].shape[1:]
        if i < L:
            n_next = p.W[i + 1].shape[2]
            # R{g_i} = R{delta_{i+1}} W_{i+1}^T + delta_{i+1} V_{i+1}^T
            Rg = mm(Rdelta.reshape(R, n * K, n_next), p.W[i + 1].transpose(0, 2, 1)).reshape(R, n, K, n_out)
            if Vw[i + 1] is not None:
                Vt = Vw[i + 1].transpose(0, 3, 2, 1).reshape(R, n_next, K * n_out)  # V_{i+1}^T
                Rg += mm(p.delta[i + 1], Vt).reshape(R, n, K, n_out)
            Rdelta = p.d2g[i][:, :, None] * Rz[i] + p.d1[i][:, :, None] * Rg
        w_at, b_at = offsets[i]
        # f_{i-1}^T R{delta_i}: (R, n_{i-1}, n) @ (R, n, K n_i)
        hw = mm(p.f[i - 1].transpose(0, 2, 1), Rdelta.reshape(R, n, K * n_out)).reshape(R, n_in, K, n_out)
        hw = hw.transpose(0, 2, 1, 3)
        if i > first:
            # R{f_{i-1}}^T delta_i: (R, K n_{i-1}, n) @ (R, n, n_i)
            RfT = Rf[i - 1].reshape(R, n, K * n_in).transpose(0, 2, 1)
            hw = hw + mm(RfT, p.delta[i]).reshape(R, K, n_in, n_out)
        HV[:, :, w_at : w_at + n_in * n_out] = hw.reshape(R, K, -1) / n
        if b_at >= 0:
            HV[:, :, b_at : b_at + n_out] = Rdelta.sum(axis=1) / n
    return HV


def _unit_rz(p: _Point, Rz: np.ndarray, j: int, q0: int) -> None:
    """R{z_j} (R, n, K, n_j) of the unit directions of layer j's parameters q0, ..., q0 + K - 1
    (counted from W_j's first entry: W_j row-major, then b_j): the direction of W_j[a, b] gives
    column b = f_{j-1}[:, a], that of b_j[b] gives column b = 1."""
    n_in, n_out = p.W[j].shape[1:]
    q = q0 + np.arange(Rz.shape[2])
    w = q < n_in * n_out
    m = np.flatnonzero(w)
    Rz[:, :, m, q[w] % n_out] = p.f[j - 1][:, :, q[w] // n_out]
    m = np.flatnonzero(~w)
    Rz[:, :, m, q[~w] - n_in * n_out] = 1.0


def hvp(
    net: Network, X: np.ndarray, Y: np.ndarray, V: np.ndarray, *, loss: str = "half_squared"
) -> np.ndarray:
    """Hessian-vector products of the full-data mean loss, by the second-order recursion.

    Parameters
    ----------
    net : Network
        R replicas.
    X : ndarray (n, d) or (R, n, d)
    Y : ndarray (n, out) or (R, n, out)
    V : ndarray (R, P) or (R, K, P)
        One direction, or K directions, per replica, flattened like `nnlab.network.flat_params`.
    loss : str
        A loss of `nnlab.functions.LOSSES`.

    Returns
    -------
    ndarray
        H V, shaped like ``V``.
    """
    V = np.asarray(V, dtype=np.float64)
    P = net.n_params
    if V.ndim not in (2, 3) or V.shape[0] != net.n_replicas or V.shape[-1] != P:
        raise InputError(f"V: expected shape (R={net.n_replicas}, P={P}) or (R, K, P), got {V.shape}")
    p = _point(net, X, Y, loss)
    return _products(p, V[:, None] if V.ndim == 2 else V)[:, 0] if V.ndim == 2 else _products(p, V)


def hessian(net: Network, X: np.ndarray, Y: np.ndarray, *, loss: str = "half_squared") -> np.ndarray:
    """The full Hessian of the full-data mean loss per replica, from P Hessian-vector products.

    The unit directions are taken a layer at a time: those of layer j give the Hessian's rows of
    layer j against layers j..L (the R-passes never touch the layers below j), and the symmetry gives
    the rest. Blocks of replicas and directions keep the R-arrays near BLOCK_FLOATS float64.

    Memory: R P^2 float64 for the result; meant for P up to a few thousand. Above that use
    `extreme_eigenvalues`.

    Returns
    -------
    ndarray (R, P, P)
    """
    p = _point(net, X, Y, loss)
    R, P, n = net.n_replicas, net.n_params, p.f[0].shape[1]
    offsets = ParamLayout.of(net).offsets
    H = np.zeros((R, P, P))
    for j in range(1, p.L + 1):
        lo = offsets[j][0]
        hi = offsets[j + 1][0] if j < p.L else P
        per_direction = n * sum(net.sizes[j:]) + P  # floats of one direction's R-arrays and product
        K = int(np.clip(BLOCK_FLOATS // per_direction, 1, hi - lo))  # directions per block
        replicas = int(np.clip(BLOCK_FLOATS // (per_direction * K), 1, R))  # replicas per block
        for r0 in range(0, R, replicas):
            sub = _subset(p, slice(r0, r0 + replicas))
            Rc = sub.net.n_replicas
            for start in range(lo, hi, K):
                k = min(K, hi - start)
                H[r0 : r0 + Rc, start : start + k, lo:] = _products(sub, None, j, (start, k))[:, :, lo:]
    # Rows of layer j hold its blocks with layers >= j: mirror the blocks off the diagonal, and
    # average each diagonal block with its transpose (they agree to rounding).
    H += H.transpose(0, 2, 1)
    for j in range(1, p.L + 1):
        lo, hi = offsets[j][0], offsets[j + 1][0] if j < p.L else P
        H[:, lo:hi, lo:hi] *= 0.5
    return H


def hvp_operator(net: Network, X: np.ndarray, Y: np.ndarray, *, loss: str = "half_squared"):
    """v (P,) -> H v at the one replica of ``net``, the forward and backward passes done once for
    every product (what Krylov solvers and Lanczos call over and over)."""
    p = _point(net, X, Y, loss)
    return lambda v: _products(p, np.asarray(v, dtype=np.float64).reshape(1, 1, -1))[0, 0]


def _subset(p: _Point, r: slice) -> _Point:
    """The point's arrays of replicas ``r`` only."""

    def cut(seq):
        return tuple(None if a is None else a[r] for a in seq)

    Y = p.Y if p.Y.shape[0] == 1 else p.Y[r]
    b = None if p.b is None else cut(p.b)
    return _Point(
        p.net.replica(range(p.net.n_replicas)[r]),
        Y,
        p.loss,
        cut(p.W),
        b,
        cut(p.f),
        cut(p.delta),
        cut(p.d1),
        cut(p.d2g),
    )


def gradient(net: Network, X: np.ndarray, Y: np.ndarray, *, loss: str = "half_squared") -> tuple:
    """(loss (R,), gradient (R, P) flattened like `flat_params`) by `backprop`."""
    from nnlab.network import backprop

    g = backprop(net, X, Y, loss=loss)
    parts = []
    for i, gw in enumerate(g.weights):
        parts.append(gw.reshape(gw.shape[0], -1))
        if g.biases is not None:
            parts.append(g.biases[i])
    return g.loss, np.concatenate(parts, axis=1)


def extreme_eigenvalues(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    loss: str = "half_squared",
    k: int = 1,
    tol: float = 1e-10,
    basis: np.ndarray | None = None,
    vectors: bool = False,
):
    """The k algebraically smallest and the largest Hessian eigenvalue per replica, by Lanczos
    (scipy's `eigsh` on the Hessian-vector products), for networks too large for `hessian`.

    Parameters
    ----------
    basis : ndarray (P, m), optional
        Orthonormal columns: the eigenvalues of the Hessian restricted to their span, Q^T H Q
        (the same basis for every replica; give one replica at a time otherwise).
    vectors : bool
        Also return the eigenvectors of the k smallest, in parameter space.

    Returns
    -------
    smallest : ndarray (R, k), ascending
    largest : ndarray (R,)
    eigenvectors : ndarray (R, P, k), with ``vectors`` only
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    P = net.n_params
    Q = None if basis is None else np.asarray(basis, dtype=np.float64)
    if Q is not None and (Q.ndim != 2 or Q.shape[0] != P):
        raise InputError(f"basis: expected shape (P={P}, m), got {Q.shape}")
    m = P if Q is None else Q.shape[1]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k < m:
        raise InputError(f"k: expected an int in 1..{m - 1} (the dimension - 1), got {k!r}")
    smallest = np.empty((net.n_replicas, k))
    largest = np.empty(net.n_replicas)
    found = np.empty((net.n_replicas, P, k))
    for r in range(net.n_replicas):
        one = net.replica(r)
        Xr = X if np.ndim(X) == 2 else np.asarray(X)[r]
        Yr = Y if np.ndim(Y) == 2 else np.asarray(Y)[r]
        p = _point(one, Xr, Yr, loss)

        def product(v, p=p):
            if Q is None:
                return _products(p, v.reshape(1, 1, -1))[0, 0]
            return Q.T @ _products(p, (Q @ v).reshape(1, 1, -1))[0, 0]

        op = LinearOperator((m, m), matvec=product, dtype=np.float64)
        start = np.random.default_rng(0).normal(size=m)  # one fixed start: an answer per replica alone
        lam, V = eigsh(op, k=k, which="SA", tol=tol, v0=start)
        order = np.argsort(lam)
        smallest[r], found[r] = lam[order], V[:, order] if Q is None else Q @ V[:, order]
        largest[r] = eigsh(op, k=1, which="LA", tol=tol, v0=start, return_eigenvectors=False)[0]
    return (smallest, largest, found) if vectors else (smallest, largest)


@dataclass(frozen=True)
class Extremes:
    """What `lanczos` found for one network.

    Attributes
    ----------
    smallest : ndarray (k,)
        The k algebraically smallest eigenvalues, ascending.
    largest : float
        The largest eigenvalue.
    vectors : ndarray (P, k)
        Their eigenvectors, orthonormal, in parameter space.
    tol : float
        Each eigenvalue is within ``tol`` of the operator's (an absolute bound: the Ritz residual
        |H v - lambda v| <= tol, and an eigenvalue lies within the residual of a Ritz value).
    converged : bool
        False when the Lanczos iterations ran out (``smallest`` then holds the Ritz values reached,
        each still an upper bound of the eigenvalue of its rank).
    """

    smallest: np.ndarray
    largest: float
    vectors: np.ndarray
    tol: float
    converged: bool


def lanczos(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    loss: str = "half_squared",
    k: int = 8,
    rtol: float = 1e-8,
    symmetry: np.ndarray | None = None,
    maxiter: int | None = None,
) -> Extremes:
    """The k smallest and the largest Hessian eigenvalue of a one-replica network by Lanczos on
    Hessian-vector products alone (never a P x P matrix), to an absolute tolerance rtol * |lambda_max|.

    ARPACK stops a Ritz pair at |r| <= tol |theta|, which for eigenvalues near 0 (the ones that decide
    flat against negative) asks for far more than rounding allows. So the largest eigenvalue s is found
    first (well separated, fast), and the smallest are found on H + s I, whose Ritz values near s stop
    at |r| <= rtol s: an absolute tolerance on the scale of the spectrum. The Krylov spaces of H and
    H + s I are the same, so the shift costs no iterations.

    Parameters
    ----------
    symmetry : ndarray (P, m), optional
        Tangents of continuous symmetries (`nnlab.landscape.polish.symmetry_directions`): the
        spectrum is that of the Hessian on their orthogonal complement (the operator is projected,
        and the tangents' own directions moved to the top of the spectrum, where SA never looks).
    maxiter : int, optional
        ARPACK's restarts (default its own, 10 P).
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    if net.n_replicas != 1:
        raise InputError(f"net: lanczos takes one replica, got {net.n_replicas}")
    P = net.n_params
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k < P:
        raise InputError(f"k: expected an int in 1..{P - 1}, got {k!r}")
    p = _point(net, X, Y, loss)
    T = None
    if symmetry is not None and symmetry.shape[1]:
        U, s, _ = np.linalg.svd(symmetry, full_matrices=False)
        T = U[:, s > 1e-10 * s.max()]  # orthonormal basis of the tangents' span

    def project(v):
        return v if T is None else v - T @ (T.T @ v)

    def product(v):
        return project(_products(p, project(v).reshape(1, 1, -1))[0, 0])

    start = np.random.default_rng(0).normal(size=P)  # one fixed start: an answer per network alone
    op = LinearOperator((P, P), matvec=product, dtype=np.float64)
    largest = float(eigsh(op, k=1, which="LA", tol=1e-10, v0=start, return_eigenvectors=False)[0])
    shift = max(abs(largest), 1e-300)

    def shifted(v):
        out = product(v) + shift * v
        return out if T is None else out + 2 * shift * (T @ (T.T @ v))

    op = LinearOperator((P, P), matvec=shifted, dtype=np.float64)
    converged = True
    try:
        lam, V = eigsh(op, k=k, which="SA", tol=rtol, v0=start, maxiter=maxiter)
    except ArpackNoConvergence as err:
        lam, V, converged = err.eigenvalues, err.eigenvectors, False
        if len(lam) == 0:
            return Extremes(np.full(k, np.nan), largest, np.zeros((P, k)), np.inf, False)
    order = np.argsort(lam)
    lam, V = lam[order] - shift, V[:, order]
    largest = max(largest, float(lam.max()))
    # ARPACK's bound |r| <= rtol |theta| with theta <= 2 s for every Ritz value of H + s I below 2 s.
    return Extremes(lam, largest, V, 2 * rtol * shift, converged)
