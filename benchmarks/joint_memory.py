"""Training memory of a joint model by number of series, at a preset's size.

    python benchmarks/joint_memory.py                        # gpu preset, 1, 2 and 10 series
    python benchmarks/joint_memory.py --preset cpu --assets 1 2 3 --batches 8 16

A joint model puts each series' scalogram in channels of one image, so only the
UNet's first and last convolutions and the images grow with the number of series.
For each count A and batch size B a fresh Python process (so that peaks do not
mix) builds the preset's UNet with A input and output channels and runs one
training step (forward, backward, AdamW) in float32 on the CPU; it reports the
growth of the process's peak resident memory over that step (the kernel's
high-water mark). Two batch sizes give a per-window slope, from which the step's
memory at the preset's BATCH_SIZE is extrapolated (what one GPU would hold in
float32; bf16 autocast stores some activations at half the size).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(preset: str, n_assets: int, batch: int) -> dict[str, float]:
    """One training step in this process; parameters and peak memory growth (MiB)."""
    import torch

    from utils.settings import apply_preset, config_defaults

    settings = apply_preset({**config_defaults(), "PRESET": preset}, cuda_available=False)
    from models.diffusion import build_unet

    extra = 2 if settings["LOCAL_VOL_WINDOW"] else 1  # the mean row is part of SCALES + 1
    height = settings["SCALES"] + 1 + extra
    width = settings["WINDOW_SIZE"] + 2 * settings["EDGE_MARGIN"]
    torch.manual_seed(0)
    unet = build_unet(settings, n_assets, height, width, None)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    x = torch.randn(batch, n_assets, height, width)
    t = torch.randint(0, 1000, (batch,))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    loss = unet(x, t).sample.square().mean()
    loss.backward()
    optimizer.step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "params_m": sum(p.numel() for p in unet.parameters()) / 1e6,
        "step_mib": peak - before,
        "image": f"{n_assets} x {height} x {width}",
        "batch_size": settings["BATCH_SIZE"],
    }


def main(argv: list[str] | None = None) -> int:
    """Measure every (series count, batch) pair in its own process and print the table."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="gpu", help="preset whose model is measured (default gpu)")
    p.add_argument("--assets", type=int, nargs="+", default=[1, 2, 10], help="series counts")
    p.add_argument("--batches", type=int, nargs=2, default=[4, 8], help="two batch sizes")
    p.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)  # child: assets, batch
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.preset, *args.one)))
        return 0
    for a in args.assets:
        runs = {}
        for b in args.batches:
            cmd = [sys.executable, __file__, "--preset", args.preset, "--one", str(a), str(b)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
            runs[b] = json.loads(done.stdout.strip().splitlines()[-1])
        (b1, r1), (b2, r2) = sorted(runs.items())
        per_window = (r2["step_mib"] - r1["step_mib"]) / (b2 - b1)
        fixed = r1["step_mib"] - per_window * b1
        at_preset = fixed + per_window * r1["batch_size"]
        print(
            f"{a:>3} series: images {r1['image']}, {r1['params_m']:.2f} M parameters; one step "
            f"{r1['step_mib']:.0f} MiB at batch {b1}, {r2['step_mib']:.0f} MiB at batch {b2} "
            f"({per_window:.1f} MiB a window); at batch {r1['batch_size']}: {at_preset / 1024:.1f} GiB",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
