"""Tests of the optimizers and learning-rate schedules of nnlab.train (nnlab.sgd.OptimizerSpec):
hand-worked steps, an independent implementation of torch.optim's rules, every compiled layout against
the numpy reference (partial last batches, explicit orders, divergence, replica independence), the
schedule table, train_memory, and one-line errors for bad fields.

The `engine` fixture runs a test with the numpy reference and with each compiled layout forced.
"""

import math

import numpy as np
import pytest

from nnlab import backprop, init_network, network_from_arrays, train
from nnlab import sgd as sgd_module
from nnlab.sgd import OPTIMIZERS, OptimizerSpec, shuffled_orders, train_memory

LAYOUTS = ["lanes", "replica"]
# Each optimizer with a schedule and decay, so that every schedule and both kinds of decay are met.
SETTINGS = {
    "sgd": dict(weight_decay=0.01, schedule="step", gamma=0.5, step_every=1),
    "momentum": dict(momentum=0.8, schedule="cosine"),
    "nesterov": dict(weight_decay=0.02, schedule="linear", warmup=3),
    "adam": dict(beta1=0.8, beta2=0.99, eps=1e-6, schedule="cosine", warmup=2),
    "adamw": dict(weight_decay=0.1),
}
# A learning rate that keeps each stable on the small networks below.
LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adam": 0.01, "adamw": 0.01}


def force_layout(monkeypatch, layout):
    monkeypatch.setattr(sgd_module, "layout", lambda sizes, batch_size: layout)


@pytest.fixture(params=["numpy", *LAYOUTS])
def engine(request, monkeypatch):
    """The engine to pass to `train`: the numpy reference, or the compiled one in a forced layout."""
    if request.param == "numpy":
        return "numpy"
    force_layout(monkeypatch, request.param)
    return "numba"


def params(net):
    return list(net.weights) + (list(net.biases) if net.biases is not None else [])


def make_data(rng, n, d, out, lead=()):
    X = rng.uniform(-1.0, 1.0, size=(*lead, n, d)) * np.sqrt(3.0 / d)
    Y = rng.uniform(-0.5, 0.5, size=(*lead, n, out))
    return X, Y


def assert_close(net_a, net_b, rel=1e-12):
    for i, (pa, pb) in enumerate(zip(params(net_a), params(net_b), strict=True)):
        err, scale = np.abs(pa - pb).max(), np.abs(pa).max()
        assert err <= rel * scale or err == 0.0, f"parameter array {i}: {err} vs scale {scale}"


def assert_same_replica(a, ra, b, rb):
    """Replica ra of TrainResult a equals replica rb of b, bit for bit."""
    for pa, pb in zip(params(a.network), params(b.network), strict=True):
        np.testing.assert_array_equal(pa[ra], pb[rb])
    np.testing.assert_array_equal(a.loss_curve[ra], b.loss_curve[rb])


# ------------------------------------------------------------------------------------------------
# Hand-worked steps: sizes [1, 1], no bias, identity output, half_squared loss, one sample x = 1,
# y = 0. The loss is w^2 / 2 and its gradient g = w, so each rule can be followed by hand (lr 0.1):
#
#   sgd:       w <- w - lr w = 0.9 w                          1 -> 0.9 -> 0.81 -> 0.729
#   momentum:  (mu 0.9) buf 1, w 0.9; buf 0.9 * 1 + 0.9 = 1.8, w 0.9 - 0.18 = 0.72;
#              buf 0.9 * 1.8 + 0.72 = 2.34, w 0.72 - 0.234 = 0.486
#   nesterov:  buf 1, w 1 - 0.1 (1 + 0.9) = 0.81; buf 0.9 + 0.81 = 1.71,
#              w 0.81 - 0.1 (0.81 + 1.539) = 0.5751; buf 1.539 + 0.5751 = 2.1141,
#              w 0.5751 - 0.1 (0.5751 + 1.90269) = 0.327321
#   adam:      step 1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2: w 1 - 0.1 / (1 + 1e-8);
#              step 2 (g = w_1 ~ 0.9): m = 0.09 + 0.1 w_1, v = 0.000999 + 0.001 w_1^2, m_hat = m / 0.19,
#              v_hat = v / 0.001999: w_1 - 0.1 m_hat / (sqrt(v_hat) + 1e-8) ~ 0.800412
#   adamw:     (wd 0.5) each step first w <- w (1 - 0.1 * 0.5) = 0.95 w, then adam's step from the
#              gradient at the undecayed w.
#   coupled decay (sgd, wd 0.5): g = w + 0.5 w: w <- w (1 - 0.15) = 0.85 w.


def by_hand(optimizer, w, steps, lr=0.1, wd=0.0, rates=None):
    """The three-line rules above, in scalars; rates: lr_t per step (default lr)."""
    buf = m = v = 0.0
    for t in range(1, steps + 1):
        lr_t = lr if rates is None else rates[t - 1]
        g = w  # dLoss/dw at the current w
        if optimizer == "adamw":
            w = w * (1.0 - lr_t * wd)
        else:
            g = g + wd * w
        if optimizer == "sgd":
            w = w - lr_t * g
        elif optimizer in ("momentum", "nesterov"):
            buf = 0.9 * buf + g
            w = w - lr_t * (buf if optimizer == "momentum" else g + 0.9 * buf)
        else:
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            w = w - lr_t * (m / (1 - 0.9**t)) / (math.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return w


def one_weight(w0):
    net = network_from_arrays([np.array(w0, dtype=float).reshape(-1, 1, 1)], None, output="identity")
    return net, np.ones((1, 1)), np.zeros((1, 1))


def test_the_hand_worked_numbers():
    """The numbers written out in the comment above."""
    assert by_hand("sgd", 1.0, 3) == pytest.approx(0.729, abs=1e-15)
    assert by_hand("momentum", 1.0, 3) == pytest.approx(0.486, abs=1e-15)
    assert by_hand("nesterov", 1.0, 3) == pytest.approx(0.327321, abs=1e-15)
    assert by_hand("adam", 1.0, 1) == pytest.approx(0.9 + 1e-9, abs=1e-15)
    assert by_hand("adam", 1.0, 2) == pytest.approx(0.800412, abs=1e-6)
    assert by_hand("sgd", 1.0, 1, wd=0.5) == pytest.approx(0.85, abs=1e-15)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_hand_worked_steps(engine, optimizer):
    """Three steps on three replicas (w0 = 1, -0.5, 2) and, for adamw, decoupled decay 0.5."""
    w0 = [1.0, -0.5, 2.0]
    net, X, Y = one_weight(w0)
    wd = 0.5 if optimizer == "adamw" else 0.0
    result = train(net, X, Y, lr=0.1, epochs=3, optimizer=optimizer, weight_decay=wd, engine=engine)
    expected = [by_hand(optimizer, w, 3, wd=wd) for w in w0]
    np.testing.assert_allclose(result.network.weights[0].ravel(), expected, rtol=1e-14)
    np.testing.assert_allclose(result.loss_curve[:, -1], 0.5 * np.square(expected), rtol=1e-13)


@pytest.mark.parametrize(
    ("schedule", "rates"),
    [
        # lr 0.1 over T = 4 steps (4 epochs of one sample):
        ("constant", [0.1, 0.1, 0.1, 0.1]),
        # 0.1 (1 + cos(pi t / 4)) / 2: 0.1, 0.0853553, 0.05, 0.0146447
        ("cosine", [0.1, 0.05 * (1 + math.sqrt(0.5)), 0.05, 0.05 * (1 - math.sqrt(0.5))]),
        ("linear", [0.1, 0.075, 0.05, 0.025]),  # 0.1 (1 - t / 4)
        ("step", [0.1, 0.1, 0.05, 0.05]),  # gamma 0.5 every 2 epochs
        ("warmup", [0.1 * 0.5, 0.075, 0.05, 0.025]),  # linear, times min(1, (t + 1) / 2)
    ],
)
def test_hand_worked_schedules(engine, schedule, rates):
    net, X, Y = one_weight([1.0, -2.0])
    kwargs = dict(schedule=schedule)
    if schedule == "step":
        kwargs.update(gamma=0.5, step_every=2)
    if schedule == "warmup":
        kwargs = dict(schedule="linear", warmup=2)
    result = train(net, X, Y, lr=0.1, epochs=4, engine=engine, **kwargs)
    expected = [w * np.prod([1 - r for r in rates]) for w in (1.0, -2.0)]
    np.testing.assert_allclose(result.network.weights[0].ravel(), expected, rtol=1e-14)


def test_the_schedule_counts_update_steps_and_epochs():
    """n = 5, batch 2: three steps an epoch (the partial last batch is one), T = 2 x 3 = 6."""
    spec = OptimizerSpec(schedule="step", gamma=0.1, step_every=1, warmup=4)
    rates = spec.rates(1.0, epochs=2, steps_per_epoch=3, first=0, count=6)
    np.testing.assert_allclose(rates[:, 0], [0.25, 0.5, 0.75, 0.1, 0.1, 0.1], rtol=1e-15)
    np.testing.assert_allclose(rates[:, 1], 1 - 0.9 ** np.arange(1, 7), rtol=1e-15)
    np.testing.assert_allclose(rates[:, 2], np.sqrt(1 - 0.999 ** np.arange(1, 7)), rtol=1e-15)
    # A slice of the steps is the same slice of the table.
    np.testing.assert_array_equal(spec.rates(1.0, 2, 3, first=2, count=3), rates[2:5])
    cosine = OptimizerSpec(schedule="cosine").rates(2.0, epochs=2, steps_per_epoch=3, first=0, count=6)
    np.testing.assert_allclose(cosine[:, 0], 1 + np.cos(np.pi * np.arange(6) / 6), rtol=1e-15)


# ------------------------------------------------------------------------------------------------
# An independent implementation of torch.optim's rules, one replica and one parameter vector at a
# time (the formulas as written: SGD(momentum, nesterov, weight_decay), Adam, AdamW), with the
# gradient from `backprop`.


def torch_rules(net, X, Y, order, *, lr, batch_size, optimizer, **kw):
    spec = OptimizerSpec(optimizer, **kw)
    R, L = net.n_replicas, len(net.weights)
    epochs, n = order.shape[-2:]
    steps = -(-n // batch_size)
    T = epochs * steps
    out = []
    for r in range(R):
        theta = [p[r].ravel().copy() for p in params(net)]
        shapes = [p[r].shape for p in params(net)]
        buf = [np.zeros_like(p) for p in theta]
        m = [np.zeros_like(p) for p in theta]
        v = [np.zeros_like(p) for p in theta]
        t = 0
        for e in range(epochs):
            for start in range(0, n, batch_size):
                # lr_t by the formulas of the issue
                base = {
                    "constant": lr,
                    "cosine": lr * (1 + math.cos(math.pi * t / T)) / 2,
                    "linear": lr * (1 - t / T),
                    "step": lr * spec.gamma ** ((t // steps) // (spec.step_every or 1)),
                }[spec.schedule]
                lr_t = base * (min(1.0, (t + 1) / spec.warmup) if spec.warmup else 1.0)
                t += 1
                current = network_from_arrays(
                    [p.reshape(s) for p, s in zip(theta[:L], shapes[:L], strict=True)],
                    [p.reshape(s) for p, s in zip(theta[L:], shapes[L:], strict=True)] or None,
                    hidden=net.hidden,
                    output=net.output,
                )
                idx = order[r if order.ndim == 3 else 0, e, start : start + batch_size]
                grads = backprop(current, X[idx], Y[idx])
                for i, g in enumerate(p[0].ravel() for p in params(grads)):
                    wd = spec.weight_decay
                    if optimizer == "adamw":
                        theta[i] = theta[i] * (1 - lr_t * wd)
                    else:
                        g = g + wd * theta[i]
                    if optimizer == "sgd":
                        theta[i] = theta[i] - lr_t * g
                    elif optimizer in ("momentum", "nesterov"):
                        buf[i] = g.copy() if t == 1 else spec.momentum * buf[i] + g
                        d = buf[i] if optimizer == "momentum" else g + spec.momentum * buf[i]
                        theta[i] = theta[i] - lr_t * d
                    else:
                        m[i] = spec.beta1 * m[i] + (1 - spec.beta1) * g
                        v[i] = spec.beta2 * v[i] + (1 - spec.beta2) * g**2
                        m_hat = m[i] / (1 - spec.beta1**t)
                        v_hat = v[i] / (1 - spec.beta2**t)
                        theta[i] = theta[i] - lr_t * m_hat / (np.sqrt(v_hat) + spec.eps)
        out.append([p.reshape(s) for p, s in zip(theta, shapes, strict=True)])
    arrays = [np.stack(a) for a in zip(*out, strict=True)]
    return network_from_arrays(arrays[:L], arrays[L:] or None, hidden=net.hidden, output=net.output)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_against_torch_rules(rng, engine, optimizer):
    """n = 7, batch 3 (batches of 3, 3, 1), three epochs, a per-replica explicit order."""
    X, Y = make_data(rng, 7, 2, 2)
    net = init_network([2, 5, 2], seeds=[1, 2], hidden="tanh")
    order = rng.integers(0, 7, size=(2, 3, 7))
    kwargs = dict(lr=LR[optimizer], batch_size=3, optimizer=optimizer, **SETTINGS[optimizer])
    result = train(net, X, Y, epochs=3, order=order, engine=engine, **kwargs)
    assert_close(torch_rules(net, X, Y, order, **kwargs), result.network, rel=1e-12)


# ------------------------------------------------------------------------------------------------
# Every compiled layout equals the reference


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_layouts_match_the_reference(rng, monkeypatch, optimizer, layout, batch_size):
    """Widths 37 and 18 (not multiples of a vector's 16), n = 10 (a partial last batch), a shared
    explicit order (2-D) for per-sample steps and the default shuffles for minibatches."""
    sizes = [3, 37, 18, 2]
    X, Y = make_data(rng, 10, sizes[0], sizes[-1])
    net = init_network(sizes, seeds=[0, 1, 2], hidden="tanh", output="sigmoid")
    order = rng.integers(0, 10, size=(3, 10)) if batch_size == 1 else None
    kwargs = dict(lr=LR[optimizer] / 2, epochs=3, batch_size=batch_size, order=order, optimizer=optimizer)
    kwargs.update(SETTINGS[optimizer])
    reference = train(net, X, Y, engine="numpy", **kwargs)
    force_layout(monkeypatch, layout)
    fast = train(net, X, Y, engine="numba", **kwargs)
    assert not reference.diverged.any() and not fast.diverged.any()
    assert_close(reference.network, fast.network, rel=1e-12)
    np.testing.assert_allclose(fast.loss_curve, reference.loss_curve, rtol=1e-12)
    np.testing.assert_allclose(fast.grad_norm, reference.grad_norm, rtol=1e-10)


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_divergence_and_replica_independence(rng, engine, optimizer, batch_size):
    """Replica 1 diverges: with inputs 1e3 times larger, the gradient steps blow up within the first
    epoch (Adam's steps are bounded by lr: 1e160 times larger inputs, a loss that overflows from the
    start). It stops updating for good (two more epochs leave it as it was); replica 17 of 18 (in
    the second group of 16 lanes) and replica 0 are bit for bit what they are alone."""
    R, n = 18, 12
    X, Y = make_data(rng, n, 2, 1, (R,))
    adaptive = optimizer in ("adam", "adamw")
    X[1] *= 1e160 if adaptive else 1e3
    net = init_network([2, 6, 1], seeds=range(R), hidden="identity", output="identity")
    kwargs = dict(lr=0.01, batch_size=batch_size, optimizer=optimizer, engine=engine)
    kwargs["weight_decay"] = 0.01 if optimizer in ("sgd", "adamw") else 0.0  # sgd: the generic path
    short = train(net, X, Y, epochs=2, **kwargs)
    longer = train(net, X, Y, epochs=4, **kwargs)
    np.testing.assert_array_equal(longer.diverged, np.arange(R) == 1)
    assert short.diverged[1] and np.isfinite(short.loss_curve[1, 0]) != adaptive
    for ps, pl in zip(params(short.network), params(longer.network), strict=True):
        np.testing.assert_array_equal(pl[1], ps[1], err_msg="the diverged replica kept updating")
    for r in (0, 17):
        alone = train(net.replica(r), X[r], Y[r], epochs=4, seeds=[r], **kwargs)
        assert_same_replica(longer, r, alone, 0)


def test_adam_state_is_per_replica_and_starts_at_zero(engine):
    """Two replicas with the same weights, one of them frozen by a diverged start: the other one's
    first step is Adam's first step, lr * sign(g) (up to eps), as if it were alone."""
    net, X, Y = one_weight([1.0, 1e300])
    result = train(net, X, Y * 0, lr=0.1, epochs=1, optimizer="adam", engine=engine)
    np.testing.assert_array_equal(result.diverged, [False, True])
    assert result.network.weights[0][0, 0, 0] == pytest.approx(0.9 + 1e-9, abs=1e-15)
    assert result.network.weights[0][1, 0, 0] == 1e300


def test_order_per_replica_is_followed_by_every_optimizer(rng, monkeypatch):
    """A 3-D explicit order: replica 0 alone with order[0] gives the same, each layout."""
    X, Y = make_data(rng, 6, 2, 1)
    net = init_network([2, 4, 1], seeds=[5, 6])
    order = rng.integers(0, 6, size=(2, 2, 6))
    for layout in LAYOUTS:
        force_layout(monkeypatch, layout)
        kwargs = dict(lr=0.01, epochs=2, batch_size=2, optimizer="nesterov")
        both = train(net, X, Y, order=order, **kwargs)
        alone = train(net.replica(0), X, Y, order=order[0], **kwargs)
        assert_same_replica(both, 0, alone, 0)


def test_default_keywords_are_todays_sgd(rng):
    """Naming the defaults changes nothing, bit for bit, in both engines."""
    X, Y = make_data(rng, 5, 2, 1)
    net = init_network([2, 3, 1], seeds=[0, 1])
    for engine in ("numpy", "numba"):
        plain = train(net, X, Y, lr=0.1, epochs=2, engine=engine)
        named = train(
            net, X, Y, lr=0.1, epochs=2, optimizer="sgd", schedule="constant", weight_decay=0.0, engine=engine
        )
        for a, b in zip(params(plain.network), params(named.network), strict=True):
            np.testing.assert_array_equal(a, b)


def test_train_memory_counts_the_state():
    base = dict(replicas=20, n=100, epochs=5)
    sgd = train_memory([2, 8, 1], **base)
    P, rows = 2 * 8 + 8 + 8 + 1, 32  # the lanes pad 20 replicas to 32
    assert (
        train_memory([2, 8, 1], optimizer="momentum", **base)["parameters"]
        == sgd["parameters"] + 8 * rows * P
    )
    assert (
        train_memory([2, 8, 1], optimizer="adam", **base)["parameters"] == sgd["parameters"] + 16 * rows * P
    )
    wide = dict(replicas=4, n=64, epochs=2, batch_size=16)
    # the replica layout: the kernels' copy, m, v and the network returned
    memory = train_memory([64, 1024, 10], optimizer="adamw", **wide)["parameters"]
    assert 4 * 4 * 76_810 * 8 <= memory < 4.01 * 4 * 76_810 * 8


def test_train_seconds_counts_the_rule():
    """Per-sample Adam costs more than momentum, which costs more than SGD; with batches of 16 the
    update's share shrinks."""
    base = dict(replicas=8, n=64, epochs=3)
    times = {o: sgd_module.train_seconds([2, 32, 32, 1], optimizer=o, **base) for o in OPTIMIZERS}
    assert times["sgd"] < times["momentum"] == times["nesterov"] < times["adam"] == times["adamw"]
    batched = {
        o: sgd_module.train_seconds([2, 32, 32, 1], optimizer=o, batch_size=16, **base) for o in OPTIMIZERS
    }
    assert batched["adam"] / batched["sgd"] < times["adam"] / times["sgd"]


# ------------------------------------------------------------------------------------------------
# Bad fields: one line each, naming the field


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "adma"}, r"^Unknown optimizer 'adma' \(did you mean 'adam'\?\); choose one of"),
        ({"optimizer": 3}, r"^Unknown optimizer 3; choose one of"),
        ({"schedule": "cosin"}, r"^Unknown schedule 'cosin' \(did you mean 'cosine'\?\)"),
        ({"optimizer": "momentum", "momentum": 1.0}, r"^momentum: expected a number in \[0, 1\), got 1.0$"),
        ({"optimizer": "nesterov", "momentum": -0.1}, r"^momentum: expected a number in \[0, 1\)"),
        ({"optimizer": "adam", "beta1": 1.0}, r"^beta1: expected a number in \[0, 1\), got 1.0$"),
        ({"optimizer": "adam", "beta2": float("nan")}, r"^beta2: expected a number in \[0, 1\)"),
        ({"optimizer": "adamw", "beta2": True}, r"^beta2: expected a number in \[0, 1\)"),
        ({"optimizer": "adam", "eps": 0.0}, r"^eps: expected a finite number > 0, got 0.0$"),
        ({"weight_decay": -1e-4}, r"^weight_decay: expected a finite number >= 0, got -0.0001$"),
        ({"weight_decay": "0.1"}, r"^weight_decay: expected a finite number >= 0"),
        ({"warmup": -1}, r"^warmup: expected an int >= 0 \(update steps\), got -1$"),
        ({"warmup": 2.5}, r"^warmup: expected an int >= 0"),
        ({"schedule": "step", "gamma": 0.0, "step_every": 2}, r"^gamma: expected a finite number > 0"),
        ({"schedule": "step", "step_every": 0}, r"^step_every: expected an int >= 1 \(epochs\), got 0$"),
        ({"schedule": "step"}, r"^step_every: the step schedule needs it"),
        ({"beta1": 0.8}, r"^beta1: adam and adamw use it, not sgd$"),
        ({"optimizer": "momentum", "eps": 1e-6}, r"^eps: adam and adamw use it, not momentum$"),
        ({"optimizer": "adam", "momentum": 0.5}, r"^momentum: momentum and nesterov use it, not adam$"),
        ({"schedule": "cosine", "gamma": 0.5}, r"^gamma: the step schedule uses it, not cosine$"),
        ({"step_every": 3}, r"^step_every: the step schedule uses it, not constant$"),
    ],
)
def test_bad_fields(kwargs, match):
    net = init_network([2, 3, 1], seeds=[0])
    with pytest.raises(ValueError, match=match) as caught:
        train(net, np.zeros((4, 2)), np.zeros((4, 1)), lr=0.1, epochs=1, engine="numpy", **kwargs)
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match=match):  # the spec object refuses them alike
        OptimizerSpec(**kwargs)


def test_shuffled_order_drives_every_optimizer(rng):
    """Without an order, each replica follows shuffled_orders of its seed, whatever the optimizer."""
    X, Y = make_data(rng, 6, 2, 1)
    net = init_network([2, 3, 1], seeds=[3, 9])
    kwargs = dict(lr=0.01, epochs=2, optimizer="adamw", weight_decay=0.1)
    assert_same_replica(
        train(net, X, Y, **kwargs), 1, train(net, X, Y, order=shuffled_orders([3, 9], 2, 6), **kwargs), 1
    )
