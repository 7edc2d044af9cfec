"""A tiny train -> generate run through the scripts' entry points, on the built-in S&P 500."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import generate
import train
from data.returns import ReturnNormalizer
from transforms.volatility import transform_from_json
from utils import checkpoint as ckpt
from utils.paths_io import read_paths
from utils.seeding import derive_seed


def test_train_then_generate_writes_paths_plot_and_checkpoint(tmp_path: Path, tiny, capsys) -> None:
    assert (
        train.main([*tiny(MAX_STEPS=4, CHECKPOINT_EVERY=2), "--data", "sp500", "--run-name", "r"])
        == 0
    )
    run = tmp_path / "r"
    steps = ckpt.list_checkpoints(run)
    assert [p.name for p in steps] == ["step-000002", "step-000004"]
    for name in ckpt.REQUIRED:
        assert (steps[-1] / name).is_file(), name
    log = pd.read_csv(run / "train_log.csv")
    assert list(log["step"]) == [1, 2, 3, 4] and np.isfinite(log["loss"]).all()

    out = tmp_path / "paths.csv"
    assert generate.main([*tiny(), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ACF |r| in windows" in printed and "kurtosis of r / window RMS" in printed
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["path", "step", "log_return", "price"]
    r = read_paths(out)
    assert r.shape == (6, 32) and np.isfinite(r).all()
    # Prices are the exponentiated cumulative returns from the start price.
    first = frame[frame.path == 0]
    start = json.loads((steps[-1] / "settings.json").read_text())["LAST_TRAIN_PRICE"]
    np.testing.assert_allclose(first.price, start * np.exp(np.cumsum(first.log_return)), rtol=1e-8)
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_same_seed_same_file_and_batch_size_does_not_change_paths(tmp_path: Path, tiny) -> None:
    assert train.main([*tiny(MAX_STEPS=2), "--data", "sp500", "--run-name", "r"]) == 0
    files = []
    for i, batch in enumerate((4, 4, 1)):
        out = tmp_path / f"p{i}.npy"
        assert (
            generate.main(
                [*tiny(), "--seed", "3", "--batch-size", str(batch), "--out", str(out), "--no-plot"]
            )
            == 0
        )
        files.append(out)
    assert files[0].read_bytes() == files[1].read_bytes()
    np.testing.assert_allclose(np.load(files[2]), np.load(files[0]), rtol=0, atol=1e-6)
    other = tmp_path / "other.npy"
    assert generate.main([*tiny(), "--seed", "4", "--out", str(other), "--no-plot"]) == 0
    assert not np.allclose(np.load(other), np.load(files[0]))


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "unipc"])
def test_every_sampler_gives_finite_paths(tmp_path: Path, tiny, sampler: str) -> None:
    assert train.main([*tiny(MAX_STEPS=1), "--data", "sp500", "--run-name", "r"]) == 0
    out = tmp_path / "p.parquet"
    assert (
        generate.main(
            [*tiny(), "--sampler", sampler, "--steps", "4", "--out", str(out), "--no-plot"]
        )
        == 0
    )
    assert np.isfinite(read_paths(out)).all()


def test_resume_continues_to_the_same_step_and_weights(tmp_path: Path, tiny) -> None:
    # MAX_MINUTES is far away so the learning-rate schedule follows the step count alone.
    flags = tiny(MAX_STEPS=6, CHECKPOINT_EVERY=3, KEEP_CHECKPOINTS=5, MAX_MINUTES=1000)
    assert (
        train.main(
            [*flags, "--data", "sp500", "--save-dir", str(tmp_path / "a"), "--run-name", "r"]
        )
        == 0
    )
    assert (
        train.main(
            [*flags, "--data", "sp500", "--save-dir", str(tmp_path / "b"), "--run-name", "r"]
        )
        == 0
    )
    # As if killed between steps 3 and 6: only the step-3 checkpoint survives.
    shutil.rmtree(tmp_path / "b" / "r" / "step-000006")
    assert train.main([*flags, "--save-dir", str(tmp_path / "b"), "--resume"]) == 0
    a = ckpt.list_checkpoints(tmp_path / "a" / "r")[-1]
    b = ckpt.list_checkpoints(tmp_path / "b" / "r")[-1]
    assert a.name == b.name == "step-000006"
    wa = ckpt.load_train_state(a)["model"]
    wb = ckpt.load_train_state(b)["model"]
    for key in wa:
        np.testing.assert_allclose(
            wa[key].numpy(), wb[key].numpy(), rtol=1e-5, atol=1e-6, err_msg=key
        )


def test_new_run_never_writes_into_an_existing_run(tmp_path: Path, tiny, capsys) -> None:
    assert train.main([*tiny(MAX_STEPS=1), "--data", "sp500", "--run-name", "r"]) == 0
    assert train.main([*tiny(MAX_STEPS=1), "--data", "sp500", "--run-name", "r"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_generate_refuses_to_overwrite(tmp_path: Path, tiny, capsys) -> None:
    assert train.main([*tiny(MAX_STEPS=1), "--data", "sp500", "--run-name", "r"]) == 0
    out = tmp_path / "p.csv"
    assert generate.main([*tiny(), "--out", str(out), "--no-plot"]) == 0
    assert generate.main([*tiny(), "--out", str(out), "--no-plot"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert generate.main([*tiny(), "--out", str(out), "--no-plot", "--overwrite"]) == 0


def test_seed_preset_trains_generates_and_plots_scalograms(tmp_path: Path, capsys) -> None:
    """The reference configuration: 128 x 128 magnitude scalograms, 26.6 M parameters, DDPM."""
    flags = [
        "--preset",
        "seed",
        "--save-dir",
        str(tmp_path),
        "--data",
        "sp500",
        "--set",
        "WARMUP_STEPS=1",
    ]
    assert train.main([*flags, "--max-steps", "1", "--batch-size", "2", "--run-name", "seed"]) == 0
    assert "26.6" in capsys.readouterr().out  # the reference's parameter count, in millions
    step = ckpt.list_checkpoints(tmp_path / "seed")[-1]
    transform = json.loads((step / "transform.json").read_text())
    assert transform["mode"] == "magnitude"
    out = tmp_path / "seed.csv"
    argv = ["--save-dir", str(tmp_path), "--n", "2", "--steps", "2", "--out", str(out)]
    assert generate.main(argv) == 0
    assert "ddpm" in capsys.readouterr().out
    assert read_paths(out).shape == (2, 256)
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_fitted_volatility_levels_set_each_paths_rms(tmp_path: Path, tiny) -> None:
    # Without a margin (and without the tail stretch, which moves the largest returns) the
    # drawn level is the RMS of the whole generated window.
    flags = [*tiny(MAX_STEPS=2, EDGE_MARGIN=0, TAIL_STRETCH=1.0), "--data", "sp500"]
    flags += ["--run-name", "r"]
    assert train.main(flags) == 0
    step_dir = ckpt.list_checkpoints(tmp_path / "r")[-1]
    transform = transform_from_json(ckpt.read_json(step_dir, "transform.json"))
    normalizer = ReturnNormalizer.from_json(ckpt.read_json(step_dir, "normalizer.json"))
    paths = {}
    for level in ("fitted", "model"):
        out = tmp_path / f"{level}.npy"
        argv = [*tiny(), "--seed", "5", "--vol-level", level, "--out", str(out), "--no-plot"]
        assert generate.main(argv) == 0
        paths[level] = np.load(out)
    # Fitted: path i's normalized RMS is exactly the level drawn with path i's seed.
    z = torch.from_numpy(normalizer.transform(paths["fitted"].astype(np.float64)))
    rows = (
        0.5 * torch.log(z.square().mean(dim=1)) - transform.log_rms_mean
    ) / transform.log_rms_std
    want = transform.draw_rows([derive_seed(derive_seed(5, i), 1) for i in range(len(z))])
    torch.testing.assert_close(rows.double(), want, rtol=0, atol=1e-5)  # paths are float32
    # Model: the levels come from the generated rows instead, so the paths differ.
    assert not np.allclose(paths["fitted"], paths["model"])


def test_local_volatility_row_trains_and_generates(tmp_path: Path, tiny, capsys) -> None:
    flags = tiny(MAX_STEPS=2, SCALES=5, LOCAL_VOL_WINDOW=5, VOLATILITY_ROW=True)
    assert train.main([*flags, "--data", "sp500", "--run-name", "r"]) == 0
    step_dir = ckpt.list_checkpoints(tmp_path / "r")[-1]
    transform = transform_from_json(json.loads((step_dir / "transform.json").read_text()))
    assert transform.local_window == 5 and transform.height == 8
    out = tmp_path / "p.npy"
    assert generate.main([*tiny(), "--out", str(out), "--no-plot"]) == 0
    paths = np.load(out)
    assert paths.shape == (6, 32) and np.isfinite(paths).all()
    # The local row is relative to the window's RMS: without the volatility row it is refused.
    assert (
        train.main(
            [
                *tiny(MAX_STEPS=1, LOCAL_VOL_WINDOW=5, VOLATILITY_ROW=False),
                "--data",
                "sp500",
                "--run-name",
                "q",
            ]
        )
        == 2
    )
    assert "needs VOLATILITY_ROW = True" in capsys.readouterr().err


def test_edge_margin_trains_wider_windows_and_writes_window_size_paths(
    tmp_path: Path, tiny, capsys
) -> None:
    flags = tiny(MAX_STEPS=2, EDGE_MARGIN=4)
    assert train.main([*flags, "--data", "sp500", "--run-name", "r"]) == 0
    step_dir = ckpt.list_checkpoints(tmp_path / "r")[-1]
    transform = transform_from_json(ckpt.read_json(step_dir, "transform.json"))
    assert (transform.margin, transform.width, transform.output_size) == (4, 40, 32)
    out = tmp_path / "p.npy"
    assert generate.main([*tiny(), "--out", str(out), "--no-plot"]) == 0
    assert np.load(out).shape == (6, 32)
    # The margin is cut by the volatility transform: without its row it is refused.
    off = tiny(MAX_STEPS=1, EDGE_MARGIN=4, VOLATILITY_ROW=False, LOCAL_VOL_WINDOW=0)
    assert train.main([*off, "--data", "sp500", "--run-name", "q"]) == 2
    assert "EDGE_MARGIN needs VOLATILITY_ROW" in capsys.readouterr().err


def test_ema_follows_the_model_to_its_device() -> None:
    """The average is built before accelerate moves the model (to a GPU): it must follow."""
    from models.diffusion import EMA

    model = torch.nn.Linear(3, 2)
    ema = EMA(model, 0.9)
    model.to("meta")  # another device, without needing a GPU
    ema.update(model)
    assert all(s.device.type == "meta" for s in ema.shadow)


def test_cpu_sampling_runs_channels_last_with_the_same_result(monkeypatch) -> None:
    """The CPU sampling loop's layout changes float rounding only, not the samples."""
    from diffusers import UNet2DModel

    from models import diffusion

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=(8, 16), in_channels=1, out_channels=1, block_out_channels=(8, 16),
        layers_per_block=1, down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8,
    ).eval()  # fmt: skip
    sampler = diffusion.make_sampler("dpm", {"num_train_timesteps": 100})
    weight = lambda: unet.down_blocks[0].resnets[0].conv1.weight  # noqa: E731  (8 -> 8, 3x3)
    fast = diffusion.sample(unet, sampler, [1, 2, 3], 5)
    assert weight().is_contiguous(memory_format=torch.channels_last)
    assert not weight().is_contiguous()
    monkeypatch.setattr(diffusion, "sampling_layout", lambda device: torch.contiguous_format)
    plain = diffusion.sample(unet, sampler, [1, 2, 3], 5)
    assert weight().is_contiguous()
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
    assert not torch.equal(fast[0], fast[1])
