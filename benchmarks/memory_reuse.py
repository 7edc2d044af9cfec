"""Rolling long paths with and without glibc keeping freed memory (utils/memory.py).

    python benchmarks/memory_reuse.py --checkpoint RUN                 # 64 paths of 450 returns
    python benchmarks/memory_reuse.py --checkpoint RUN --n 32 --length 700 --repeats 2

RUN is a context model (trained with CONTEXT_FRACTIONS). Each run is a fresh Python
process that samples the same paths with ``generate.Generator.long_paths`` (first
windows, then rolled ones), once with glibc's defaults and once after
``utils.memory.keep_freed_memory()`` (which generate.py calls), alternating. It
prints wall, user and system seconds per run and the ratio of the medians, and
checks that both give the same paths bit for bit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np, torch
from utils.memory import keep_freed_memory
if {keep}:
    assert keep_freed_memory(), "glibc did not take the settings"
import generate
gen = generate.load({checkpoint!r})
plan = gen.plan(generate.SampleOptions(n={n}, batch_size={n}, progress=False))
start, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
paths = gen.long_paths(plan, {length})
after = resource.getrusage(resource.RUSAGE_SELF)
np.save({out!r}, paths)
print(json.dumps({{"wall": time.perf_counter() - start, "user": after.ru_utime - usage.ru_utime,
                  "sys": after.ru_stime - usage.ru_stime}}))
"""


def run_once(args: argparse.Namespace, keep: bool, out: Path) -> dict[str, float]:
    """One fresh process sampling the paths; its timings."""
    code = CHILD.format(root=str(ROOT), keep=keep, checkpoint=str(args.checkpoint), n=args.n,
                        length=args.length, out=str(out))  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the sampling process failed:\n{done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--checkpoint", type=Path, required=True, help="a context model's run or step folder"
    )
    p.add_argument("--n", type=int, default=64, help="paths, sampled in one batch (default 64)")
    p.add_argument(
        "--length", type=int, default=450, help="returns a path (default 450: 4 windows)"
    )
    p.add_argument("--repeats", type=int, default=1, help="runs of each setting (default 1)")
    args = p.parse_args(argv)
    times: dict[str, list[dict[str, float]]] = {"default": [], "keep freed": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, keep in (("default", False), ("keep freed", True)):
                t = run_once(args, keep, Path(tmp) / f"{keep}.npy")
                times[name].append(t)
                print(f"{name:10s} run {r + 1}: wall {t['wall']:.1f} s, user {t['user']:.1f} s, "
                      f"sys {t['sys']:.1f} s", flush=True)  # fmt: skip
        same = np.array_equal(np.load(Path(tmp) / "False.npy"), np.load(Path(tmp) / "True.npy"))
    walls = {k: float(np.median([t["wall"] for t in v])) for k, v in times.items()}
    print(f"median wall: default {walls['default']:.1f} s, keep freed {walls['keep freed']:.1f} s "
          f"({walls['keep freed'] / walls['default']:.2f}x); same paths: {same}")  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
