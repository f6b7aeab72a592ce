"""The streaming-RL demo: ObGD by hand, Watkins trace resets, sticky actions, the conv layer,
the statistics, one compile, the quick runs, and sharded sweeps equal to unsharded ones."""

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import sparseinit
from examples.streaming_rl import envs, sweep
from examples.streaming_rl.agent import (
    AgentConfig,
    PatchConv,
    QNetwork,
    StreamQ,
    moments_init,
    moments_update,
    moments_var,
    obgd,
)
from examples.streaming_rl.plot import bootstrap_ci, bootstrap_difference, iqm

ROOT = Path(__file__).resolve().parents[1]

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


# ---- statistics ------------------------------------------------------------------------------


def test_iqm_ignores_one_collapsed_seed():
    x = np.array([480.0, 490.0, 500.0, 10.0])
    assert iqm(x) == 485.0  # the mean of the middle two; the mean is 370
    np.testing.assert_allclose(iqm(np.arange(8.0)), np.mean([2, 3, 4, 5]))
    np.testing.assert_allclose(iqm(np.array([1.0, 2.0, 3.0])), 2.0)  # fewer than 4: the mean


def test_bootstrap_interval_respects_the_bounds_of_the_data():
    # A Student-t interval of these returns reaches above 500; a percentile interval cannot.
    x = np.array([500.0, 500.0, 500.0, 500.0, 300.0, 500.0, 500.0, 500.0])
    value, low, high = bootstrap_ci(x)
    assert value == x.mean()
    assert 300.0 <= low < value < high <= 500.0
    # Along further axes (a learning curve: seeds x chunks) each column gets its own interval.
    value, low, high = bootstrap_ci(np.stack([x, x - 100.0], axis=1))
    assert value.shape == low.shape == high.shape == (2,)
    assert np.all(low <= value)
    assert np.all(value <= high)


def test_bootstrap_difference_separates_and_does_not_invent():
    rng = np.random.default_rng(0)
    a, b = rng.normal(10.0, 1.0, 10), rng.normal(0.0, 1.0, 10)
    _, low, high = bootstrap_difference(a, b)
    assert low > 5.0
    assert high < 15.0
    _, low, high = bootstrap_difference(a, rng.normal(10.0, 1.0, 10))
    assert low < 0.0 < high


# ---- MinAtar: sticky actions and the conv layer ---------------------------------------------


def test_sticky_actions_repeat_the_executed_action_with_probability_0_1():
    env, params = envs.make("Breakout-MinAtar")
    assert isinstance(env, envs.StickyActions)
    assert env.prob == 0.1
    _, state = env.reset_env(jax.random.key(0), params)
    assert int(state.last_action) == 0
    assert int(state.time) == 0

    @jax.jit
    def run(state, key):
        def body(s, k):
            k_act, k_env = jax.random.split(k)
            action = jax.random.randint(k_act, (), 0, 3)
            _, new, _, _, _ = env.step_env(k_env, s, action, params)
            return new, (action, s.last_action, new.last_action)

        return jax.lax.scan(body, state, jax.random.split(key, 4000))[1]

    chosen, previous, executed = map(np.asarray, run(state, jax.random.key(1)))
    # The executed action is always the agent's or the previous executed one.
    assert np.all((executed == chosen) | (executed == previous))
    # Repeats where the agent chose otherwise: 0.1 of the steps whose choice differs from the
    # previous action; with about 2,700 of them, [0.07, 0.13] fails with probability < 1e-5.
    differs = chosen != previous
    assert 0.07 < np.mean(executed[differs] == previous[differs]) < 0.13


def test_patch_conv_equals_a_valid_convolution_with_sparse_hwio_kernels():
    conv = PatchConv(4, 16, kernel_init=sparseinit.sparse(0.9), rngs=nnx.Rngs(0))
    kernel = conv.kernel[...]
    assert kernel.shape == (3, 3, 4, 16)  # Flax's HWIO
    # Fan-in 3 * 3 * 4 = 36: every output channel has ceil(0.9 * 36) = 33 zeros.
    np.testing.assert_array_equal((kernel == 0).reshape(36, 16).sum(axis=0), 33)
    x = jax.random.normal(jax.random.key(1), (10, 10, 4), jnp.float32)
    expected = jax.lax.conv_general_dilated(
        x[None], kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )[0]
    np.testing.assert_allclose(conv(x), expected, rtol=1e-5, atol=1e-6)


def test_minatar_network_is_the_published_one():
    net = QNetwork((10, 10, 4), 3, (128,), 0.9, conv=(16,), rngs=nnx.Rngs(0))
    assert net.convs[0].kernel[...].shape == (3, 3, 4, 16)
    assert net.layers[0].kernel[...].shape == (8 * 8 * 16, 128)
    assert net.head.kernel[...].shape == (128, 3)
    for layer, fan_in in [(net.layers[0], 1024), (net.head, 128)]:
        zeros = (layer.kernel[...] == 0).sum(axis=0)
        np.testing.assert_array_equal(zeros, int(np.ceil(0.9 * fan_in)))
    assert net(jnp.zeros(400)).shape == (3,)


def test_cartpole_first_layer_starts_at_zero_at_sparsity_0_9():
    # Fan-in 4: ceil(0.9 * 4) = 4 zeros per neuron, the whole input layer. The first update
    # moves the first layer's bias (its gradient passes through the parameter-free layer norm
    # of a constant input); from the second step on the kernel's gradient is non-zero too.
    env, env_params = gymnax.make("CartPole-v1")
    agent = StreamQ(env, env_params, AgentConfig())
    graphdef = agent.graphdef
    state = agent.init(jax.random.key(0), jnp.float32(0.9))
    assert not np.any(state.params["layers"][0]["kernel"][...])
    step = jax.jit(agent.step, static_argnums=0)
    state, _ = step(graphdef, state)
    assert np.any(state.params["layers"][0]["bias"][...])
    state, _ = step(graphdef, state)
    assert np.all(state.params["layers"][0]["kernel"][...] != 0)


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
    assert (figure.parent / "returns.npz").exists()
    rows = [line for line in table.read_text().splitlines() if line.startswith("| 0")]
    assert [row.split("|")[1].strip() for row in rows] == ["0", "0.5", "0.9"]
    # The zeros column reports the initial sparsity the library produced: none for the dense
    # baseline, at least the requested fraction (ceil rounding) for the others.
    zeros = [float(row.split("|")[2]) for row in rows]
    assert zeros[0] == 0.0
    assert 0.5 <= zeros[1] < 0.55
    assert 0.9 <= zeros[2] < 0.95
    # At 0.9 every first-layer neuron of CartPole's network starts with no input.
    assert [row.split("|")[3].strip() for row in rows] == ["0%", "0%", "100%"]
    assert "agent-steps/s" in table.read_text()


def test_default_outputs_are_untracked():
    assert sweep.default_output("CartPole-v1") == Path("results/cartpole")
    assert sweep.default_output("Breakout-MinAtar") == Path("results/minatar/breakout")
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/results/" in ignored


def test_minatar_config_follows_the_published_script():
    config = sweep.config_from_args(sweep.parse_args(["--env", "SpaceInvaders-MinAtar"]))
    a = config.agent
    assert (a.conv, a.hidden, a.alpha, a.kappa, a.lamb, a.gamma) == ((16,), (128,), 1, 2, 0.8, 0.99)
    assert (a.epsilon_start, a.epsilon_end) == (1.0, 0.01)
    assert a.explore_steps == config.total_steps // 5  # 20% of the steps run
    assert config.sparsities == (0.0, 0.9)
    assert config.num_seeds >= 4


@pytest.fixture(scope="module")
def quick_minatar(tmp_path_factory):
    out = tmp_path_factory.mktemp("minatar")
    return sweep.main(["--env", "Breakout-MinAtar", "--quick", "--no-progress", "--out", str(out)])


@pytest.mark.slow
def test_minatar_quick_mode(quick_minatar):
    assert quick_minatar["traces"] == {"init": 1, "chunk": 1}
    text = quick_minatar["table"].read_text()
    assert "Breakout-MinAtar" in text
    assert "of the paper's 5M" in text
    rows = [line for line in text.splitlines() if line.startswith("| 0")]
    assert [row.split("|")[1].strip() for row in rows] == ["0", "0.9"]
    assert float(rows[1].split("|")[2]) >= 0.9
    assert quick_minatar["results"]["episodes"].sum(axis=-1).min() > 0  # every agent ends episodes


# ---- sharding --------------------------------------------------------------------------------


def _sharded_run(env_id: str, seeds: int, steps: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    env.pop("XLA_FLAGS", None)
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "demo_sharding_worker.py"),
            env_id,
            str(seeds),
            str(steps),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, f"the worker failed:\n{out.stderr[-4000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check_sharded(report: dict, agents: int, *, bitwise: bool = True) -> None:
    assert report["jax_devices"] == 8
    one, eight = report["runs"]
    assert one["devices"] == 1
    assert eight["devices"] == 8
    assert eight["spec"] == "P('agents',)"
    assert eight["agents"] == agents
    assert eight["padded_agents"] % 8 == 0
    assert one["traces"] == eight["traces"] == {"init": 1, "chunk": 1}
    assert one["episodes"] > 0
    assert eight["identical_outputs"]
    if bitwise and report["fusion_emitters_off"]:
        assert eight["identical_params"]
    else:
        # The MinAtar network's layer norm over a feature map sums in an order XLA's CPU code
        # picks by batch size, and from jaxlib 0.11 the fusion emitters cannot be switched off
        # (see the worker): the same parameters up to float32 rounding.
        assert eight["max_relative_param_difference"] < 1e-5


def test_sharded_sweep_equals_unsharded_on_8_devices():
    # 9 agents over 8 devices: padded to 16, two per device. Bit for bit where the worker can
    # switch XLA's CPU fusion emitters off.
    _check_sharded(_sharded_run("CartPole-v1", 3, 400), agents=9)


@pytest.mark.slow
def test_sharded_minatar_sweep_matches_unsharded_on_8_devices():
    _check_sharded(_sharded_run("Breakout-MinAtar", 3, 400), agents=6, bitwise=False)
