"""Peak memory of train.py's data preparation and one epoch of batches, by series length.

    python benchmarks/memory.py                          # 1M and 10M rows, every file format
    python benchmarks/memory.py --rows 10000000 --formats csv,parquet --json mem.json

For each length and format a synthetic price series is written to a temporary
file: minute bars (timestamp, close) as CSV or Parquet, a HistData.com M1 export
(``YYYYMMDD HHMMSS;open;high;low;close;0``) or a HistData tick file
(``YYYYMMDD HHMMSSmmm,bid,ask,0``, priced at the mid). Then a fresh Python
process (so that peaks do not mix) runs what train.py runs before its first step:

1. ``data.training_data.prepare_training_data``: ``load_prices`` (reading, cleaning and checking the
   file), log returns, the time split, the normalizer fitted on the training
   part, normalized float32 returns and the window view (stride STRIDE);
2. ``transforms.build.build_transform``: the scalogram transform with its per-row scales
   fitted on the training windows;
3. one epoch of train.py's batching: the epoch permutation, then every batch of
   windows copied out of the view. Only the first --forward-batches batches also
   get the scalogram forward (the images the UNet would see): one image batch is
   all a step holds at a time, and doing it for an epoch of millions of windows
   would take hours, so the cap does not hide any memory growth.

It prints the process's resident memory after imports and its peak
(``resource.getrusage``: the kernel's high-water mark, so no short spike is
missed) after each stage, next to the size that precomputed scalograms of every
window would take, and last the formats' peaks side by side with each format's
growth per row between the shortest and the longest series. Memory should grow
with the series length (a few arrays of one value per row), never with windows x
image size. The target: below 2 GiB at 10 million rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3
MIB = 1024**2
FORMATS = ("csv", "parquet", "histdata-m1", "histdata-tick")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="memory.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--rows", default="1000000,10000000", help="comma-separated series lengths [%(default)s]"
    )
    p.add_argument(
        "--formats",
        default=",".join(FORMATS),
        help=f"comma-separated file formats among {', '.join(FORMATS)} [%(default)s]",
    )
    p.add_argument(
        "--preset",
        default="auto",
        help="model preset whose transform is used (auto: as train.py) [%(default)s]",
    )
    p.add_argument(
        "--forward-batches",
        type=int,
        default=200,
        help="batches that also get the scalogram forward [%(default)s]",
    )
    p.add_argument(
        "--tmp-dir", help="where the price files go (default: the system temporary folder)"
    )
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    # Internal: the two kinds of subprocess this script starts.
    p.add_argument(
        "--write-file", nargs=3, metavar=("ROWS", "PATH", "FORMAT"), help=argparse.SUPPRESS
    )
    p.add_argument("--measure", metavar="PATH", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ------------------------------------------------------------------ the price file


def write_prices(rows: int, path: Path, file_format: str, chunk: int = 1_000_000) -> None:
    """A fat-tailed random walk in ``file_format``, written in chunks so the writer stays small."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    start = np.datetime64("2010-01-04T00:00", "m")
    writer: Any = None
    level = np.log(1.1)
    try:
        for lo in range(0, rows, chunk):
            n = min(chunk, rows - lo)
            steps = 2e-4 * rng.standard_t(4, n)
            logp = level + np.cumsum(steps)
            level = logp[-1]
            # Five decimals, as FX quotes come; the text files then hold text like real exports.
            close = np.round(np.exp(logp), 5)
            if file_format.startswith("histdata"):
                table = _histdata_table(file_format, lo, close)
                options = pacsv.WriteOptions(
                    include_header=False,
                    delimiter=";" if file_format == "histdata-m1" else ",",
                    quoting_style="none",
                )
            else:
                stamps = (start + np.arange(lo, lo + n)).astype("datetime64[s]")
                table = pa.table({"timestamp": stamps, "close": close})
                options = pacsv.WriteOptions()
            if writer is None:
                writer = (
                    pq.ParquetWriter(path, table.schema)
                    if file_format == "parquet"
                    else pacsv.CSVWriter(path, table.schema, write_options=options)
                )
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _histdata_table(file_format: str, first: int, close: np.ndarray) -> Any:
    """HistData rows: M1 bars one minute apart, or ticks one second apart with milliseconds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    i = np.arange(first, first + len(close))
    tick = file_format == "histdata-tick"
    unit = "s" if tick else "m"
    moment = np.datetime64("2010-01-04T00:00", unit) + i
    day = moment.astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    ymd = (
        (month.astype("datetime64[Y]").astype(np.int64) + 1970) * 10000
        + (month.astype(np.int64) % 12 + 1) * 100
        + (day - month).astype(np.int64)
        + 1
    )
    seconds = (moment - day).astype("timedelta64[s]").astype(np.int64)
    clock = seconds // 3600 * 10000 + seconds // 60 % 60 * 100 + seconds % 60
    if tick:
        clock = clock * 1000 + i * 7 % 1000  # HHMMSSmmm
    text = pc.binary_join_element_wise(
        pc.cast(pa.array(ymd), pa.string()),
        pc.utf8_lpad(pc.cast(pa.array(clock), pa.string()), 9 if tick else 6, "0"),
        " ",
    )
    zero = np.zeros(len(close), dtype=np.int64)
    if tick:
        ask = np.round(close + 1e-4, 5)
        return pa.table({"time": text, "bid": close, "ask": ask, "volume": zero})
    opening = np.concatenate([[close[0]], close[:-1]])
    high = np.round(np.maximum(opening, close) + 2e-5, 5)
    low = np.round(np.minimum(opening, close) - 2e-5, 5)
    columns = {"time": text, "open": opening, "high": high, "low": low, "close": close}
    return pa.table({**columns, "volume": zero})


# ------------------------------------------------------------------ one measurement


def peak_bytes() -> int:
    """The process's peak resident set so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(path: Path, preset: str, forward_batches: int) -> dict[str, Any]:
    """Run train.py's preparation and one epoch of batching on ``path``; return the stages' peaks."""
    import psutil
    import torch

    sys.path.insert(0, str(ROOT))
    from data import training_data
    from transforms.build import build_transform
    from utils.seeding import derive_seed
    from utils.settings import apply_preset, config_defaults

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    proc = psutil.Process()
    out: dict[str, Any] = {"rss_after_imports": proc.memory_info().rss, "stages": []}

    def stage(name: str, t0: float) -> None:
        out["stages"].append(
            {
                "stage": name,
                "seconds": time.perf_counter() - t0,
                "rss": proc.memory_info().rss,
                "peak": peak_bytes(),
            }
        )

    settings = apply_preset(
        {**config_defaults(), "CSV_PATH": str(path), "COLUMN": "close", "PRESET": preset},
        cuda_available=torch.cuda.is_available(),
    )
    # Reading the file is most of prepare_data's memory: wrap the load_prices that
    # prepare_training_data calls to note the peak when it returns, leaving the code path as is.
    load = training_data.load_prices

    def load_and_mark(*a: Any, **k: Any) -> Any:
        t_load = time.perf_counter()
        result = load(*a, **k)
        stage("load_prices", t_load)
        return result

    training_data.load_prices = load_and_mark
    t0 = time.perf_counter()
    data = training_data.prepare_training_data(settings, str(path))
    training_data.load_prices = load
    stage("prepare_data", t0)

    t0 = time.perf_counter()
    windows = data.windows
    transform = build_transform(settings, windows)
    stage("make_transform", t0)

    # One epoch of train.py's batching: a permutation of all windows, batches copied out of
    # the view in sorted order, the scalogram forward on the first ``forward_batches``.
    t0 = time.perf_counter()
    batch = settings["BATCH_SIZE"]
    g = torch.Generator().manual_seed(derive_seed(settings["SEED"], 0))
    perm = torch.randperm(len(windows), generator=g).numpy()
    checksum = 0.0
    for b in range(len(windows) // batch):
        idx = perm[b * batch : (b + 1) * batch]
        x = torch.from_numpy(windows[np.sort(idx)])
        if b < forward_batches:
            checksum += float(transform.forward(x)[:, :, 0, 0].sum())
    stage("epoch_of_batches", t0)

    shape = (transform.channels, transform.height, transform.width)
    out.update(
        rows=data.n_prices,
        windows=len(windows),
        window_size=settings["WINDOW_SIZE"],
        stride=settings["STRIDE"],
        preset=settings["PRESET"],
        batch=batch,
        forward_batches=min(forward_batches, len(windows) // batch),
        image=list(shape),
        precomputed_bytes=len(windows) * int(np.prod(shape)) * 4,  # float32 images of every window
        peak=peak_bytes(),
        file_bytes=path.stat().st_size,
        checksum=checksum,
    )
    return out


# ------------------------------------------------------------------ driver


def run_python(args: list[str]) -> str:
    """Run this script in a fresh interpreter; return its stdout (its stderr passes through)."""
    proc = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"subprocess {args} failed with exit status {proc.returncode}")
    return proc.stdout


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "| rows | format | file (MiB) | windows | image | RSS after imports (MiB) | peak after load_prices | "
        "after prepare_data | after make_transform | after epoch | peak - imports (MiB) | bytes per row | "
        "precomputed scalograms (GiB) |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        peaks = {s["stage"]: s["peak"] / MIB for s in r["stages"]}
        grown = r["peak"] - r["rss_after_imports"]
        lines.append(
            f"| {r['rows']:,} | {r['format']} | {r['file_bytes'] / MIB:.0f} | {r['windows']:,} | "
            f"{'x'.join(map(str, r['image']))} | {r['rss_after_imports'] / MIB:.0f} | "
            f"{peaks['load_prices']:.0f} | {peaks['prepare_data']:.0f} | {peaks['make_transform']:.0f} | {peaks['epoch_of_batches']:.0f} | "
            f"{grown / MIB:.0f} | {grown / r['rows']:.0f} | {r['precomputed_bytes'] / GIB:,.1f} |"
        )
    return "\n".join(lines)


def side_by_side(results: list[dict[str, Any]]) -> str:
    """Peak RSS per format and length, then each format's growth per row between lengths.

    Growth per row is what the peak gains from the shortest to the longest series,
    divided by the rows added; next to it, what precomputed images would gain.
    """
    formats = list(dict.fromkeys(r["format"] for r in results))
    sizes = sorted({r["rows"] for r in results})
    found = {(r["rows"], r["format"]): r for r in results}
    head = "| rows | windows | " + " | ".join(f"{f} peak (load s)" for f in formats) + " |"
    lines = [head, "|" + "---|" * (len(formats) + 2)]
    for rows in sizes:
        cells = []
        for fmt in formats:
            r = found.get((rows, fmt))
            load = (
                next((s["seconds"] for s in r["stages"] if s["stage"] == "load_prices"), 0)
                if r
                else 0
            )
            cells.append(f"{r['peak'] / GIB:.2f} GiB ({load:.0f} s)" if r else "")
        windows = next(r["windows"] for r in results if r["rows"] == rows)
        lines.append(f"| {rows:,} | {windows:,} | " + " | ".join(cells) + " |")
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        growth = []
        for fmt in formats:
            a, b = found.get((lo, fmt)), found.get((hi, fmt))
            if a and b:
                per_row = (b["peak"] - a["peak"]) / (hi - lo)
                growth.append(
                    f"{fmt} {(b['peak'] - a['peak']) / MIB:,.0f} MiB ({per_row:.0f} B/row)"
                )
        images = next(
            (
                found[(hi, f)]["precomputed_bytes"] - found[(lo, f)]["precomputed_bytes"]
                for f in formats
                if (lo, f) in found and (hi, f) in found
            ),
            0,
        )
        lines.append(
            f"\npeak growth from {lo:,} to {hi:,} rows: {'; '.join(growth)}. "
            f"Precomputed scalograms would grow by {images / GIB:,.1f} GiB."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.write_file:
        write_prices(int(args.write_file[0]), Path(args.write_file[1]), args.write_file[2])
        return 0
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.preset, args.forward_batches)))
        return 0

    sizes = [int(float(r)) for r in args.rows.split(",") if r.strip()]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise SystemExit(
            f"--formats: unknown {', '.join(unknown)}; choose among {', '.join(FORMATS)}"
        )
    results = []
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        for rows in sizes:
            for fmt in formats:
                suffix = "parquet" if fmt == "parquet" else "csv"
                path = Path(tmp) / f"prices_{rows}_{fmt}.{suffix}"
                t0 = time.perf_counter()
                run_python(["--write-file", str(rows), str(path), fmt])
                print(
                    f"{rows:,} rows: wrote {fmt} ({path.stat().st_size / MIB:.0f} MiB) in {time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
                child = [
                    "--measure",
                    str(path),
                    "--preset",
                    args.preset,
                    "--forward-batches",
                    str(args.forward_batches),
                ]
                result = json.loads(run_python(child).strip().splitlines()[-1])
                result["format"] = fmt
                results.append(result)
                stages = ", ".join(f"{s['stage']} {s['seconds']:.0f} s" for s in result["stages"])
                print(f"  peak {result['peak'] / GIB:.2f} GiB ({stages})", flush=True)
                path.unlink()
    print()
    print(table(results))
    print()
    print(side_by_side(results))
    first = results[0]
    print(
        f"\npreset {first['preset']}: windows of {first['window_size']} at stride {first['stride']}, "
        f"batch {first['batch']}; scalogram forward on the first {first['forward_batches']} batches only. "
        "Precomputed = float32 images of every window. Target: peak < 2 GiB at 10M rows."
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
