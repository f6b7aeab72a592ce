"""keep_sparsity: the zeros of a sparse initialisation survive real training with optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sparseinit
from sparseinit.optax import KeepSparsityState, keep_sparsity, kernel_masks


def _regression():
    # y = x @ w_true + noise: a task a two-layer MLP fits within 100 Adam steps.
    kx, kw, kn = jax.random.split(jax.random.key(42), 3)
    x = jax.random.normal(kx, (256, 16))
    y = jnp.tanh(x @ jax.random.normal(kw, (16, 1))) + 0.01 * jax.random.normal(kn, (256, 1))
    return x, y


def _params(key):
    k1, k2 = jax.random.split(key)
    return {
        "hidden": {"kernel": sparseinit.sparse(0.8)(k1, (16, 32)), "bias": jnp.zeros(32)},
        "out": {"kernel": sparseinit.sparse(0.5)(k2, (32, 1)), "bias": jnp.zeros(1)},
    }


def _loss(params, x, y):
    h = jnp.tanh(x @ params["hidden"]["kernel"] + params["hidden"]["bias"])
    return jnp.mean((h @ params["out"]["kernel"] + params["out"]["bias"] - y) ** 2)


def _train(opt, params, steps=100):
    x, y = _regression()
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(_loss)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    first = None
    for _ in range(steps):
        params, state, loss = step(params, state)
        first = loss if first is None else first
    return params, float(first), float(_loss(params, x, y))


INNER = {
    "adamw": lambda: optax.adamw(1e-2, weight_decay=0.1),
    "sgd_momentum_decay": lambda: optax.chain(
        optax.add_decayed_weights(0.1), optax.sgd(1e-2, momentum=0.9, nesterov=True)
    ),
}


@pytest.mark.parametrize("name", sorted(INNER))
def test_zeros_stay_zero_and_loss_goes_down(name):
    params = _params(jax.random.key(0))
    zeros = jax.tree.map(lambda p: np.asarray(p) == 0, params)
    trained, first, last = _train(keep_sparsity(INNER[name]()), params)
    for path in (("hidden", "kernel"), ("out", "kernel")):
        before, after = zeros[path[0]][path[1]], np.asarray(trained[path[0]][path[1]])
        assert before.sum() > 0
        assert np.all(after[before] == 0), path
        # The kept weights trained: none of them became zero, most of them moved.
        assert np.all(after[~before] != 0), path
        assert np.mean(after[~before] != np.asarray(params[path[0]][path[1]])[~before]) > 0.9
    # Zero-initialised biases are not masked: they trained, except those of the hidden units
    # whose one outgoing weight is held at zero (they get no gradient at all).
    connected = np.asarray(params["out"]["kernel"])[:, 0] != 0
    np.testing.assert_array_equal(np.asarray(trained["hidden"]["bias"]) != 0, connected)
    assert np.all(np.asarray(trained["out"]["bias"]) != 0)
    # Halving the loss is far from what 100 steps reach (>10x here), and far above noise.
    assert last < 0.5 * first, (first, last)


def test_without_it_the_zeros_move():
    # The control: the same training with the bare optimizer does not keep the pattern, so
    # the test above would fail if keep_sparsity did nothing.
    params = _params(jax.random.key(0))
    zeros = np.asarray(params["hidden"]["kernel"]) == 0
    trained, _, _ = _train(INNER["adamw"](), params)
    assert np.mean(np.asarray(trained["hidden"]["kernel"])[zeros] != 0) > 0.9


def test_state_holds_kernel_masks_from_initial_params():
    params = _params(jax.random.key(1))
    state = keep_sparsity(optax.adam(1e-3)).init(params)
    assert isinstance(state, KeepSparsityState)
    assert state.masks["hidden"]["bias"] is None
    np.testing.assert_array_equal(state.masks["hidden"]["kernel"], params["hidden"]["kernel"] != 0)
    # Adam's moments stay zero where the mask holds a weight at zero.
    grads = jax.tree.map(jnp.ones_like, params)
    _, state = keep_sparsity(optax.adam(1e-3)).update(grads, state, params)
    mu = np.asarray(state.inner[0].mu["hidden"]["kernel"])
    assert np.all(mu[~np.asarray(state.masks["hidden"]["kernel"])] == 0)


def test_explicit_masks_prune_dense_params_at_the_first_update():
    w = jax.random.normal(jax.random.key(2), (8, 4)) + 3.0  # no zero anywhere
    mask = sparseinit.sparse(0.5).mask(jax.random.key(3), (8, 4))
    opt = keep_sparsity(optax.adamw(1e-2, weight_decay=0.5), masks={"w": mask})
    params = {"w": w}
    state = opt.init(params)
    for _ in range(3):
        updates, state = opt.update({"w": jnp.ones_like(w)}, state, params)
        params = optax.apply_updates(params, updates)
        new = np.asarray(params["w"])
        assert np.all(new[~np.asarray(mask)] == 0)
        assert np.all(new[np.asarray(mask)] != 0)


def test_mask_as_a_function_and_kernel_masks():
    params = {"k": jnp.array([[0.0, 2.0], [1.0, 0.0]]), "b": jnp.zeros(2)}
    masks = kernel_masks(params)
    assert masks["b"] is None
    assert masks["k"].tolist() == [[False, True], [True, False]]
    opt = keep_sparsity(optax.sgd(1.0), masks=lambda p: {"k": p["k"] != 0, "b": None})
    state = opt.init(params)
    updates, _ = opt.update({"k": jnp.ones((2, 2)), "b": jnp.ones(2)}, state, params)
    assert updates["k"].tolist() == [[0.0, -1.0], [-1.0, 0.0]]
    assert updates["b"].tolist() == [-1.0, -1.0]


def test_bad_input():
    params = {"k": jnp.ones((2, 2))}
    with pytest.raises(ValueError, match="masks must have the shape"):
        keep_sparsity(optax.sgd(1.0), masks={"k": jnp.ones((3, 2), bool)}).init(params)
    opt = keep_sparsity(optax.sgd(1.0))
    with pytest.raises(ValueError, match="params=None"):
        opt.update(params, opt.init(params))


def test_works_with_nnx_optimizer():
    from flax import nnx

    model = nnx.Linear(8, 4, kernel_init=sparseinit.sparse(0.5), rngs=nnx.Rngs(0))
    zeros = np.asarray(model.kernel[...]) == 0
    optimizer = nnx.Optimizer(model, keep_sparsity(optax.adamw(1e-1, 0.1)), wrt=nnx.Param)
    x = jax.random.normal(jax.random.key(0), (16, 8))

    @nnx.jit
    def step(model, optimizer):
        grads = nnx.grad(lambda m: jnp.mean((m(x) - 1.0) ** 2))(model)
        optimizer.update(model, grads)

    for _ in range(5):
        step(model, optimizer)
    kernel = np.asarray(model.kernel[...])
    assert zeros.sum() == 16
    assert np.all(kernel[zeros] == 0)
    assert np.all(kernel[~zeros] != 0)
    assert np.all(np.asarray(model.bias[...]) != 0)


def test_extra_arguments_reach_the_wrapped_transformation():
    # reduce_on_plateau needs value=: the wrapper forwards it, as optax's own wrappers do.
    params = _params(jax.random.key(0))
    x, y = _regression()
    inner = optax.chain(optax.adam(0.1), optax.contrib.reduce_on_plateau(patience=1, factor=0.5))
    opt = keep_sparsity(inner)
    assert isinstance(opt, optax.GradientTransformationExtraArgs)
    state = opt.init(params)
    zeros = jax.tree.map(lambda p: p == 0, params)
    for _ in range(3):
        loss, grads = jax.value_and_grad(_loss)(params, x, y)
        updates, state = opt.update(grads, state, params, value=loss)
        params = optax.apply_updates(params, updates)
    plateau = state.inner[1]
    assert float(plateau.best_value) < float("inf")  # the value reached the inner state
    for kernel in ("hidden", "out"):
        held = np.asarray(params[kernel]["kernel"])[np.asarray(zeros[kernel]["kernel"])]
        np.testing.assert_array_equal(held, 0.0)


def test_a_transformation_without_extra_arguments_ignores_them():
    # A plain GradientTransformation is wrapped to accept (and drop) what it does not take.
    params = _params(jax.random.key(0))
    opt = keep_sparsity(optax.sgd(0.1))
    state = opt.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = opt.update(grads, state, params, value=jnp.float32(1.0))
    plain, _ = keep_sparsity(optax.sgd(0.1)).update(grads, opt.init(params), params)
    jax.tree.map(np.testing.assert_array_equal, updates, plain)


def test_a_required_extra_argument_is_forwarded_by_name():
    seen = []

    def update(updates, state, params=None, *, loss, **extra_args):
        del params, extra_args
        seen.append(loss)
        return updates, state

    inner = optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update)
    params = _params(jax.random.key(0))
    opt = keep_sparsity(inner)
    grads = jax.tree.map(jnp.ones_like, params)
    opt.update(grads, opt.init(params), params, loss=jnp.float32(2.5))
    assert [float(v) for v in seen] == [2.5]
    with pytest.raises(TypeError, match="loss"):
        opt.update(grads, opt.init(params), params)
