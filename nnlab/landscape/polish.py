"""Polish an end point to the critical point it sits near, and certify what that point is.

SGD with a constant learning rate never settles: its end point jitters around a critical point at the
noise level. `certify` takes each replica there and classifies it:

1. **L-BFGS** (scipy's L-BFGS-B) on the full-data loss, a replica at a time, from the trained weights,
   until the loss falls below the threshold: a ``solved`` end point stays solved whatever a further
   polish does (it only lowers the loss), so it is polished no further and given no spectrum (an end
   point already below the threshold is not polished at all).
2. **Newton** steps with the exact Hessian on the gradient system grad L = 0, as Levenberg-Marquardt
   does it, s = -(H^2 + mu I)^{-1} H g with mu adapted: quadratic convergence at a strict minimum,
   and still convergent where H is singular, to whatever critical point is near (a saddle too).
   Skipped when L-BFGS already reached the target gradient, or ran off (see ``valley``).
3. **Classification** of the polished point from its loss, gradient norm and Hessian spectrum,
   with tolerances relative to the spectrum's scale s = max |lambda| (see `Options`):

   - ``solved``: loss below the experiment's threshold;
   - ``minimum``: |grad| <= gtol s, every eigenvalue > flat s (a strict local minimum);
   - ``valley``: the polish ran off: the parameter norm grew by more than ``valley`` of its start
     and was still growing at the end, the loss not rising (a minimum at infinity, units saturating
     while the loss creeps down; or a very long way to a finite one, which a larger budget tells
     apart);
   - ``unconverged``: |grad| > gtol s after the budget;
   - ``saddle``: an eigenvalue < -negative s, confirmed by a step along its eigenvector that lowers
     the loss by at least a quarter of the quadratic prediction;
   - ``degenerate``: no clearly negative eigenvalue, but ``n_flat`` eigenvalues with
     |lambda| <= flat s (a flat valley floor, a higher-order saddle, or a dead unit).

Continuous symmetries are not flat directions of a minimum: a relu unit can be rescaled (incoming
weights and bias times a, outgoing weights over a) and identity units mixed by any invertible matrix
without changing the function, so the loss is flat along those orbits at every point. The spectrum is
taken on the Hessian restricted to the complement of the orbit's tangent space (``n_symmetry``
directions); tanh and sigmoid units have discrete symmetries only (permutations, and sign flips for
tanh), which leave no flat direction.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields

import numpy as np

from nnlab.errors import InputError
from nnlab.functions import ACTIVATIONS, DERIVATIVES, output_delta, output_loss
from nnlab.landscape.curvature import extreme_eigenvalues, hessian
from nnlab.network import Network, as_replicated, check_loss, flat_params, loss_of, network_from_flat

KINDS = ("solved", "minimum", "degenerate", "saddle", "valley", "unconverged")
# The certification procedure's version: stored certificates of an older procedure are redone.
PROCEDURE = 3


@dataclass(frozen=True)
class Options:
    """Budgets and tolerances of `certify`. Eigenvalue and gradient tolerances are relative to the
    spectrum's scale s = max |lambda| of the polished point's Hessian.

    Attributes
    ----------
    lbfgs_iters : int
        L-BFGS iterations per end point.
    newton_iters : int
        Hessians (and eigendecompositions) the Newton (Levenberg-Marquardt) steps after L-BFGS may
        compute; steps that reuse one in between are not counted.
    gtol : float
        A critical point has |grad| <= gtol * s.
    flat : float
        An eigenvalue with |lambda| <= flat * s is flat.
    negative : float
        An eigenvalue below -negative * s is clearly negative.
    valley : float
        The polish ran off when the parameter norm grew by more than this share of its start.
    max_full : int
        Networks of up to this many parameters get the full Hessian and spectrum; larger ones the
        32 smallest and the largest eigenvalue by Lanczos (of the Hessian restricted to the
        complement of the symmetry directions), and L-BFGS alone.
    """

    lbfgs_iters: int = 2000
    newton_iters: int = 30
    gtol: float = 1e-8
    flat: float = 1e-6
    negative: float = 1e-6
    valley: float = 0.5
    max_full: int = 3000

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type == "int" and (isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1):
                raise InputError(f"{f.name}: expected an int >= 1, got {v!r}")
            if f.type == "float" and (
                isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < np.inf
            ):
                raise InputError(f"{f.name}: expected a number > 0, got {v!r}")


@dataclass(frozen=True, eq=False)
class Certificate:
    """What `certify` found, one entry per replica.

    Attributes
    ----------
    network : Network
        The polished replicas.
    kind : ndarray (R,) of str
        One of `KINDS`.
    start_loss, polished_loss, grad_norm : ndarray (R,)
        Loss before and after polishing, and the gradient norm after.
    lambda_min, lambda_max : ndarray (R,)
        Extreme eigenvalues of the Hessian (restricted to the complement of the symmetry orbit);
        NaN for a solved end point.
    n_flat, n_negative, n_symmetry : ndarray (R,)
        Flat and clearly negative eigenvalues, and the symmetry directions taken out (whole
        numbers; NaN for a solved end point).
    displacement : ndarray (R,)
        |theta_polished - theta_start|.
    norm_start, norm_end : ndarray (R,)
        |theta| before and after.
    spectrum : list of ndarray
        Per replica, the eigenvalues found, ascending (all of them up to ``max_full`` parameters;
        none for a solved end point).
    """

    network: Network
    kind: np.ndarray
    start_loss: np.ndarray
    polished_loss: np.ndarray
    grad_norm: np.ndarray
    lambda_min: np.ndarray
    lambda_max: np.ndarray
    n_flat: np.ndarray
    n_negative: np.ndarray
    n_symmetry: np.ndarray
    displacement: np.ndarray
    norm_start: np.ndarray
    norm_end: np.ndarray
    spectrum: list


# ---------------------------------------------------------------------------------------------------
# The loss and gradient of one replica, for L-BFGS.


@dataclass(frozen=True, eq=False)
class _Objective:
    """Loss and gradient of one replica's flat parameters, theta (P,) -> (loss, grad (P,)): the
    recursion of `nnlab.network.backprop` on 2-D arrays, without the replica axis, because L-BFGS
    calls it thousands of times per end point (a test holds it to `backprop`)."""

    sizes: tuple[int, ...]
    bias: bool
    hidden: str
    output: str
    loss: str
    X: np.ndarray
    Y: np.ndarray

    def layers(self, theta: np.ndarray) -> tuple[list, list]:
        W, b, at = [], [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            W.append(theta[at : at + n_in * n_out].reshape(n_in, n_out))
            at += n_in * n_out
            if self.bias:
                b.append(theta[at : at + n_out])
                at += n_out
        return W, b

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = self.layers(theta)
        L, n = len(W), len(self.X)
        f = [self.X]
        for i in range(L):
            z = f[i] @ W[i] + (b[i] if self.bias else 0.0)
            f.append(ACTIVATIONS[self.output if i == L - 1 else self.hidden](z))  # z ends as z_L
        grad = np.empty_like(theta)
        delta = output_delta(self.output, self.loss, f[L], self.Y)
        at = len(theta)
        for i in range(L - 1, -1, -1):
            if self.bias:
                at -= delta.shape[1]
                grad[at : at + delta.shape[1]] = delta.sum(axis=0) / n
            at -= W[i].size
            grad[at : at + W[i].size] = (f[i].T @ delta).ravel() / n
            if i > 0:
                delta = DERIVATIVES[self.hidden](f[i]) * (delta @ W[i].T)
        # The loss from z_L, as backprop takes it (cross-entropy as a log-sum-exp).
        return float(output_loss(self.output, self.loss, z, self.Y).mean()), grad


def _lbfgs(
    objective: _Objective, theta: np.ndarray, iters: int, solved: float
) -> tuple[np.ndarray, np.ndarray]:
    """L-BFGS from theta, stopped early once the loss is below ``solved``; returns the end point and
    the (parameter norm, loss) at the start and after each iteration, (iterations + 1, 2)."""
    from scipy.optimize import minimize

    history = [(float(np.linalg.norm(theta)), objective(theta)[0])]

    def record(intermediate_result) -> None:
        history.append((float(np.linalg.norm(intermediate_result.x)), float(intermediate_result.fun)))
        if intermediate_result.fun < solved:
            raise StopIteration  # solved: nothing a further polish could change

    with np.errstate(all="ignore"):
        result = minimize(
            objective,
            theta,
            jac=True,
            method="L-BFGS-B",
            callback=record,
            # Stop on a tiny gradient or when no step lowers the loss (ftol 0: a slowly creeping loss,
            # as in a valley, is followed to the end of the budget).
            options={"maxiter": iters, "maxcor": 10, "gtol": 1e-14, "ftol": 0.0, "maxls": 40},
        )
    x = result.x if np.all(np.isfinite(result.x)) else theta
    return x, np.asarray(history)


# ---------------------------------------------------------------------------------------------------
# Symmetries with orbits: directions along which the loss is flat at every point.


def symmetry_directions(net: Network) -> np.ndarray:
    """Tangent vectors of the continuous symmetries' orbit through each replica, (R, P, m).

    A relu hidden unit j of layer i can be rescaled: (W_i[:, j], b_i[j]) times a and W_{i+1}[j, :]
    over a, tangent (W_i[:, j], b_i[j], -W_{i+1}[j, :]). Identity hidden units can be mixed by any
    invertible A: W_i -> W_i A, b_i -> b_i A, W_{i+1} -> A^{-1} W_{i+1}, whose tangent for
    A = I + e_a e_b^T has W_i[:, a] in column b of W_i, b_i[a] in b_i[b], and -W_{i+1}[b, :] in row a
    of W_{i+1}. tanh and sigmoid units have none (m = 0).
    """
    R, P = net.n_replicas, net.n_params
    if net.hidden not in ("relu", "identity") or len(net.weights) < 2:
        return np.zeros((R, P, 0))
    from nnlab.landscape.curvature import _offsets

    offsets = _offsets(net)
    vectors = []
    for i in range(1, len(net.weights)):  # hidden layer i, between W_i and W_{i+1}
        W, Wn = net.weights[i - 1], net.weights[i]
        b = None if net.biases is None else net.biases[i - 1]
        n_in, h = W.shape[1:]
        (w_at, b_at), (wn_at, _) = offsets[i], offsets[i + 1]
        pairs = (
            [(j, j) for j in range(h)]
            if net.hidden == "relu"
            else [(a, c) for a in range(h) for c in range(h)]
        )
        for a, c in pairs:
            t = np.zeros((R, P))
            t[:, w_at + c : w_at + n_in * h : h] = W[:, :, a]  # column c of W_i gets column a
            if b is not None:
                t[:, b_at + c] = b[:, a]
            t[:, wn_at + a * Wn.shape[2] : wn_at + (a + 1) * Wn.shape[2]] -= Wn[:, c, :]  # row a of W_{i+1}
            vectors.append(t)
    return np.stack(vectors, axis=2)


def _complement(T: np.ndarray) -> np.ndarray | None:
    """An orthonormal basis (P, P - rank) of the complement of the columns of T (P, m); None when
    there are no columns (the whole space)."""
    if T.shape[1] == 0:
        return None
    U, s, _ = np.linalg.svd(T, full_matrices=True)
    rank = int(np.count_nonzero(s > 1e-10 * max(s.max(initial=0.0), 1e-300)))
    return U[:, rank:]


# ---------------------------------------------------------------------------------------------------
# Classification.


def classify(
    loss: float,
    grad_norm: float,
    eigenvalues: np.ndarray,
    threshold: float,
    *,
    options: Options = Options(),
    ran_off: bool = False,
    descent_confirmed: bool = False,
) -> tuple[str, int, int]:
    """The kind of a polished point from its numbers (see the module's docstring for the rules).

    Parameters
    ----------
    loss, grad_norm : float
    eigenvalues : ndarray
        The Hessian's spectrum (restricted to the complement of the symmetry orbit).
    threshold : float
        The experiment's success threshold.
    ran_off : bool
        The polish ran off and the loss falls further out (a valley).
    descent_confirmed : bool
        A step along the most negative eigenvalue's eigenvector lowers the loss.

    Returns
    -------
    kind : str
    n_flat, n_negative : int
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    scale = float(np.abs(lam).max(initial=0.0)) or 1e-300
    n_flat = int(np.count_nonzero(np.abs(lam) <= options.flat * scale))
    n_negative = int(np.count_nonzero(lam < -options.negative * scale))
    critical = grad_norm <= options.gtol * scale
    if np.isfinite(loss) and loss < threshold:
        kind = "solved"
    elif critical and n_negative == 0 and n_flat == 0 and len(lam):
        kind = "minimum"
    elif ran_off:
        kind = "valley"
    elif not critical or not np.isfinite(loss):
        kind = "unconverged"
    elif n_negative:
        # A clearly negative eigenvalue the loss does not follow means the point is not where the
        # quadratic model holds: not certified.
        kind = "saddle" if descent_confirmed else "unconverged"
    else:
        kind = "degenerate"
    return kind, n_flat, n_negative


def _descends(objective: _Objective, theta: np.ndarray, v: np.ndarray, lam: float) -> bool:
    """Does a step along v (unit) lower the loss by at least a quarter of the quadratic model's
    1/2 lam t^2 (lam < 0), for one of a range of step lengths t, in one of the two senses?"""
    base = objective(theta)[0]
    for t in np.geomspace(1.0, 1e-6, 13) * max(1.0, float(np.linalg.norm(theta))) ** 0.5:
        drop = 0.25 * abs(lam) * t * t
        if drop <= 1e-13 * max(abs(base), 1e-300):
            break  # below rounding: no step can show it
        if min(objective(theta + t * v)[0], objective(theta - t * v)[0]) < base - drop:
            return True
    return False


def _runs_off(history: np.ndarray, growth: float) -> bool:
    """The polish ran off: over its iterations (``history``, rows of parameter norm and loss) the
    norm grew by more than ``growth`` of its start, and over the last tenth of them it was still
    growing (by more than 1e-3 of itself) without the loss rising. The loss need not visibly fall:
    where units saturate, what is left to gain decays exponentially and soon lies below rounding."""
    norm, loss = history[:, 0], history[:, 1]
    if len(history) < 2 or not norm[-1] > (1 + growth) * max(norm[0], 1e-12):
        return False
    back = -max(2, len(history) // 10)
    return bool(norm[-1] - norm[back] > 1e-3 * norm[-1] and loss[-1] <= loss[back])


# ---------------------------------------------------------------------------------------------------
# The driver.


def _newton(
    objective: _Objective, theta: np.ndarray, iters: int, gtol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Levenberg-Marquardt steps on grad L = 0 with the exact Hessian H = Q diag(lam) Q^T,
    s = -Q (lam / (lam^2 + mu)) Q^T g, until |grad| <= gtol * s / 10^4 (well inside the
    classification's tolerance), no step helps, or three steps in a row cut the gradient by less than
    a tenth (no critical point near: Newton converges at least linearly to one).

    A Hessian and its eigendecomposition cost most (P^3): a step that halves the gradient keeps them
    for the next step (a chord step, linear convergence), a poorer one computes them afresh; at most
    ``iters`` are computed, and the last at the point returned. Returns the point, its gradient, and
    its Hessian's eigenvalues and eigenvectors."""
    net_of = _net_of(objective)
    _, g = objective(theta)

    def spectrum(theta):
        return np.linalg.eigh(hessian(net_of(theta), objective.X, objective.Y, loss=objective.loss)[0])

    lam, Q = spectrum(theta)
    fresh, computed = True, 1  # (lam, Q) belong to theta; spectra computed so far
    mu = None
    slow = 0  # accepted steps in a row that cut the gradient by less than a tenth
    for _ in range(50 * iters):  # steps, chord steps included
        scale = float(np.abs(lam).max(initial=0.0)) or 1e-300
        gnorm = float(np.linalg.norm(g))
        if gnorm <= 1e-4 * gtol * scale or slow >= 3:
            break
        mu = (1e-6 * scale) ** 2 if mu is None else mu
        gq = Q.T @ g
        while mu < 1e4 * scale * scale:
            step = -Q @ (lam / (lam * lam + mu) * gq)
            _, g_new = objective(theta + step)
            new = float(np.linalg.norm(g_new))
            if np.isfinite(new) and new < gnorm:
                slow = slow + 1 if new > 0.9 * gnorm else 0
                theta, g, fresh = theta + step, g_new, False
                mu = max(mu / 10, (1e-12 * scale) ** 2)
                break
            mu *= 10
        else:
            if fresh:
                break  # no step lowers the gradient, even with the Hessian of this point
            new = gnorm  # a stale Hessian: compute this point's, and try again
        if new > 0.5 * gnorm or not np.isfinite(new):
            if computed >= iters:
                break
            lam, Q = spectrum(theta)
            fresh, computed = True, computed + 1
    if not fresh:
        lam, Q = spectrum(theta)
    return theta, g, lam, Q


def _net_of(objective: _Objective):
    def net_of(theta: np.ndarray) -> Network:
        return network_from_flat(
            theta[None],
            objective.sizes,
            bias=objective.bias,
            hidden=objective.hidden,
            output=objective.output,
        )

    return net_of


def certify(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    threshold: float,
    loss: str = "half_squared",
    options: Options = Options(),
) -> Certificate:
    """Polish every replica of ``net`` on the full-data loss and classify the point it reaches.

    Each replica is polished on its own (L-BFGS, then Newton steps), so its certificate depends only
    on its own weights and the data.

    Parameters
    ----------
    net : Network
        R replicas: trained end points.
    X : ndarray (n, d)
    Y : ndarray (n, out)
    threshold : float
        Loss below which an end point is ``solved``.
    loss : str
    options : Options

    Returns
    -------
    Certificate
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not threshold > 0:
        raise InputError(f"threshold: expected a number > 0, got {threshold!r}")
    X = as_replicated(net, X, "X", net.sizes[0])
    Y = as_replicated(net, check_loss(net, loss, Y), "Y", net.sizes[-1])  # class labels: one-hot
    if X.shape[0] != 1 or Y.shape[0] != 1:
        raise InputError("X, Y: certify takes one data set (n, d), (n, out) shared by the replicas")
    X, Y = X[0], Y[0]
    objective = _Objective(net.sizes, net.biases is not None, net.hidden, net.output, loss, X, Y)
    start = flat_params(net)
    import scipy.linalg  # noqa: F401  (loaded before the limit below, which covers loaded libraries)
    import scipy.optimize  # noqa: F401
    from threadpoolctl import threadpool_limits

    # One BLAS thread (numpy's and scipy's): the matrices here are small, and a second thread's
    # hand-offs make L-BFGS-B up to 20x slower.
    with np.errstate(all="ignore"), threadpool_limits(limits=1, user_api="blas"):
        start_loss = loss_of(net, X, Y, loss=loss)
        found = [
            _certify_one(objective, start[r], bool(start_loss[r] < threshold), threshold, options)
            for r in range(net.n_replicas)
        ]
    polished = np.stack([f.pop("theta") for f in found])
    spectra = [f.pop("spectrum") for f in found]
    columns = {k: np.array([f[k] for f in found]) for k in found[0]}
    network = network_from_flat(
        polished, net.sizes, bias=net.biases is not None, hidden=net.hidden, output=net.output
    )
    return Certificate(
        network=network,
        start_loss=start_loss,
        displacement=np.linalg.norm(polished - start, axis=1),
        norm_start=np.linalg.norm(start, axis=1),
        norm_end=np.linalg.norm(polished, axis=1),
        spectrum=spectra,
        **columns,
    )


def _certify_one(
    objective: _Objective, theta: np.ndarray, solved: bool, threshold: float, options: Options
) -> dict:
    """Polish and classify one replica (see `certify`)."""
    P = len(theta)
    if not solved:
        theta, history = _lbfgs(objective, theta, options.lbfgs_iters, threshold)
    value, g = objective(theta)
    if value < threshold:
        # Below the threshold: solved whatever a further polish would do (it only lowers the loss),
        # and its spectrum, near a manifold of solutions, is not asked for.
        nan = float("nan")
        return dict(
            theta=theta,
            spectrum=np.zeros(0),
            kind="solved",
            polished_loss=value,
            grad_norm=float(np.linalg.norm(g)),
            lambda_min=nan,
            lambda_max=nan,
            n_flat=nan,
            n_negative=nan,
            n_symmetry=nan,
        )
    ran_off = _runs_off(history, options.valley)
    full = P <= options.max_full and np.isfinite(theta).all()
    if full:
        # Newton steps only where L-BFGS did not run off: in a valley they would run on to no end.
        theta, g, lam, V = _newton(objective, theta, 0 if ran_off else options.newton_iters, options.gtol)
    value, g = objective(theta)
    one = _net_of(objective)(theta)
    Q = _complement(symmetry_directions(one)[0])
    m = P if Q is None else Q.shape[1]  # dimensions left once the symmetry directions are out
    if full and m < P:
        # Symmetry directions taken out: the spectrum of the Hessian restricted to the rest.
        H = Q.T @ (V * lam) @ V.T @ Q
        lam, V = np.linalg.eigh(0.5 * (H + H.T))
        V = Q @ V
    elif not full:
        # Lanczos on the Hessian restricted to the complement of the symmetry directions.
        small, large, vectors = extreme_eigenvalues(
            one,
            objective.X,
            objective.Y,
            loss=objective.loss,
            k=min(32, m - 1),
            basis=Q,
            vectors=True,
        )
        lam = np.concatenate([small[0], large])
        V = np.concatenate([vectors[0], np.zeros((P, 1))], axis=1)  # the smallest's eigenvectors
    gnorm = float(np.linalg.norm(g))
    kind, n_flat, n_negative = classify(
        value,
        gnorm,
        lam,
        threshold,
        options=options,
        ran_off=ran_off,
        descent_confirmed=V is not None
        and len(lam) > 0
        and lam[0] < 0
        and _descends(objective, theta, V[:, 0], lam[0]),
    )
    return dict(
        theta=theta,
        spectrum=np.sort(lam),
        kind=kind,
        polished_loss=value,
        grad_norm=gnorm,
        lambda_min=float(lam.min()) if len(lam) else float("nan"),
        lambda_max=float(lam.max()) if len(lam) else float("nan"),
        n_flat=n_flat,
        n_negative=n_negative,
        n_symmetry=P - m,
    )
