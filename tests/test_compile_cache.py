"""The Performance page's compile-cache recipe keeps an initializer's program across processes.

JAX writes nothing to its persistent cache for a program that compiled in less than
``jax_persistent_cache_min_compile_time_secs`` (1 s by default), which an initializer's program
usually does, so ``jax_compilation_cache_dir`` alone caches none. The page gives the settings
that do; these tests run that very block in two fresh processes sharing a cache directory: the
first writes entries, the second reads them back (JAX's monitoring event
``/jax/compilation_cache/cache_hits``) and gets the same weights.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "performance.md"
PLACEHOLDER = '"/tmp/jax-cache"'

# After the recipe: count the cache's hits and misses while the initializer is first called.
CALL = """
import hashlib
import json

import numpy as np
import sparseinit

events = {"hits": 0, "misses": 0}


def count(event, **kwargs):
    if event == "/jax/compilation_cache/cache_hits":
        events["hits"] += 1
    elif event == "/jax/compilation_cache/cache_misses":
        events["misses"] += 1


jax.monitoring.register_event_listener(count)
w = sparseinit.sparse(0.9)(jax.random.key(0), (784, 256))
events["zeros"] = sorted(set((np.asarray(w) == 0).sum(axis=0).tolist()))
events["digest"] = hashlib.sha256(np.asarray(w).tobytes()).hexdigest()
print(json.dumps(events))
"""


def recipe() -> str:
    """The Python block of the Performance page that sets the compilation cache."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    found = [b for b in blocks if "jax_compilation_cache_dir" in b]
    assert len(found) == 1, "the Performance page should have one compile-cache recipe"
    return found[0]


def run_fresh(code: str) -> dict:
    """Runs ``code`` in a fresh interpreter and returns the JSON it prints last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_recipe_sets_what_makes_jax_write_small_programs():
    code = recipe()
    for setting in (
        "jax_compilation_cache_dir",
        '"jax_persistent_cache_min_compile_time_secs", 0',
        '"jax_persistent_cache_min_entry_size_bytes", -1',
    ):
        assert setting in code, setting
    import jax

    # The names are this JAX's own: a misspelt option would make jax.config.update raise.
    for name in re.findall(r'jax\.config\.update\("(\w+)"', code):
        assert name in jax.config.values, name


def test_second_process_reads_what_the_first_wrote(tmp_path):
    code = recipe()
    assert PLACEHOLDER in code, f"the recipe's directory is no longer {PLACEHOLDER}"
    program = code.replace(PLACEHOLDER, repr(str(tmp_path))) + CALL

    first = run_fresh(program)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written, "the first process wrote nothing to the cache"
    assert first["hits"] == 0
    assert first["misses"] > 0
    assert first["zeros"] == [706]

    second = run_fresh(program)
    assert second["hits"] > 0, "the second process did not read the cache"
    assert second["misses"] == 0, "the second process compiled again"
    assert second["digest"] == first["digest"]  # the cached program gives the same weights
