"""A streaming Q(lambda) agent: one transition at a time, no replay buffer, no target network.

The agent follows Stream Q(lambda) of Elsayed, Vasan and Mahmood (2024): a small MLP (or, for
MinAtar, a 3x3 convolution before it) with parameter-free layer normalisation and LeakyReLU,
every kernel drawn by
:func:`sparseinit.sparse`, trained online with eligibility traces and the overshooting-bounded
step size (ObGD). Observations are normalised by running moments and rewards are scaled by a
running estimate of the standard deviation of the discounted return.

Traces follow Watkins' Q(lambda): they are cleared when the episode ends and after an
exploratory (non-greedy) action, because the greedy target policy would not have taken it.

Everything here is a pure function of an :class:`AgentState`, so a whole population of agents
(sparsities x seeds) runs under one ``vmap`` and one ``lax.scan``.

References:
    Elsayed, Vasan and Mahmood (2024). Streaming Deep Reinforcement Learning Finally Works.
    arXiv:2410.14606.
"""

import dataclasses
import itertools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

import sparseinit


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Hyper-parameters of the agent; hashable, so it can close over a jitted function.

    Attributes:
        hidden: widths of the hidden dense layers.
        conv: channels of the convolutional layers before them (3x3, valid padding, stride 1,
            each followed by parameter-free layer normalisation over the whole feature map and
            LeakyReLU); empty for a multilayer perceptron on the flattened observation.
        gamma: discount factor.
        lamb: trace-decay parameter lambda.
        alpha: base step size of ObGD.
        kappa: ObGD's safety factor; larger means smaller effective steps.
        epsilon_start: exploration rate at step 0.
        epsilon_end: exploration rate once the schedule has finished.
        explore_steps: steps over which epsilon decays linearly.
        eps: added to variances before taking a square root.
    """

    hidden: tuple[int, ...] = (64, 64)
    conv: tuple[int, ...] = ()
    gamma: float = 0.99
    lamb: float = 0.8
    alpha: float = 1.0
    kappa: float = 2.0
    epsilon_start: float = 1.0
    epsilon_end: float = 0.01
    explore_steps: int = 10_000
    eps: float = 1e-8


class PatchConv(nnx.Module):
    """A 3x3 convolution with valid padding and stride 1 of one ``(height, width, channels)`` image.

    The kernel is Flax's ``(3, 3, in, out)`` (HWIO), so every output channel has fan-in
    ``9 * in``, exactly as for ``nnx.Conv``; the result equals ``nnx.Conv(in, out, (3, 3),
    padding="VALID")`` up to float rounding. It is computed as one matrix product of the
    image's 3x3 patches with the kernel reshaped to ``(9 * in, out)``: under ``vmap`` over a
    population of agents, each with its own kernel, XLA's CPU backend runs that about twice as
    fast as a batched convolution.
    """

    def __init__(self, in_features: int, out_features: int, *, kernel_init: Any, rngs: nnx.Rngs):
        shape = (3, 3, in_features, out_features)
        self.kernel = nnx.Param(kernel_init(rngs.params(), shape, jnp.float32))
        self.bias = nnx.Param(jnp.zeros((out_features,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        height, width, channels = x.shape
        rows, cols = height - 2, width - 2
        # (rows, cols, 9, channels), the 9 offsets in the kernel's (i, j) row-major order.
        patches = jnp.stack(
            [x[i : i + rows, j : j + cols] for i in range(3) for j in range(3)], axis=-2
        )
        kernel = self.kernel[...].reshape(9 * channels, -1)
        return patches.reshape(rows, cols, 9 * channels) @ kernel + self.bias[...]


class QNetwork(nnx.Module):
    """Optional conv layers, then Linear -> LayerNorm -> LeakyReLU per hidden layer, then a head.

    Each convolution is 3x3 with valid padding, followed by a parameter-free layer
    normalisation over the whole feature map (height, width and channels together, as the
    published reference normalises a single sample) and LeakyReLU; its output is flattened.
    Every kernel (conv, hidden and head) is drawn by ``sparseinit.sparse(sparsity)``: a Flax
    conv kernel is ``(3, 3, in, out)`` (HWIO), so each output channel has ``9 * in`` inputs and
    ``ceil(sparsity * 9 * in)`` of them start at zero. Biases start at zero. ``sparsity`` may
    be a traced scalar, so one compiled function builds every network of a sweep.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        hidden: tuple[int, ...],
        sparsity: Any,
        *,
        conv: tuple[int, ...] = (),
        rngs: nnx.Rngs,
    ):
        kernel_init = sparseinit.sparse(sparsity)
        self.obs_shape = tuple(obs_shape)
        if conv and len(self.obs_shape) != 3:
            raise ValueError(
                f"QNetwork: conv layers need (height, width, channels) observations, "
                f"got shape {self.obs_shape}"
            )
        channels = (self.obs_shape[-1], *conv) if conv else ()
        self.convs = nnx.List(
            [
                PatchConv(c_in, c_out, kernel_init=kernel_init, rngs=rngs)
                for c_in, c_out in itertools.pairwise(channels)
            ]
        )
        self.conv_norms = nnx.List(
            [
                nnx.LayerNorm(
                    c,
                    reduction_axes=(-3, -2, -1),
                    feature_axes=-1,
                    use_scale=False,
                    use_bias=False,
                    rngs=rngs,
                )
                for c in conv
            ]
        )
        if conv:
            height, width = (d - 2 * len(conv) for d in self.obs_shape[:2])
            flat = height * width * conv[-1]
        else:
            flat = math.prod(self.obs_shape)
        sizes = (flat, *hidden)
        self.layers = nnx.List(
            [
                nnx.Linear(n_in, n_out, kernel_init=kernel_init, rngs=rngs)
                for n_in, n_out in itertools.pairwise(sizes)
            ]
        )
        self.norms = nnx.List(
            [nnx.LayerNorm(n, use_scale=False, use_bias=False, rngs=rngs) for n in hidden]
        )
        self.head = nnx.Linear(sizes[-1], num_actions, kernel_init=kernel_init, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Q-values of one observation, given flat or in its own shape."""
        if len(self.convs):
            x = x.reshape(self.obs_shape)
            for conv, norm in zip(self.convs, self.conv_norms, strict=True):
                x = jax.nn.leaky_relu(norm(conv(x)))
        x = x.reshape(-1)
        for layer, norm in zip(self.layers, self.norms, strict=True):
            x = jax.nn.leaky_relu(norm(layer(x)))
        return self.head(x)


# ---- running statistics --------------------------------------------------------------------


class Moments(NamedTuple):
    """Welford's running count, mean and sum of squared deviations."""

    count: jax.Array
    mean: jax.Array
    m2: jax.Array


def moments_init(shape: tuple[int, ...] = ()) -> Moments:
    return Moments(jnp.zeros((), jnp.float32), jnp.zeros(shape), jnp.zeros(shape))


def moments_update(m: Moments, x: jax.Array) -> Moments:
    count = m.count + 1.0
    delta = x - m.mean
    mean = m.mean + delta / count
    return Moments(count, mean, m.m2 + delta * (x - mean))


def moments_var(m: Moments) -> jax.Array:
    # The unbiased sample variance; 1 until there are two samples, so the first observations
    # and rewards pass through unscaled instead of being divided by sqrt(eps).
    return jnp.where(m.count >= 2.0, m.m2 / jnp.maximum(m.count - 1.0, 1.0), 1.0)


def normalize(m: Moments, x: jax.Array, eps: float) -> jax.Array:
    return (x - m.mean) / jnp.sqrt(moments_var(m) + eps)


# ---- ObGD ------------------------------------------------------------------------------------


def obgd(
    params: Any,
    trace: Any,
    grads: Any,
    delta: jax.Array,
    *,
    alpha: float,
    kappa: float,
    decay: float,
) -> tuple[Any, Any, jax.Array]:
    """One overshooting-bounded step along an eligibility trace.

    The trace decays and accumulates the gradient, ``z = decay * z + grad``; the step size is
    ``alpha / max(1, alpha * kappa * max(|delta|, 1) * ||z||_1)``, the largest that cannot
    overshoot the TD target by the bound derived in the paper; then
    ``params = params + step * delta * z`` (ascent: ``grads`` is the gradient of the value).

    Args:
        params: the parameters, any pytree.
        trace: the eligibility trace, same structure as ``params``.
        grads: the gradient of the predicted value at the taken action.
        delta: the TD error, a scalar.
        alpha: base step size.
        kappa: safety factor.
        decay: ``gamma * lambda``.

    Returns:
        ``(params, trace, step)``: the updated parameters and trace and the step size used.
    """
    trace = jax.tree.map(lambda z, g: decay * z + g, trace, grads)
    z_norm = sum(jnp.sum(jnp.abs(z)) for z in jax.tree.leaves(trace))
    bound = alpha * kappa * jnp.maximum(jnp.abs(delta), 1.0) * z_norm
    step = alpha / jnp.maximum(bound, 1.0)
    params = jax.tree.map(lambda p, z: p + step * delta * z, params, trace)
    return params, trace, step


# ---- the agent in an environment -------------------------------------------------------------


class AgentState(NamedTuple):
    """Everything one agent carries from one transition to the next."""

    params: Any
    trace: Any
    obs_moments: Moments
    return_moments: Moments
    discounted_return: jax.Array
    env_state: Any
    obs: jax.Array
    episode_return: jax.Array
    step: jax.Array
    key: jax.Array


class Transition(NamedTuple):
    """What one step reports: whether an episode ended and its undiscounted return."""

    done: jax.Array
    episode_return: jax.Array


def tree_where(cond: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


@dataclasses.dataclass(frozen=True)
class StreamQ:
    """Stream Q(lambda) for one gymnax environment.

    Attributes:
        env: a gymnax environment with a discrete action space.
        env_params: its parameters.
        config: the agent's hyper-parameters.
    """

    env: Any
    env_params: Any
    config: AgentConfig

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(self.env.observation_space(self.env_params).shape)

    @property
    def num_actions(self) -> int:
        return int(self.env.action_space(self.env_params).n)

    def network(self, sparsity: Any, key: jax.Array) -> QNetwork:
        c = self.config
        return QNetwork(
            self.obs_shape, self.num_actions, c.hidden, sparsity, conv=c.conv, rngs=nnx.Rngs(key)
        )

    @property
    def graphdef(self) -> Any:
        """The network's static structure; the same for every sparsity and key."""
        graphdef, _ = nnx.split(nnx.eval_shape(lambda: self.network(0.0, jax.random.key(0))))
        return graphdef

    def q_values(self, graphdef: Any, params: Any, obs: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params)(obs)

    def init(self, key: jax.Array, sparsity: jax.Array) -> AgentState:
        """A fresh agent: sparse network, empty trace and statistics, a reset environment."""
        k_net, k_env, k_run = jax.random.split(key, 3)
        _, params = nnx.split(self.network(sparsity, k_net))
        raw_obs, env_state = self.env.reset_env(k_env, self.env_params)
        raw_obs = raw_obs.reshape(-1).astype(jnp.float32)
        obs_moments = moments_update(moments_init(raw_obs.shape), raw_obs)
        state = AgentState(
            params=params,
            trace=jax.tree.map(jnp.zeros_like, params),
            obs_moments=obs_moments,
            return_moments=moments_init(),
            discounted_return=jnp.zeros(()),
            env_state=env_state,
            obs=normalize(obs_moments, raw_obs, self.config.eps),
            episode_return=jnp.zeros(()),
            step=jnp.zeros((), jnp.int32),
            key=k_run,
        )
        # Python scalars in an environment's reset (CartPole's ``time=0``) are weakly typed;
        # make every leaf strongly typed so that the state returned by a step has the same
        # types and a jitted chunk of steps is not traced twice.
        return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), state)

    def epsilon(self, step: jax.Array) -> jax.Array:
        c = self.config
        frac = jnp.clip(step / max(c.explore_steps, 1), 0.0, 1.0)
        return c.epsilon_start + frac * (c.epsilon_end - c.epsilon_start)

    def step(self, graphdef: Any, s: AgentState) -> tuple[AgentState, Transition]:
        """Acts, observes one transition, learns from it, and resets the episode if it ended."""
        c = self.config
        key, k_explore, k_random, k_env, k_reset = jax.random.split(s.key, 5)

        q, q_vjp = jax.vjp(lambda p: self.q_values(graphdef, p, s.obs), s.params)
        greedy = jnp.argmax(q)
        explore = jax.random.uniform(k_explore) < self.epsilon(s.step)
        action = jnp.where(explore, jax.random.randint(k_random, (), 0, q.shape[0]), greedy)
        (grads,) = q_vjp(jax.nn.one_hot(action, q.shape[0], dtype=q.dtype))

        raw_next, env_next, reward, env_done, _ = self.env.step_env(
            k_env, s.env_state, action, self.env_params
        )
        reward = reward.astype(jnp.float32)
        # Time-limit truncation is not termination: the target still bootstraps from s'.
        truncated = env_next.time >= self.env_params.max_steps_in_episode
        done = jnp.logical_or(env_done, truncated)
        terminated = jnp.logical_and(env_done, jnp.logical_not(truncated))

        raw_next = raw_next.reshape(-1).astype(jnp.float32)
        obs_moments = moments_update(s.obs_moments, raw_next)
        next_obs = normalize(obs_moments, raw_next, c.eps)

        discounted_return = c.gamma * s.discounted_return + reward
        return_moments = moments_update(s.return_moments, discounted_return)
        scaled_reward = reward / jnp.sqrt(moments_var(return_moments) + c.eps)

        q_next = self.q_values(graphdef, s.params, next_obs)
        target = scaled_reward + c.gamma * (1.0 - terminated) * jnp.max(q_next)
        delta = jax.lax.stop_gradient(target) - q[action]
        params, trace, _ = obgd(
            s.params, s.trace, grads, delta, alpha=c.alpha, kappa=c.kappa, decay=c.gamma * c.lamb
        )
        reset_trace = jnp.logical_or(done, action != greedy)
        trace = jax.tree.map(lambda z: jnp.where(reset_trace, 0.0, z), trace)

        episode_return = s.episode_return + reward
        raw_reset, env_reset = self.env.reset_env(k_reset, self.env_params)
        raw_reset = raw_reset.reshape(-1).astype(jnp.float32)
        reset_moments = moments_update(obs_moments, raw_reset)
        obs_after = tree_where(done, normalize(reset_moments, raw_reset, c.eps), next_obs)
        new_state = AgentState(
            params=params,
            trace=trace,
            obs_moments=tree_where(done, reset_moments, obs_moments),
            return_moments=return_moments,
            discounted_return=jnp.where(done, 0.0, discounted_return),
            env_state=tree_where(done, env_reset, env_next),
            obs=obs_after,
            episode_return=jnp.where(done, 0.0, episode_return),
            step=s.step + 1,
            key=key,
        )
        # With JAX_ENABLE_X64 the environment and Python scalars promote to float64; keep every
        # leaf at its initial dtype so the state is a fixed point of ``lax.scan``'s carry.
        new_state = jax.tree.map(lambda new, old: new.astype(old.dtype), new_state, s)
        return new_state, Transition(done=done, episode_return=episode_return)
