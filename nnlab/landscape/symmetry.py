"""Networks modulo their symmetries: canonical forms, alignment, distinct optima, and barriers.

Hidden units of a layer can be permuted (with the rows of the next layer's weights) without changing
the function, and for an odd activation (tanh, identity) a unit's sign flipped: its incoming weights
and bias and its outgoing weights all negated. A hidden unit j of layer i is summed up by its vector

    u_j = (W_{i+1}[j, :], b_i[j], W_i[:, j])        (outgoing weights, bias, incoming weights)

which a permutation moves and a sign flip negates whole. `align` matches the units of one network to
another's layer by layer with the Hungarian algorithm (`scipy.optimize.linear_sum_assignment`) on
the distances between these vectors, the sign chosen per pair (weight matching, as in Ainsworth et
al.'s Git Re-Basin); `canonical` sorts and signs them. Two certified minima are one optimum when
their functions agree on the training inputs and their aligned parameters agree (`distinct_optima`),
so that copies of one network fall together and equal losses of different functions do not.

A certified minimum's position is known only as well as its certificate pins it: a point with
gradient g where the Hessian's smallest eigenvalue is lambda_min may lie up to |g| / lambda_min from
the minimum it stands for (along the softest direction), its loss up to |g|^2 / (2 lambda_min)
above it (`loss_margin`). Near-flat minima (lambda_min / lambda_max ~ 1e-8) reached from several
seeds then differ by more than `distinct_optima`'s parameter tolerance while being one minimum, or
one connected flat family: `flat_families` joins optima whose losses agree within their margins and
whose aligned straight path (or, failing that, an optimized Bezier curve) rises above the higher end
by no more than the margins, and reports how far the family spans.
"""

from __future__ import annotations

import numpy as np

from nnlab.errors import InputError
from nnlab.functions import ODD
from nnlab.network import Network, flat_params, forward, loss_of, network_from_flat

# Defaults of `distinct_optima`: outputs within FTOL (root mean square over the training inputs)
# and aligned parameters within PTOL of the parameter norm (at least 1) are one optimum.
FTOL = 1e-5
PTOL = 1e-4
# `loss_margin`'s floor: the continuation test's tolerance (nnlab.landscape.Options.ftol), by which
# a further descent may still lower a certified minimum's loss.
LTOL = 1e-9


def _unit_vectors(W: list, b: list | None, i: int, outgoing: bool = True) -> np.ndarray:
    """u_j of hidden layer i (1-based, between W[i - 1] and W[i]), one row per unit (h, k); without
    ``outgoing``, only its bias and incoming weights."""
    parts = [W[i - 1].T]
    if b is not None:
        parts.insert(0, b[i - 1][:, None])
    if outgoing:
        parts.insert(0, W[i])
    return np.concatenate(parts, axis=1)


def _apply(W: list, b: list | None, i: int, perm: np.ndarray, sign: np.ndarray) -> tuple[list, list | None]:
    """Reorder the units of hidden layer i by ``perm`` (new unit j = old unit perm[j]) and multiply
    unit j by sign[j]."""
    W, b = list(W), None if b is None else list(b)
    W[i - 1] = W[i - 1][:, perm] * sign
    W[i] = W[i][perm] * sign[:, None]
    if b is not None:
        b[i - 1] = b[i - 1][perm] * sign
    return W, b


def _layers(net: Network, r: int) -> tuple[list, list | None]:
    return [w[r] for w in net.weights], None if net.biases is None else [v[r] for v in net.biases]


def _network(layers: list[tuple[list, list | None]], like: Network) -> Network:
    weights = tuple(np.stack([W[m] for W, _ in layers]) for m in range(len(like.weights)))
    biases = (
        None
        if like.biases is None
        else tuple(np.stack([b[m] for _, b in layers]) for m in range(len(like.weights)))
    )
    return Network(weights, biases, like.hidden, like.output)


def canonical(net: Network) -> Network:
    """Every replica in a canonical form modulo hidden-unit permutation and, for odd activations,
    sign: layer by layer from the input, each unit is signed so that the first entry of its bias and
    incoming weights that is not ~0 is positive, and the units are sorted by (bias, incoming
    weights), descending; the incoming weights are those of the previous layers' canonical units.
    Networks related by these symmetries get the same form (up to near-ties in the sort; compare
    networks with `align`, which has none)."""
    out = []
    for r in range(net.n_replicas):
        W, b = _layers(net, r)
        for i in range(1, len(W)):
            u = _unit_vectors(W, b, i, outgoing=False)
            sign = np.ones(len(u))
            if net.hidden in ODD:
                big = np.abs(u) > 1e-12 * np.abs(u).max(initial=0.0)
                first = np.where(big.any(axis=1), big.argmax(axis=1), 0)
                sign = np.where(u[np.arange(len(u)), first] < 0, -1.0, 1.0)
            u = u * sign[:, None]
            perm = np.lexsort(-u.T[::-1])  # descending by the first column, then the next...
            W, b = _apply(W, b, i, perm, sign[perm])
        out.append((W, b))
    return _network(out, net)


def _match(u: np.ndarray, v: np.ndarray, odd: bool) -> tuple[np.ndarray, np.ndarray]:
    """The permutation and signs of v's rows that best match u's: argmin sum_j |u_j - s_j v_perm[j]|^2."""
    from scipy.optimize import linear_sum_assignment

    dot = u @ v.T
    gain = np.abs(dot) if odd else dot
    rows, perm = linear_sum_assignment(-gain)
    sign = np.where(odd & (dot[rows, perm] < 0), -1.0, 1.0)
    return perm, sign


def align(reference: Network, other: Network, *, sweeps: int = 10) -> Network:
    """``other`` with its hidden units permuted (and, for odd activations, signed) to match
    ``reference``, replica by replica (or every replica of ``other`` to a one-replica reference).

    Hidden layers are matched in turn from the input, each by the Hungarian algorithm on the unit
    vectors: in the first pass their bias and incoming weights (which follow the previous layers'
    matching, so that exact copies align exactly), then, with two or more hidden layers, the whole
    u_j, the passes repeating until no matching changes (at most ``sweeps``; coordinate descent on
    the distance, as in weight matching). One hidden layer: one pass on the whole u_j, exact.
    """
    if reference.sizes != other.sizes or (reference.biases is None) != (other.biases is None):
        raise InputError(f"align: networks of different architectures, {reference.sizes} and {other.sizes}")
    if reference.n_replicas not in (1, other.n_replicas):
        raise InputError(
            f"align: expected a reference of 1 or {other.n_replicas} replicas, got {reference.n_replicas}"
        )
    odd = other.hidden in ODD
    out = []
    for r in range(other.n_replicas):
        Wr, br = _layers(reference, r if reference.n_replicas > 1 else 0)
        W, b = _layers(other, r)
        for sweep in range(sweeps):
            changed = False
            whole = sweep > 0 or len(W) == 2
            for i in range(1, len(W)):
                perm, sign = _match(_unit_vectors(Wr, br, i, whole), _unit_vectors(W, b, i, whole), odd)
                if np.any(perm != np.arange(len(perm))) or np.any(sign < 0):
                    changed = True
                    W, b = _apply(W, b, i, perm, sign)
            if (not changed and sweep > 0) or len(W) == 2:
                break
        out.append((W, b))
    return _network(out, other)


def function_distance(a: Network, b: Network, X: np.ndarray) -> np.ndarray:
    """Root mean square over the inputs X (n, d) and the outputs of f_L(a) - f_L(b), per replica (R,)."""
    return np.sqrt(np.mean((forward(a, X)[-1] - forward(b, X)[-1]) ** 2, axis=(1, 2)))


def parameter_distance(a: Network, b: Network) -> np.ndarray:
    """|theta_a - theta_b| of ``b`` aligned to ``a``, relative to max(1, |theta_a|), per replica (R,)."""
    ta = flat_params(a)
    return np.linalg.norm(ta - flat_params(align(a, b)), axis=1) / np.maximum(1.0, np.linalg.norm(ta, axis=1))


def distinct_optima(
    net: Network, X: np.ndarray, *, loss: np.ndarray | None = None, ftol: float = FTOL, ptol: float = PTOL
) -> np.ndarray:
    """Group R networks (the certified minima of one configuration) into distinct optima.

    In order of ``loss`` (the first replica first without it), each network joins the first optimum
    whose representative (its first member) computes the same function on X (`function_distance`
    <= ``ftol``) with the same aligned parameters (`parameter_distance` <= ``ptol``), or starts a new
    one.

    Returns
    -------
    ndarray (R,) of int
        The optimum of each replica, numbered 0, 1, ... in order of loss.
    """
    R = net.n_replicas
    order = np.argsort(loss, kind="stable") if loss is not None else np.arange(R)
    labels = np.full(R, -1)
    representatives: list[int] = []
    for r in order:
        one = net.replica(int(r))
        for k, rep in enumerate(representatives):
            other = net.replica(rep)
            if function_distance(other, one, X)[0] <= ftol and parameter_distance(other, one)[0] <= ptol:
                labels[r] = k
                break
        else:
            labels[r] = len(representatives)
            representatives.append(int(r))
    return labels


def loss_margin(loss, grad_norm, lambda_min, *, ltol: float = LTOL) -> np.ndarray:
    """How far below its loss the minimum a certified point stands for may lie: the quadratic
    model's gap |g|^2 / (2 lambda_min) (g the gradient, lambda_min > 0 the Hessian's smallest
    eigenvalue) plus ``ltol`` times the loss (what the continuation test lets a further descent
    still gain). Arrays (R,) in, (R,) out; where lambda_min is not positive (not a strict minimum:
    no quadratic model to go on) the floor alone."""
    loss, g, lam = (np.asarray(v, dtype=np.float64) for v in (loss, grad_norm, lambda_min))
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(lam > 0, g * g / (2 * lam), 0.0)
    return gap + ltol * np.abs(loss)


def flat_families(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    labels: np.ndarray,
    loss_values: np.ndarray,
    margin: np.ndarray,
    *,
    loss: str = "half_squared",
    points: int = 33,
    optimized: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Join the optima of `distinct_optima` that are one minimum, or one connected flat family.

    Optima are taken in order of loss, each represented by its lowest-loss member. An optimum joins
    the first family with every one of whose optima it is connected: their losses differ by at most
    the sum of their `loss_margin` s, and the loss along the straight path between the aligned
    representatives rises above the higher end by at most that sum (when it rises more, along a
    quadratic Bezier curve trained on the loss, `nnlab.landscape.paths.bezier`, with ``optimized``).
    Every member pair of a family is connected (never a chain of small steps between different
    losses), so minima at losses the certificates tell apart are never joined.

    Parameters
    ----------
    net : Network
        R replicas: the certified minima of one configuration.
    labels : ndarray (R,) of int
        `distinct_optima`'s labels.
    loss_values, margin : ndarray (R,)
        Each minimum's polished loss and `loss_margin`.
    loss : str
        The loss function of the paths.

    Returns
    -------
    labels : ndarray (R,) of int
        The family of each replica, numbered 0, 1, ... in order of loss.
    extent : ndarray (families,)
        The largest distance from a family's representative (its lowest-loss member) to a member,
        |theta - theta_rep| after alignment: 0 for an optimum that joined no other.
    """
    labels = np.asarray(labels)
    loss_values = np.asarray(loss_values, dtype=np.float64)
    margin = np.asarray(margin, dtype=np.float64)
    groups = sorted(set(labels.tolist()), key=lambda k: loss_values[labels == k].min())
    rep = {k: int(np.flatnonzero(labels == k)[np.argmin(loss_values[labels == k])]) for k in groups}

    def connected(a: int, b: int) -> bool:
        ra, rb = rep[a], rep[b]
        tol = margin[ra] + margin[rb]
        if not abs(loss_values[ra] - loss_values[rb]) <= tol:
            return False
        one, other = net.replica(ra), net.replica(rb)
        if barrier(one, other, X, Y, loss=loss, points=points)[0][0] <= tol:
            return True
        if not optimized:
            return False
        from nnlab.landscape.paths import bezier  # (paths imports this module)

        return bezier(one, other, X, Y, loss=loss, points=points).height <= tol

    families: list[list[int]] = []
    family_of = {}
    for k in groups:
        for f, members in enumerate(families):
            if all(connected(m, k) for m in members):
                members.append(k)
                family_of[k] = f
                break
        else:
            family_of[k] = len(families)
            families.append([k])
    out = np.array([family_of[k] for k in labels.tolist()], dtype=np.int64)
    extent = np.zeros(len(families))
    for f, members in enumerate(families):
        rows = np.flatnonzero(out == f)
        if len(members) > 1:  # (the copies within one optimum of distinct_optima are one point)
            ref = net.replica(rep[members[0]])
            theta = flat_params(align(ref, net.replica(list(rows))))
            extent[f] = float(np.linalg.norm(theta - flat_params(ref), axis=1).max())
    return out, extent


def barrier(
    a: Network,
    b: Network,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    loss: str = "half_squared",
    points: int = 33,
    aligned: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The loss along the straight path from ``a`` to ``b`` (aligned to ``a`` first, unless
    ``aligned`` is False), replica by replica.

    Returns
    -------
    height : ndarray (R,)
        max over the path minus the higher of the two ends: 0 when the path never rises above its
        ends (the two are connected by a straight descent), > 0 for a barrier.
    path : ndarray (R, points)
        The loss at t = 0, 1/(points - 1), ..., 1.
    """
    if points < 2:
        raise InputError(f"points: expected an int >= 2, got {points!r}")
    if aligned:
        b = align(a, b)
    ta, tb = flat_params(a), flat_params(b)
    if ta.shape != tb.shape:
        ta = np.broadcast_to(ta, tb.shape)
    R, P = tb.shape
    t = np.linspace(0.0, 1.0, points)
    theta = (1 - t)[None, :, None] * ta[:, None] + t[None, :, None] * tb[:, None]  # (R, points, P)
    along = network_from_flat(
        theta.reshape(R * points, P), a.sizes, bias=a.biases is not None, hidden=a.hidden, output=a.output
    )
    with np.errstate(all="ignore"):
        path = loss_of(along, X, Y, loss=loss).reshape(R, points)
    height = path.max(axis=1) - np.maximum(path[:, 0], path[:, -1])
    return height, path
