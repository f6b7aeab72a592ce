"""Sparsity x seeds, Stream Q(lambda) on a gymnax environment, as one compiled sweep.

Every agent of the sweep (each sparsity paired with each seed) is built by one jitted, vmapped
function that takes the sparsity as a traced argument, and runs by one jitted, vmapped
``lax.scan`` over a chunk of steps; both compile once. The host loop only advances the progress
bar between chunks and collects the returns of finished episodes.

Run from the repository root::

    python -m examples.streaming_rl.sweep            # the full run, results/ (a few minutes)
    python -m examples.streaming_rl.sweep --quick    # a smoke run (well under a minute)
"""

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from examples.streaming_rl.agent import AgentConfig, AgentState, StreamQ
from examples.streaming_rl.plot import plot_curves, write_table


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """What the sweep runs.

    Attributes:
        env_name: a gymnax environment id with discrete actions.
        sparsities: the initial sparsities compared; 0.0 is the dense baseline.
        num_seeds: seeds per sparsity; seed ``i`` uses the same key at every sparsity.
        total_steps: environment steps per agent.
        num_chunks: the scan is cut into this many jitted chunks (one progress-bar tick and
            one point of the learning curve each); must divide ``total_steps``.
        final_fraction: the last fraction of chunks whose episodes make the final return.
        seed: the root seed.
        agent: the agent's hyper-parameters.
    """

    env_name: str = "CartPole-v1"
    sparsities: tuple[float, ...] = (0.0, 0.5, 0.9)
    num_seeds: int = 10
    total_steps: int = 100_000
    num_chunks: int = 100
    final_fraction: float = 0.1
    seed: int = 0
    agent: AgentConfig = dataclasses.field(default_factory=AgentConfig)

    def __post_init__(self) -> None:
        if self.total_steps <= 0 or self.num_chunks <= 0:
            raise ValueError(
                f"total_steps and num_chunks must be positive, got {self.total_steps} "
                f"and {self.num_chunks}"
            )
        if self.total_steps % self.num_chunks:
            raise ValueError(
                f"num_chunks must divide total_steps, got num_chunks={self.num_chunks} "
                f"and total_steps={self.total_steps}"
            )
        if self.num_seeds < 2:
            raise ValueError(f"num_seeds must be at least 2 for an interval, got {self.num_seeds}")

    @property
    def chunk_steps(self) -> int:
        return self.total_steps // self.num_chunks


class Sweep:
    """The compiled pieces of a sweep: ``init`` builds every agent, ``chunk`` advances them all.

    ``traces`` counts how often each function was traced; a sweep of any length should trace
    each exactly once.
    """

    def __init__(self, config: SweepConfig):
        self.config = config
        env, env_params = gymnax.make(config.env_name)
        self.agent = StreamQ(env, env_params, config.agent)
        self.graphdef = self.agent.graphdef
        self.traces = {"init": 0, "chunk": 0}
        self.init = jax.jit(self._init)
        self.chunk = jax.jit(self._chunk, donate_argnums=0)

    def _init(self, keys: jax.Array, sparsities: jax.Array) -> AgentState:
        self.traces["init"] += 1
        return jax.vmap(self.agent.init)(keys, sparsities)

    def _chunk(self, states: AgentState) -> tuple[AgentState, jax.Array, jax.Array]:
        """Runs ``chunk_steps`` transitions of every agent.

        Returns:
            The new states, and per agent the sum and the number of episodic returns of the
            episodes that ended in this chunk.
        """
        self.traces["chunk"] += 1

        def one_agent(state: AgentState) -> tuple[AgentState, jax.Array, jax.Array]:
            def body(s: AgentState, _: None) -> tuple[AgentState, Any]:
                return self.agent.step(self.graphdef, s)

            state, out = jax.lax.scan(body, state, None, length=self.config.chunk_steps)
            done = out.done.astype(jnp.float32)
            return state, jnp.sum(done * out.episode_return), jnp.sum(done)

        return jax.vmap(one_agent)(states)

    def agents(self) -> tuple[jax.Array, jax.Array]:
        """The sweep's grid: a key and a sparsity per agent, sparsity-major."""
        c = self.config
        seed_keys = jax.random.split(jax.random.key(c.seed), c.num_seeds)
        keys = jnp.tile(seed_keys, len(c.sparsities))
        sparsities = jnp.repeat(jnp.asarray(c.sparsities, jnp.float32), c.num_seeds)
        return keys, sparsities

    def run(self, progress: bool = True) -> dict[str, np.ndarray]:
        """Runs the whole sweep.

        Returns:
            ``returns_sum`` and ``episodes``, each ``(num_sparsities, num_seeds, num_chunks)``,
            ``init_zero_fraction`` ``(num_sparsities, num_seeds)``, and ``steps``, the step
            count at the end of each chunk.
        """
        c = self.config
        keys, sparsities = self.agents()
        states = self.init(keys, sparsities)
        kernels = [
            leaf
            for path, leaf in jax.tree_util.tree_leaves_with_path(states.params)
            if "kernel" in jax.tree_util.keystr(path)
        ]
        zeros = sum(np.asarray(jnp.sum(k == 0, axis=(1, 2))) for k in kernels)
        total = sum(int(np.prod(k.shape[1:])) for k in kernels)
        sums, counts = [], []
        bar = tqdm(range(c.num_chunks), disable=not progress, unit="chunk", file=sys.stderr)
        for _ in bar:
            states, chunk_sum, chunk_count = self.chunk(states)
            sums.append(np.asarray(chunk_sum))
            counts.append(np.asarray(chunk_count))
            recent = np.asarray(chunk_sum) / np.maximum(np.asarray(chunk_count), 1)
            by_sparsity = recent.reshape(len(c.sparsities), c.num_seeds).mean(axis=1)
            bar.set_postfix(
                {f"s={s:g}": f"{r:.0f}" for s, r in zip(c.sparsities, by_sparsity, strict=True)}
            )
        shape = (len(c.sparsities), c.num_seeds, c.num_chunks)
        return {
            "returns_sum": np.stack(sums, axis=-1).reshape(shape),
            "episodes": np.stack(counts, axis=-1).reshape(shape),
            "init_zero_fraction": (zeros / total).reshape(shape[:2]),
            "steps": c.chunk_steps * np.arange(1, c.num_chunks + 1),
        }


QUICK = {"num_seeds": 2, "total_steps": 4_000, "num_chunks": 4}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run for CI")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output directory")
    parser.add_argument("--env", default="CartPole-v1", help="gymnax environment id")
    parser.add_argument("--steps", type=int, default=None, help="steps per agent")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per sparsity")
    parser.add_argument("--chunks", type=int, default=None, help="jitted chunks (curve points)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    overrides: dict[str, Any] = dict(QUICK) if args.quick else {}
    overrides["env_name"] = args.env
    if args.steps is not None:
        overrides["total_steps"] = args.steps
    if args.seeds is not None:
        overrides["num_seeds"] = args.seeds
    if args.chunks is not None:
        overrides["num_chunks"] = args.chunks
    return SweepConfig(**overrides)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the sweep and writes the figure and the table.

    Returns:
        The paths of the ``figure`` and the ``table``, and the ``traces`` count of each
        compiled function.
    """
    args = parse_args(argv)
    config = config_from_args(args)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    sweep = Sweep(config)
    results = sweep.run(progress=not args.no_progress)
    seconds = time.perf_counter() - start
    figure = plot_curves(results, config, args.out / "learning_curves.png")
    table = write_table(results, config, args.out / "final_returns.md", seconds=seconds)
    print(table.read_text())
    print(f"figure: {figure}\ntable: {table}\nwall time: {seconds:.0f} s")
    return {"figure": figure, "table": table, "traces": dict(sweep.traces)}


if __name__ == "__main__":
    main()
