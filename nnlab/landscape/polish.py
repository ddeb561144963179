"""Polish an end point until convergence decides what it is, and certify that.

SGD with a constant learning rate never settles: its end point jitters around a critical point at the
noise level, or creeps along a valley. `certify` takes each replica on and classifies it. Budgets are
safety nets: a point they stop is ``unconverged``, never another kind.

1. **Polish in rounds**: L-BFGS on the full-data loss (scipy's L-BFGS-B, stopped only when no step
   lowers the loss, or at the end of the round: 250 iterations, doubling each round, at most
   ``lbfgs_iters`` in all), then **Newton** steps on the gradient system grad L = 0, which converge to
   whatever critical point is near (a saddle too): Levenberg-Marquardt with the exact Hessian up to
   ``max_full`` parameters, MINRES on Hessian-vector products above (`nnlab.landscape.curvature.hvp`'s
   R-operator; no P x P matrix). A point below the threshold is ``solved`` and polished no further.
2. **Criticality** on a scale saturated units cannot fake: |grad| <= gtol s (s = max |lambda|), and a
   fresh L-BFGS continuation from the point lowers the loss by at most ftol max(loss, threshold). A
   saturated output makes |grad| tiny far from any critical point; the continuation then goes on
   downhill and the polish resumes from where it got.
3. **Valleys** (minimizing sequences at infinity), tested each round the point is not critical or its
   norm has grown by more than ``valley`` of its start: along the ray of the last round's motion,
   extended to 16 times its length, the loss never rises, the drops shrink, and the gradient decays
   to below half; and the motion has a named mechanism (`mechanism`): one hidden unit's incoming
   weights carry most of it and the unit saturates into a step (tanh', sigmoid' <= 1e-2 on 90% of
   the samples at the ray's end), or two units of one layer with nearly equal incoming weights carry
   it in their outgoing weights, with opposite signs (a pair whose difference tends to a derivative).
4. **The spectrum** of the Hessian restricted to the complement of the continuous symmetries' orbit:
   all of it (eigh) up to ``max_full`` parameters, else the ``lanczos_k`` smallest and the largest
   eigenvalue by Lanczos on Hessian-vector products, each to +-lanczos_rtol s
   (`nnlab.landscape.curvature.lanczos`). Its accuracy a (rounding, ~1e-14 s sqrt(P), for eigh;
   2 lanczos_rtol s for Lanczos) raises the tolerances below to at least ``margin`` a.
5. **Kinds**, tolerances relative to s:

   - ``solved``: loss below the experiment's threshold;
   - ``valley``: step 3 (with ``mechanism``);
   - ``unconverged``: neither critical nor a valley when the budget ran out or the polish stalled, or
     a clearly negative eigenvalue the loss does not follow (``reason`` says which);
   - ``saddle``: an eigenvalue < -negative s whose eigenvector lowers the loss as the quadratic
     model says (``saddle_order`` 2), or, where the Hessian is flat, a descent found beyond second
     order (`higher_order`): along a flat eigenvector the loss falls like c t^3 or c t^4
     (``saddle_order`` 3 or 4), or a small perturbation along a flat eigenvector or a random direction
     followed by L-BFGS ends clearly lower (``saddle_order`` -1: order not resolved);
   - ``minimum``: critical, every eigenvalue > flat s: a strict local minimum, however slow the
     polish was to reach it; its conditioning lambda_min / lambda_max is ``condition``;
   - ``degenerate``: critical, eigenvalues with |lambda| <= flat s, and no descent found by the
     tests of `higher_order` (``reason`` lists them).

   A decisive number within a factor ``margin`` of its tolerance (an eigenvalue near +-flat s, the
   continuation's or a probe's drop near its bound) marks the certificate ``borderline``: another
   machine's rounding could change its kind.

Continuous symmetries are not flat directions of a minimum: a relu unit can be rescaled (incoming
weights and bias times a, outgoing weights over a) and identity units mixed by any invertible matrix
without changing the function, so the loss is flat along those orbits at every point. The spectrum is
taken on the complement of the orbit's tangent space (``n_symmetry`` directions); tanh and sigmoid
units have discrete symmetries only (permutations, and sign flips for tanh), which leave no flat
direction.

At large sizes (above ``max_full``) a certificate is: |grad| <= gtol s and the continuation test, as
always; lambda_max and the ``lanczos_k`` smallest eigenvalues to +-2 lanczos_rtol s (the Lanczos
residual bound); ``minimum`` when the smallest is above flat s by the margin, ``n_flat`` counted among
those k only (a lower bound of the flat directions).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields

import numpy as np

from nnlab.errors import InputError
from nnlab.functions import ACTIVATIONS, DERIVATIVES, output_delta, output_loss
from nnlab.landscape.curvature import hessian, hvp_operator, lanczos
from nnlab.network import (
    Network,
    ParamLayout,
    as_replicated,
    check_loss,
    flat_params,
    loss_of,
    network_from_flat,
)

# The certification procedure's version: stored certificates of an older procedure are redone.
PROCEDURE = 4
FIRST_ROUND = 250  # L-BFGS iterations of the first round; each later round doubles it
CONTINUATION = 200  # L-BFGS iterations of the continuation test
RELAX = 100  # L-BFGS iterations relaxing each point of the ray test
MINRES = 200  # MINRES iterations (Hessian-vector products) per Newton step above max_full


@dataclass(frozen=True)
class Options:
    """Budgets and tolerances of `certify`. Eigenvalue and gradient tolerances are relative to the
    spectrum's scale s = max |lambda| of the polished point's Hessian.

    Attributes
    ----------
    lbfgs_iters : int
        L-BFGS iterations per end point, all rounds together: a safety net (a point it stops is
        ``unconverged``).
    newton_iters : int
        Hessians (or MINRES solves) the Newton steps of one round may compute.
    gtol : float
        A critical point has |grad| <= gtol * s.
    flat : float
        An eigenvalue with |lambda| <= flat * s is flat.
    negative : float
        An eigenvalue below -negative * s is clearly negative (between -negative s and -flat s: flat).
    valley : float
        The ray test runs at critical-looking points once the norm has grown by this share of its
        start (and at every point that is not critical).
    max_full : int
        Networks of up to this many parameters get the exact Hessian (Newton and spectrum); larger
        ones Hessian-vector products only (MINRES, Lanczos).
    ftol : float
        The continuation test: a further L-BFGS run may lower the loss by at most ftol * max(loss,
        threshold) at a critical point.
    margin : float
        Decide with this margin: tolerances are at least margin times the spectrum's accuracy, and a
        number within this factor of its tolerance is ``borderline``. A probe's drop must exceed
        margin^2 * ftol * max(loss, threshold) to count as descent.
    probes : int
        Perturbations followed by descent at a flat critical point (half along flat eigenvectors,
        half random).
    probe_iters : int
        L-BFGS iterations after each perturbation.
    probe_size : float
        Perturbations of probe_size * max(1, |theta|).
    lanczos_k : int
        Smallest eigenvalues computed by Lanczos above ``max_full``.
    lanczos_rtol : float
        Lanczos tolerance relative to s.
    escape_streams, escape_budget : int, float
        The SGD escape test of `nnlab landscape` (`nnlab.landscape.escape`; not used by `certify`):
        every end point that did not solve is resumed with this many fresh shuffling streams for
        this many times its run's epochs.
    """

    lbfgs_iters: int = 20000
    newton_iters: int = 30
    gtol: float = 1e-8
    flat: float = 1e-10
    negative: float = 1e-10
    valley: float = 0.5
    max_full: int = 1500
    ftol: float = 1e-9
    margin: float = 10.0
    probes: int = 8
    probe_iters: int = 300
    probe_size: float = 0.05
    lanczos_k: int = 16
    lanczos_rtol: float = 1e-8
    escape_streams: int = 8
    escape_budget: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type == "int" and (isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1):
                raise InputError(f"{f.name}: expected an int >= 1, got {v!r}")
            if f.type == "float" and (
                isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < np.inf
            ):
                raise InputError(f"{f.name}: expected a number > 0, got {v!r}")
        if self.margin < 1:
            raise InputError(f"margin: expected a number >= 1, got {self.margin!r}")


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
        Extreme eigenvalues of the Hessian (restricted to the complement of the symmetry orbit) at
        the polished point; NaN for a solved end point.
    n_flat, n_negative, n_symmetry : ndarray (R,)
        Flat and clearly negative eigenvalues (among those computed), and the symmetry directions
        taken out (whole numbers; NaN for a solved end point).
    displacement : ndarray (R,)
        |theta_polished - theta_start|.
    norm_start, norm_end : ndarray (R,)
        |theta| before and after.
    spectrum : list of ndarray
        Per replica, the eigenvalues found, ascending (all of them up to ``max_full`` parameters,
        else the ``lanczos_k`` smallest and the largest; none for a solved end point).
    condition : ndarray (R,)
        lambda_min / lambda_max: how near-flat a minimum is (a property, not a kind); NaN where there
        is no spectrum.
    saddle_order : ndarray (R,) of int
        2 (a negative eigenvalue), 3 or 4 (the loss falls like t^3 or t^4 along a flat eigenvector),
        -1 (left downhill by a perturbation and descent, order not resolved); 0 for other kinds.
    mechanism : ndarray (R,) of str
        A valley's: "saturating unit j of layer i" or "diverging pair j,k of layer i" (hidden layer
        i, 1-based; units 0-based); "" for other kinds.
    reason : ndarray (R,) of str
        Why this kind, in a few words (what ended the polish; for ``degenerate`` the tests tried).
    borderline : ndarray (R,) of bool
        A decisive number lay within ``margin`` of its tolerance.
    iterations : ndarray (R,) of int
        L-BFGS iterations spent (rounds, continuations and probes).
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
    condition: np.ndarray
    saddle_order: np.ndarray
    mechanism: np.ndarray
    reason: np.ndarray
    borderline: np.ndarray
    iterations: np.ndarray


# ---------------------------------------------------------------------------------------------------
# The loss and gradient of one replica, for L-BFGS.


@dataclass(frozen=True, eq=False)
class Objective:
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
        """Views of theta (P,): the weights W_i (n_{i-1}, n_i) and biases b_i (n_i,) per layer."""
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

    def many(
        self, thetas: np.ndarray, *, weights: np.ndarray | None = None, first: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Loss (N,) and gradient (N, P) at N points thetas (N, P) at once (the nodes of a Bezier
        curve), with one batched matrix product per layer.

        With ``weights`` (N,) the gradient returned is their combination sum_j weights_j grad_j
        (P,), its first layer as one product X^T (sum_j weights_j delta_1j). ``first`` (N, n, n_1)
        is X W_1 of every point when the caller has it (a curve's is linear in its control point)."""
        N, n = len(thetas), len(self.X)
        W, b, at = [], [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            W.append(thetas[:, at : at + n_in * n_out].reshape(N, n_in, n_out))
            at += n_in * n_out
            if self.bias:
                b.append(thetas[:, None, at : at + n_out])
                at += n_out
        L = len(W)
        f: list = [self.X]
        for i in range(L):
            z = (first if first is not None else self.X @ W[0]) if i == 0 else f[i] @ W[i]
            if self.bias:
                z = z + b[i]
            f.append(ACTIVATIONS[self.output if i == L - 1 else self.hidden](z))
        w = np.ones(N) if weights is None else np.asarray(weights, dtype=np.float64)
        grad = np.empty_like(thetas)
        delta = output_delta(self.output, self.loss, f[L], self.Y)
        at = thetas.shape[1]
        for i in range(L - 1, -1, -1):
            width = delta.shape[2]
            if self.bias:
                at -= width
                grad[:, at : at + width] = delta.sum(axis=1) / n
            at -= W[i][0].size
            if i > 0:
                grad[:, at : at + W[i][0].size] = (f[i].transpose(0, 2, 1) @ delta).reshape(N, -1) / n
                delta = DERIVATIVES[self.hidden](f[i]) * (delta @ W[i].transpose(0, 2, 1))
        values = output_loss(self.output, self.loss, z, self.Y).mean(axis=1)
        if weights is None:
            grad[:, : W[0][0].size] = (self.X.T @ delta).reshape(N, -1) / n
            return values, grad
        combined = w @ grad
        combined[: W[0][0].size] = (self.X.T @ np.tensordot(w, delta, axes=1)).ravel() / n
        return values, combined


def _lbfgs(objective: Objective, theta: np.ndarray, iters: int, solved: float) -> tuple[np.ndarray, int]:
    """L-BFGS from theta for at most ``iters`` iterations, stopped early once the loss is below
    ``solved`` or when no step lowers it (no gradient tolerance: a tiny gradient, as saturated units
    give, is no reason to stop); returns the end point and the iterations taken."""
    from scipy.optimize import minimize

    count = [0]

    def record(intermediate_result) -> None:
        count[0] += 1
        if intermediate_result.fun < solved:
            raise StopIteration  # solved: nothing a further polish could change

    with np.errstate(all="ignore"):
        result = minimize(
            objective,
            theta,
            jac=True,
            method="L-BFGS-B",
            callback=record,
            options={"maxiter": iters, "maxcor": 10, "gtol": 0.0, "ftol": 0.0, "maxls": 40},
        )
    x = result.x if np.all(np.isfinite(result.x)) else theta
    return x, count[0]


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
    offsets = ParamLayout.of(net).offsets
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


def tolerances(
    eigenvalues: np.ndarray, options: Options, accuracy: float = 0.0
) -> tuple[float, float, float]:
    """(s, flat tolerance, negative tolerance) of a spectrum: s = max |lambda|, and flat s and
    negative s raised to at least ``margin`` times the spectrum's absolute ``accuracy``."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    s = float(np.abs(lam[np.isfinite(lam)]).max(initial=0.0)) or 1e-300
    floor = options.margin * accuracy
    return s, max(options.flat * s, floor), max(options.negative * s, floor)


def classify(
    loss: float,
    grad_norm: float,
    eigenvalues: np.ndarray,
    threshold: float,
    *,
    options: Options = Options(),
    accuracy: float = 0.0,
    valley: bool = False,
    descent_confirmed: bool = False,
    higher_order: int = 0,
    ran_off: bool | None = None,
) -> tuple[str, int, int]:
    """The kind of a polished point from its numbers (see the module's docstring for the rules).

    Parameters
    ----------
    loss, grad_norm : float
    eigenvalues : ndarray
        The Hessian's spectrum, or the part computed (restricted to the complement of the symmetry
        orbit).
    threshold : float
        The experiment's success threshold.
    accuracy : float
        The eigenvalues' absolute accuracy (tolerances are at least ``margin`` times it).
    valley : bool
        The ray test passed with a named mechanism (`mechanism`).
    descent_confirmed : bool
        A step along the most negative eigenvalue's eigenvector lowers the loss.
    higher_order : int
        The order of a descent found beyond second order at a flat point (3, 4, or -1), else 0.
    ran_off : bool, optional
        The former name of ``valley``.

    Returns
    -------
    kind : str
    n_flat, n_negative : int
    """
    valley = valley or bool(ran_off)
    lam = np.asarray(eigenvalues, dtype=np.float64)
    s, flat, negative = tolerances(lam, options, accuracy)
    n_negative = int(np.count_nonzero(lam < -negative))
    n_flat = int(np.count_nonzero((np.abs(lam) <= flat) | ((lam < 0) & (lam >= -negative))))
    critical = grad_norm <= options.gtol * s
    if np.isfinite(loss) and loss < threshold:
        kind = "solved"
    elif valley:
        kind = "valley"
    elif not critical or not np.isfinite(loss) or not len(lam) or not np.all(np.isfinite(lam)):
        kind = "unconverged"
    elif n_negative:
        # A clearly negative eigenvalue the loss does not follow means the point is not where the
        # quadratic model holds: not certified.
        kind = "saddle" if descent_confirmed else "unconverged"
    elif n_flat:
        kind = "saddle" if higher_order else "degenerate"
    else:
        kind = "minimum"
    return kind, n_flat, n_negative


def _near(value: float, bound: float, margin: float) -> bool:
    """value within a factor ``margin`` of bound (either side)."""
    return bool(bound > 0 and bound / margin < abs(value) < bound * margin)


def _borderline_spectrum(lam: np.ndarray, options: Options, accuracy: float) -> bool:
    _, flat, negative = tolerances(lam, options, accuracy)
    return any(_near(x, flat, options.margin) or (x < 0 and _near(x, negative, options.margin)) for x in lam)


def _descends(objective: Objective, theta: np.ndarray, v: np.ndarray, lam: float) -> bool:
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


# ---------------------------------------------------------------------------------------------------
# Beyond second order: can a flat critical point be left downhill?


@dataclass(frozen=True)
class Descent:
    """What `higher_order` found: ``order`` 3 or 4 (the loss falls like t^3 or t^4 along a flat
    eigenvector), -1 (a perturbation followed by L-BFGS ends lower; order not resolved), 0 (no
    descent found); ``drop`` the largest loss decrease seen; ``tried`` what was tried, in words;
    ``borderline`` a drop within ``margin`` of the bound; ``iterations`` L-BFGS iterations spent."""

    order: int
    drop: float
    tried: str
    borderline: bool
    iterations: int


def higher_order(
    objective: Objective,
    theta: np.ndarray,
    flat_vectors: np.ndarray,
    symmetry: np.ndarray,
    threshold: float,
    options: Options = Options(),
    seed: int = 0,
) -> Descent:
    """Tests for descent beyond second order at a critical point whose Hessian has flat directions.

    1. Along each flat eigenvector v (columns of ``flat_vectors``, at most 16): the loss at
       theta +- t v for t = h, h/2, h/4, h/8 (h = probe_size max(1, |theta|)). A clear drop there is a
       descent of order 3 when the odd part (L(t) - L(-t)) / 2 dominates, else 4 (L - L0 ~ c t^4,
       c < 0: the even part, the quadratic one being flat).
    2. ``probes`` perturbations of size h, half along flat eigenvectors, half random (off the
       symmetry tangents ``symmetry`` (P, m)), each followed by ``probe_iters`` of L-BFGS: a clear drop
       is a way down whose order the test does not resolve (-1).

    A drop is clear above margin^2 ftol max(loss, threshold): 100 times what the continuation test
    let through (below rounding, a degenerate minimum's flat floor gives ~0).
    """
    value = objective(theta)[0]
    h = options.probe_size * max(1.0, float(np.linalg.norm(theta)))
    bound = options.margin**2 * options.ftol * max(abs(value), threshold)
    best, used = 0.0, 0
    V = flat_vectors[:, :16]
    rng = np.random.default_rng(seed)
    # A degenerate eigenvalue's eigenvectors are any basis of its space (a coordinate basis, often,
    # along which a product of parameters never moves): random combinations of them too.
    mixed = V @ rng.normal(size=(V.shape[1], 4 * options.probes)) if V.shape[1] > 1 else V[:, :0]
    mixed = mixed / np.linalg.norm(mixed, axis=0)
    for j, v in enumerate(np.hstack([V, mixed]).T):
        for t in h * 0.5 ** np.arange(4):
            up, down = objective(theta + t * v)[0] - value, objective(theta - t * v)[0] - value
            best = max(best, -min(up, down))
            if min(up, down) < -bound:
                odd, even = 0.5 * (up - down), 0.5 * (up + down)
                order = 3 if abs(odd) > abs(even) else 4
                what = f"flat eigenvector {j}" if j < V.shape[1] else "a combination of flat eigenvectors"
                return Descent(order, best, f"fourth-order test along {what}", False, 0)
    T = None
    if symmetry.shape[1]:
        U, sv, _ = np.linalg.svd(symmetry, full_matrices=False)
        T = U[:, sv > 1e-10 * sv.max()]
    along = min(V.shape[1], (options.probes + 1) // 2)
    for i in range(options.probes):
        if i < along:
            u = V[:, i] * (1 if i % 2 == 0 else -1)
        else:
            u = rng.normal(size=len(theta))
            if T is not None:
                u -= T @ (T.T @ u)
            u /= np.linalg.norm(u)
        end, taken = _lbfgs(objective, theta + h * u, options.probe_iters, threshold)
        used += taken
        drop = value - objective(end)[0]
        best = max(best, drop)
        if drop > bound:
            what = f"flat eigenvector {i}" if i < along else "a random direction"
            return Descent(
                -1, best, f"perturbation along {what} and descent", _near(drop, bound, options.margin), used
            )
    tried = (
        f"{V.shape[1]} flat eigenvectors and {mixed.shape[1]} combinations to fourth order, "
        f"{options.probes} perturbations "
        f"({along} along flat eigenvectors) each followed by {options.probe_iters} L-BFGS iterations"
    )
    return Descent(0, best, tried, _near(best, bound, options.margin), used)


# ---------------------------------------------------------------------------------------------------
# Valleys: minimizing sequences at infinity, with their mechanism.


def _units(objective: Objective, theta: np.ndarray):
    """Per hidden layer i (1-based): the incoming block (h, n_{i-1} + bias) and outgoing block
    (h, n_{i+1}) of each unit, as rows, read from the flat theta."""
    W, b = objective.layers(theta)
    for i in range(1, len(W)):
        incoming = W[i - 1].T if not objective.bias else np.hstack([W[i - 1].T, b[i - 1][:, None]])
        yield i, incoming, W[i]


def mechanism(objective: Objective, theta: np.ndarray, d: np.ndarray) -> str:
    """The mechanism of a valley whose far point is theta and whose motion is d (P,):

    - "saturating unit j of layer i": unit j's incoming weights and bias carry at least half of
      |d|^2, and its derivative (tanh', sigmoid') is <= 1e-2 on at least 90% of the samples at theta
      (the unit tends to a step);
    - "diverging pair j,k of layer i": the outgoing weights of units j and k carry at least half of
      |d|^2, moving in opposite senses (after aligning a sign-flipped tanh pair), while their
      incoming weights are within half of their norm of each other (the pair's difference tends to a
      derivative of the unit);
    - "" when neither (relu and identity units cannot saturate; the valley is then not certified).
    """
    total = float(d @ d) or 1e-300
    f = [objective.X]
    W, b = objective.layers(theta)
    for i in range(len(W)):
        z = f[-1] @ W[i] + (b[i] if objective.bias else 0.0)
        f.append(ACTIVATIONS[objective.output if i == len(W) - 1 else objective.hidden](z))
    for (i, a_in, _), (_, d_in, d_out) in zip(_units(objective, theta), _units(objective, d), strict=True):
        share_in = (d_in**2).sum(axis=1) / total
        j = int(np.argmax(share_in))
        if share_in[j] >= 0.5 and objective.hidden in ("tanh", "sigmoid"):
            # Saturated (derivative <= 1e-2 of its peak) on every sample the motion moves: the
            # samples it leaves in place sit on the step.
            zero = ACTIVATIONS[objective.hidden](np.zeros(1))
            slope = DERIVATIVES[objective.hidden](f[i][:, j]) / DERIVATIVES[objective.hidden](zero)
            inputs = np.hstack([f[i - 1], np.ones((len(f[i - 1]), 1))]) if objective.bias else f[i - 1]
            dz = np.abs(inputs @ d_in[j])
            moving = dz > 0.1 * dz.max(initial=0.0)
            if moving.any() and np.all(slope[moving] <= 1e-2):
                return f"saturating unit {j} of layer {i}"
        share_out = (d_out**2).sum(axis=1) / total
        order = np.argsort(share_out)[::-1]
        if len(order) >= 2 and share_out[order[0]] + share_out[order[1]] >= 0.5:
            j, k = sorted(int(u) for u in order[:2])
            sign = -1.0 if objective.hidden in ("tanh", "identity") and a_in[j] @ a_in[k] < 0 else 1.0
            close = np.linalg.norm(a_in[j] - sign * a_in[k]) <= 0.5 * max(np.linalg.norm(a_in[j]), 1e-300)
            if close and sign * (d_out[j] @ d_out[k]) < 0:
                return f"diverging pair {j},{k} of layer {i}"
    return ""


def ray_test(
    objective: Objective,
    theta: np.ndarray,
    d: np.ndarray,
    threshold: float,
    floor: float = 0.0,
    relax: int = RELAX,
) -> tuple[bool, np.ndarray]:
    """Does the loss keep falling, and the gradient decaying, as the norm grows along the motion d?

    A valley is curved (as a unit saturates, the weights after it re-fit), so the ray is followed
    by continuation: from x_0 = theta, step D_0 = d scaled to |theta| / 8, relax x_k + D_k by ``relax``
    L-BFGS iterations to x_{k+1}, and double the step along the relaxed motion, D_{k+1} =
    2 (x_{k+1} - x_k); five steps, out to about 5 times the norm. The test passes when every relaxed
    point stays out (|x_{k+1} - x_k - D_k| <= |D_k| / 2: no finite minimum pulls it back) with a
    growing norm, the loss never rises (beyond 1e-12 relative), and the gradient ends below half of
    theta's or below ``floor`` (gtol s: where saturated units leave a gradient of rounding's size, its
    decay cannot show). Returns the verdict and the far point.
    """
    D = d * (0.125 * float(np.linalg.norm(theta)) / max(float(np.linalg.norm(d)), 1e-300))
    value, g = objective(theta)
    slack = 1e-12 * max(abs(value), 1e-300)
    x, g0 = theta, float(np.linalg.norm(g))
    for _ in range(5):
        y, _ = _lbfgs(objective, x + D, relax, threshold)
        v, g = objective(y)
        stays = np.linalg.norm(y - x - D) <= 0.5 * np.linalg.norm(D)
        if not (stays and np.isfinite(v) and v <= value + slack and np.linalg.norm(y) > np.linalg.norm(x)):
            return False, y
        x, value, D = y, min(v, value), 2 * (y - x)
    return bool(np.linalg.norm(g) <= max(0.5 * g0, floor)), x


# ---------------------------------------------------------------------------------------------------
# The driver.


def _newton(
    objective: Objective, theta: np.ndarray, iters: int, gtol: float
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


def _net_of(objective: Objective):
    def net_of(theta: np.ndarray) -> Network:
        return network_from_flat(
            theta[None],
            objective.sizes,
            bias=objective.bias,
            hidden=objective.hidden,
            output=objective.output,
        )

    return net_of


def _hvp_operator(objective: Objective, theta: np.ndarray):
    """H at theta as a scipy LinearOperator of Hessian-vector products (R-operator)."""
    from scipy.sparse.linalg import LinearOperator

    P = len(theta)
    product = hvp_operator(_net_of(objective)(theta), objective.X, objective.Y, loss=objective.loss)
    return LinearOperator((P, P), matvec=product, dtype=float)


def _scale(objective: Objective, theta: np.ndarray) -> float:
    """s ~ max |lambda| to 1e-3, by Lanczos on Hessian-vector products; 0 where not finite."""
    from scipy.sparse.linalg import eigsh

    if not np.all(np.isfinite(theta)):
        return 0.0
    start = np.random.default_rng(0).normal(size=len(theta))
    op = _hvp_operator(objective, theta)
    return abs(float(eigsh(op, k=1, which="LM", tol=1e-3, v0=start, return_eigenvectors=False)[0]))


def _newton_hvp(objective: Objective, theta: np.ndarray, iters: int, gtol: float) -> np.ndarray:
    """Newton steps on grad L = 0 from Hessian-vector products alone: each step solves H s = -g by
    MINRES (symmetric, indefinite or singular H alike: it converges to saddles as to minima), then
    halves the step until the gradient norm falls. Stops at |grad| <= gtol * s / 10^4 (s ~ lambda_max,
    by a few Lanczos steps), when no step helps, when three steps in a row cut the gradient by less
    than a tenth, or after ``iters`` solves.

    The solves are inexact Newton (Eisenstat & Walker 1996): MINRES stops at a relative residual
    eta = min(0.1, |g| / |g_0|), down to 1e-8, so that far from a critical point a step costs a few
    dozen products rather than MINRES's whole budget, and near one the steps are Newton's. After a
    step that cut the gradient by less than a tenth the next is solved to 1e-8, so the three slow
    steps that stop the iteration include two full Newton steps."""
    from scipy.sparse.linalg import minres

    value, g = objective(theta)
    op = _hvp_operator(objective, theta)
    s = _scale(objective, theta) or 1e-300
    g0 = float(np.linalg.norm(g)) or 1e-300
    slow = 0  # steps in a row that cut the gradient by less than a tenth: no critical point near
    for _ in range(iters):
        gnorm = float(np.linalg.norm(g))
        if gnorm <= 1e-4 * gtol * s or not np.isfinite(gnorm) or slow >= 3:
            break
        eta = 1e-8 if slow else min(0.1, max(1e-8, gnorm / g0))
        step, _ = minres(op, -g, rtol=eta, maxiter=min(len(theta), MINRES))
        for _ in range(20):
            new_value, new_g = objective(theta + step)
            if np.isfinite(new_value) and np.linalg.norm(new_g) < gnorm:
                break
            step = 0.5 * step
        else:
            if eta > 1e-8:
                slow += 1  # an inexact step that did not help: the next one exact
                continue
            break
        slow = slow + 1 if np.linalg.norm(new_g) > 0.9 * gnorm else 0
        theta, g = theta + step, new_g
        op = _hvp_operator(objective, theta)
    return theta


@dataclass(frozen=True, eq=False)
class _Spectrum:
    """The Hessian's eigenvalues on the complement of the symmetry tangents T (P, m): ``lam``
    ascending (all, or the k smallest and the largest), the eigenvectors V (P, k) of the smallest,
    their absolute ``accuracy``, and whether Lanczos converged."""

    lam: np.ndarray
    V: np.ndarray
    T: np.ndarray
    n_symmetry: int
    accuracy: float
    converged: bool


def _spectrum(objective: Objective, theta: np.ndarray, options: Options, eig=None) -> _Spectrum:
    """Exact (eigh, from ``eig`` = (lam, Q) of the full Hessian when given) up to max_full
    parameters, Lanczos above."""
    P = len(theta)
    one = _net_of(objective)(theta)
    T = symmetry_directions(one)[0]
    if P <= options.max_full:
        lam, V = (
            eig
            if eig is not None
            else np.linalg.eigh(hessian(one, objective.X, objective.Y, loss=objective.loss)[0])
        )
        Q = _complement(T)
        m = P if Q is None else Q.shape[1]
        if m < P:
            H = Q.T @ (V * lam) @ V.T @ Q
            lam, V = np.linalg.eigh(0.5 * (H + H.T))
            V = Q @ V
        s = float(np.abs(lam).max(initial=0.0))
        return _Spectrum(lam, V, T, P - m, 1e-14 * s * np.sqrt(P), True)
    rank = int(np.linalg.matrix_rank(T)) if T.shape[1] else 0
    k = max(1, min(options.lanczos_k, P - rank, P - 1))
    ext = lanczos(
        one, objective.X, objective.Y, loss=objective.loss, k=k, rtol=options.lanczos_rtol, symmetry=T
    )
    lam = np.append(ext.smallest, ext.largest)
    return _Spectrum(lam, ext.vectors, T, rank, ext.tol, ext.converged)


def certify(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    threshold: float,
    loss: str = "half_squared",
    options: Options = Options(),
) -> Certificate:
    """Polish every replica of ``net`` on the full-data loss until convergence decides, and classify
    the point it reaches (see the module's docstring).

    Each replica is polished on its own, so its certificate depends only on its own weights and the
    data (the random probes of `higher_order` are seeded by the replica's index in nothing: seed 0).

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
    objective = Objective(net.sizes, net.biases is not None, net.hidden, net.output, loss, X, Y)
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


def _record(theta, value, g, kind, reason, iterations, spectrum=None, options=None, **more) -> dict:
    """One replica's certificate fields (NaN where there is no spectrum)."""
    nan = float("nan")
    out = dict(
        theta=theta,
        spectrum=np.zeros(0),
        kind=kind,
        polished_loss=value,
        grad_norm=float(np.linalg.norm(g)),
        lambda_min=nan,
        lambda_max=nan,
        n_flat=nan,
        n_negative=nan,
        n_symmetry=nan,
        condition=nan,
        saddle_order=0,
        mechanism="",
        reason=reason,
        borderline=False,
        iterations=iterations,
    )
    if spectrum is not None:
        lam = np.sort(spectrum.lam)
        out.update(
            spectrum=lam,
            lambda_min=float(lam[0]),
            lambda_max=float(lam[-1]),
            n_symmetry=spectrum.n_symmetry,
            condition=float(lam[0] / lam[-1]) if lam[-1] > 0 else nan,
        )
        _, flat, negative = tolerances(lam, options, spectrum.accuracy)
        out.update(
            n_negative=int(np.count_nonzero(lam < -negative)),
            n_flat=int(np.count_nonzero((lam >= -negative) & (lam <= flat))),
        )
    out.update(more)
    return out


def _certify_one(
    objective: Objective, theta: np.ndarray, solved: bool, threshold: float, options: Options
) -> dict:
    """Polish and classify one replica (see `certify`)."""
    value, g = objective(theta)
    if solved:
        return _record(theta, value, g, "solved", "below the threshold", 0)
    full = len(theta) <= options.max_full
    norm0, origin = float(np.linalg.norm(theta)), theta
    used, rounds, round_iters = 0, 0, FIRST_ROUND
    while True:
        before, before_value = theta, value
        taken = 0
        if used < options.lbfgs_iters:
            theta, taken = _lbfgs(objective, theta, min(round_iters, options.lbfgs_iters - used), threshold)
            used += taken
        value, g = objective(theta)
        if value < threshold:
            return _record(
                theta, value, g, "solved", f"polished below the threshold in {used} iterations", used
            )
        eig = None
        if np.all(np.isfinite(theta)):
            if full:
                theta, _, lam, Q = _newton(objective, theta, options.newton_iters, options.gtol)
                eig = (lam, Q)
            elif taken < round_iters or used >= options.lbfgs_iters:
                # Hessian-vector Newton only where L-BFGS stopped on its own (or the budget ran
                # out): in the middle of a long descent its MINRES solves would be wasted.
                theta = _newton_hvp(objective, theta, options.newton_iters, options.gtol)
        value, g = objective(theta)
        if value < threshold:
            return _record(
                theta, value, g, "solved", f"polished below the threshold in {used} iterations", used
            )
        rounds += 1
        gnorm = float(np.linalg.norm(g))
        finite = bool(np.all(np.isfinite(theta)))
        # Above max_full the Lanczos spectrum waits until the point is critical: until then only the
        # scale s is needed, a few Lanczos steps.
        spectrum = _spectrum(objective, theta, options, eig) if finite and full else None
        s = float(np.abs(spectrum.lam).max(initial=0.0)) if spectrum is not None else _scale(objective, theta)
        critical = finite and gnorm <= options.gtol * s
        norm = float(np.linalg.norm(theta))
        d = theta - before
        if np.linalg.norm(d) <= 1e-3 * norm:
            d = theta - origin  # the last round stalled (gains below rounding): the whole motion
        # The ray test: at every point that is not critical, and at critical-looking ones whose norm
        # has grown (saturated units fake a tiny gradient far out).
        if (not critical or norm > (1 + options.valley) * max(norm0, 1e-12)) and d @ theta > 0:
            passes, far = ray_test(objective, theta, d, threshold, options.gtol * s)
            named = mechanism(objective, far, far - theta) if passes else ""
            if named:
                return _record(
                    theta,
                    value,
                    g,
                    "valley",
                    f"runs off: the ray test passes at norm {norm:.3g}",
                    used,
                    spectrum=spectrum,
                    options=options,
                    mechanism=named,
                )
        if critical:
            cont, taken = _lbfgs(objective, theta, CONTINUATION, threshold)
            used += taken
            drop = value - objective(cont)[0]
            bound = options.ftol * max(abs(value), threshold)
            if drop > bound and used < options.lbfgs_iters:
                theta, value = cont, objective(cont)[0]  # not critical after all: polish on from there
                round_iters *= 2
                continue
            if drop <= bound:
                spectrum = spectrum or _spectrum(objective, theta, options)
                return _classified(
                    objective, theta, threshold, options, spectrum, used, _near(drop, bound, options.margin)
                )
        if used >= options.lbfgs_iters:
            return _record(
                theta,
                value,
                g,
                "unconverged",
                f"budget: {used} L-BFGS iterations, |grad| {gnorm:.3g}",
                used,
                spectrum=spectrum,
                options=options,
            )
        if (
            taken == 0
            and before_value - value <= options.ftol * max(abs(value), threshold)
            and np.array_equal(before, theta)
        ):
            return _record(
                theta,
                value,
                g,
                "unconverged",
                "stalled: no step lowers the loss",
                used,
                spectrum=spectrum,
                options=options,
            )
        round_iters *= 2


def _classified(
    objective: Objective,
    theta: np.ndarray,
    threshold: float,
    options: Options,
    spectrum: _Spectrum,
    used: int,
    borderline: bool,
) -> dict:
    """The certificate of a critical point: its kind from the spectrum, and beyond second order."""
    value, g = objective(theta)
    lam, V = spectrum.lam, spectrum.V
    _, flat, negative = tolerances(lam, options, spectrum.accuracy)
    borderline = borderline or _borderline_spectrum(lam, options, spectrum.accuracy) or not spectrum.converged
    confirmed = bool(lam[0] < -negative and _descends(objective, theta, V[:, 0], lam[0]))
    order, reason = (2, "a negative eigenvalue, descent confirmed") if confirmed else (0, "")
    n_small = int(np.count_nonzero(lam[: V.shape[1]] <= flat))
    if not confirmed and lam[0] >= -negative and n_small:
        descent = higher_order(objective, theta, V[:, :n_small], spectrum.T, threshold, options)
        used += descent.iterations
        borderline = borderline or descent.borderline
        order, reason = descent.order, ("no descent found: " if descent.order == 0 else "") + descent.tried
    kind, n_flat, n_negative = classify(
        value,
        float(np.linalg.norm(g)),
        lam,
        threshold,
        options=options,
        accuracy=spectrum.accuracy,
        descent_confirmed=confirmed,
        higher_order=order if not confirmed else 0,
    )
    if kind == "minimum":
        reason = "critical, every eigenvalue positive"
    elif kind == "unconverged":
        reason = "a negative eigenvalue the loss does not follow"
    if not spectrum.converged:
        reason += " (Lanczos did not converge)"
    return _record(
        theta,
        value,
        g,
        kind,
        reason,
        used,
        spectrum=spectrum,
        options=options,
        n_flat=n_flat,
        n_negative=n_negative,
        saddle_order=order if kind == "saddle" else 0,
        borderline=borderline,
    )
