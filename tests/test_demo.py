"""The streaming-RL demo: ObGD by hand, Watkins trace resets, one compile, the quick run."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from examples.streaming_rl import sweep
from examples.streaming_rl.agent import (
    AgentConfig,
    StreamQ,
    moments_init,
    moments_update,
    moments_var,
    obgd,
)
from examples.streaming_rl.plot import mean_ci

# ---- ObGD ------------------------------------------------------------------------------------


def test_obgd_bounded_step_by_hand():
    # z = 0.5 * [0.5, -0.5] + [1, 0] = [1.25, -0.25], ||z||_1 = 1.5;
    # bound = alpha * kappa * max(|delta|, 1) * ||z||_1 = 1 * 2 * 2 * 1.5 = 6 > 1, so step = 1/6;
    # params += step * delta * z = (1/6) * 2 * [1.25, -0.25].
    params = {"w": jnp.array([1.0, 2.0])}
    trace = {"w": jnp.array([0.5, -0.5])}
    grads = {"w": jnp.array([1.0, 0.0])}
    new_params, new_trace, step = obgd(
        params, trace, grads, jnp.float32(2.0), alpha=1.0, kappa=2.0, decay=0.5
    )
    np.testing.assert_allclose(new_trace["w"], [1.25, -0.25], rtol=1e-6)
    np.testing.assert_allclose(step, 1.0 / 6.0, rtol=1e-6)
    np.testing.assert_allclose(new_params["w"], [1.0 + 2.5 / 6.0, 2.0 - 0.5 / 6.0], rtol=1e-6)


def test_obgd_small_trace_keeps_alpha():
    # bound = 0.1 * 1 * max(0.5, 1) * 0.1 = 0.01 < 1: the step is alpha itself, and
    # |delta| < 1 is replaced by 1 in the bound (a tiny error does not inflate the step).
    params = {"w": jnp.zeros(2), "b": jnp.ones(())}
    trace = jax.tree.map(jnp.zeros_like, params)
    grads = {"w": jnp.array([0.1, 0.0]), "b": jnp.zeros(())}
    new_params, new_trace, step = obgd(
        params, trace, grads, jnp.float32(0.5), alpha=0.1, kappa=1.0, decay=0.9
    )
    np.testing.assert_allclose(step, 0.1, rtol=1e-6)
    np.testing.assert_allclose(new_params["w"], [0.1 * 0.5 * 0.1, 0.0], rtol=1e-6)
    np.testing.assert_allclose(new_params["b"], 1.0)
    np.testing.assert_allclose(new_trace["w"], [0.1, 0.0])


def test_obgd_never_overshoots_a_linear_target():
    # For q = w . x with |x_i| <= 1 and a fresh trace z = x, the change in q is
    # step * delta * ||x||^2 <= step * |delta| * ||z||_1 <= |delta| / kappa: with kappa = 2 the
    # prediction moves at most half-way to the target, however large alpha is. Plain SGD with
    # alpha = 10 moves it up to 10 * 8 times too far, so a wrong bound fails here.
    key = jax.random.key(0)
    for k in jax.random.split(key, 20):
        kx, kd = jax.random.split(k)
        x = jax.random.uniform(kx, (8,), minval=-1.0, maxval=1.0)
        delta = 5.0 * jax.random.normal(kd)
        w = {"w": jnp.zeros(8)}
        new_w, _, _ = obgd(w, {"w": jnp.zeros(8)}, {"w": x}, delta, alpha=10.0, kappa=2.0, decay=0)
        change = jnp.dot(new_w["w"], x)
        assert float(jnp.sign(change)) == float(jnp.sign(delta))
        assert abs(float(change)) <= abs(float(delta)) / 2.0 + 1e-6


def test_welford_matches_numpy():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 3)).astype(np.float32)
    m = moments_init((3,))
    assert float(moments_var(m)[0]) == 1.0  # no data yet: the identity scaling
    for row in x:
        m = moments_update(m, jnp.asarray(row))
    np.testing.assert_allclose(m.mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(moments_var(m), x.var(0, ddof=1), rtol=1e-4)


# ---- the agent in CartPole -------------------------------------------------------------------


def _rollout(epsilon: float, steps: int = 60):
    env, env_params = gymnax.make("CartPole-v1")
    config = AgentConfig(hidden=(8,), epsilon_start=epsilon, epsilon_end=epsilon)
    agent = StreamQ(env, env_params, config)
    graphdef = agent.graphdef
    state = agent.init(jax.random.key(1), jnp.float32(0.5))

    @jax.jit
    def run(state):
        def body(s, _):
            new, out = agent.step(graphdef, s)
            trace_zero = jnp.all(jnp.stack([jnp.all(z == 0) for z in jax.tree.leaves(new.trace)]))
            return new, (trace_zero, out.done)

        return jax.lax.scan(body, state, None, length=steps)[1]

    zero, done = run(state)
    return np.asarray(zero), np.asarray(done)


def test_greedy_agent_keeps_its_trace_until_the_episode_ends():
    zero, done = _rollout(epsilon=0.0)
    np.testing.assert_array_equal(zero, done)
    assert done.any()  # an untrained CartPole agent fails well within 60 steps


def test_exploratory_actions_clear_the_trace():
    # epsilon = 1 with two actions: about half the actions differ from the greedy one and clear
    # the trace (Watkins). With 60 steps, a fraction outside [0.25, 0.8] has probability < 1e-3
    # for a correct agent; never clearing (0) or always clearing (1) fails.
    zero, done = _rollout(epsilon=1.0)
    assert zero[done].all()
    assert 0.25 < zero.mean() < 0.8


def test_mean_ci_uses_student_t():
    mean, half = mean_ci(np.array([[1.0, 10.0], [3.0, 10.0]]), axis=0)
    np.testing.assert_allclose(mean, [2.0, 10.0])
    # sd = sqrt(2), n = 2: half-width = 12.706 * sqrt(2) / sqrt(2).
    np.testing.assert_allclose(half, [12.706, 0.0], rtol=1e-6)


# ---- the sweep -------------------------------------------------------------------------------


def test_sweep_config_rejects_uneven_chunks():
    with pytest.raises(ValueError, match="num_chunks"):
        sweep.SweepConfig(total_steps=1000, num_chunks=3)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return sweep.main(["--quick", "--no-progress", "--out", str(out)])


def test_quick_mode_compiles_each_function_once(quick_run):
    # The quick run calls the chunk function QUICK["num_chunks"] (> 1) times.
    assert sweep.QUICK["num_chunks"] > 1
    assert quick_run["traces"] == {"init": 1, "chunk": 1}


def test_quick_mode_writes_figure_and_table(quick_run):
    figure, table = quick_run["figure"], quick_run["table"]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in table.read_text().splitlines() if line.startswith("| 0")]
    assert [row.split("|")[1].strip() for row in rows] == ["0", "0.5", "0.9"]
    # The zeros column reports the initial sparsity the library produced: none for the dense
    # baseline, at least the requested fraction (ceil rounding) for the others.
    zeros = [float(row.split("|")[2]) for row in rows]
    assert zeros[0] == 0.0
    assert 0.5 <= zeros[1] < 0.55
    assert 0.9 <= zeros[2] < 0.95
