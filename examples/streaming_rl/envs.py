"""The demo's environments: gymnax's, with MinAtar's sticky actions added.

MinAtar (Young and Tian, 2019) repeats the previous action with probability 0.1 in place of the
agent's ("sticky actions"), so that a deterministic game cannot be solved by memorising an
action sequence. gymnax 1.0.1 implements the MinAtar games without it (its ``EnvParams`` have no
sticky-action field); :class:`StickyActions` adds it, as MinAtar does: the repeated action is
the one the environment executed last, and a reset makes it action 0.

References:
    Young and Tian (2019). MinAtar: An Atari-Inspired Testbed for Thorough and Reproducible
    Reinforcement Learning Experiments. arXiv:1903.03176.
"""

import dataclasses
from typing import Any

import gymnax
import jax
import jax.numpy as jnp
from flax import struct

#: The MinAtar games the demo selects by name; gymnax's ids.
MINATAR = ("Breakout-MinAtar", "Asterix-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar")

#: MinAtar's default probability of repeating the previous action.
STICKY_ACTION_PROB = 0.1


@struct.dataclass
class StickyState:
    """The wrapped environment's state and the action it executed last."""

    env_state: Any
    last_action: jax.Array

    @property
    def time(self) -> jax.Array:
        """Steps since the episode's reset, as the wrapped environment counts them."""
        return self.env_state.time


@dataclasses.dataclass(frozen=True)
class StickyActions:
    """A gymnax environment that executes its previous action with probability ``prob``.

    Only what the agent uses is provided: ``reset_env``, ``step_env``, ``observation_space``
    and ``action_space``, with gymnax's signatures.

    Attributes:
        env: a gymnax environment with a discrete action space.
        prob: the probability of repeating the previous action.
    """

    env: Any
    prob: float = STICKY_ACTION_PROB

    def reset_env(self, key: jax.Array, params: Any) -> tuple[jax.Array, StickyState]:
        obs, state = self.env.reset_env(key, params)
        return obs, StickyState(state, jnp.zeros((), jnp.int32))

    def step_env(
        self, key: jax.Array, state: StickyState, action: jax.Array, params: Any
    ) -> tuple[jax.Array, StickyState, jax.Array, jax.Array, dict[str, Any]]:
        k_sticky, k_env = jax.random.split(key)
        sticky = jax.random.uniform(k_sticky) < self.prob
        executed = jnp.where(sticky, state.last_action, action).astype(jnp.int32)
        obs, env_state, reward, done, info = self.env.step_env(
            k_env, state.env_state, executed, params
        )
        return obs, StickyState(env_state, executed), reward, done, info

    def observation_space(self, params: Any) -> Any:
        return self.env.observation_space(params)

    def action_space(self, params: Any) -> Any:
        return self.env.action_space(params)


def is_minatar(env_id: str) -> bool:
    return env_id.endswith("-MinAtar")


def make(env_id: str) -> tuple[Any, Any]:
    """An environment and its default parameters from gymnax; MinAtar games get sticky actions.

    MinAtar games use gymnax's minimal action set (its default), as the paper does.
    """
    env, params = gymnax.make(env_id)
    if is_minatar(env_id):
        env = StickyActions(env)
    return env, params
