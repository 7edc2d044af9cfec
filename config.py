"""Settings for train.py, generate.py and evaluate.py.

Edit the values here, or override any of them for one run with a flag
(`python train.py --help` lists the flags, each naming the setting it overrides)
or with `--set NAME=VALUE`. A value of None means "take it from the preset":
presets (utils/presets.py) size the model and the transform for the hardware.
"""

# One line per setting, its comment beside it (the README's table is made from these).
# fmt: off

# ---------------------------------------------------------------- data
CSV_PATH = "data/eurusd.csv"  # price file (CSV, Parquet, HistData) or a built-in name (sp500, nasdaq, ...); when this shipped example file is missing (and not given with --data) the built-in S&P 500 is used; a run records the data it read
COLUMN = "Close"  # price column, matched case-insensitively; not needed for one-column files; HistData: close (M1) / mid (ticks) by default
WINDOW_SIZE = 256  # returns per training window = length of generated paths
STRIDE = 1  # step between window starts; 1 uses every window (they are views, so it costs no memory)
TRAIN_FRAC = 0.8  # in (0, 1]: the first TRAIN_FRAC of the series (by time) trains; the rest is held out for evaluation
MAX_MISSING_FRAC = 0.01  # in [0, 1): missing prices (empty cells, ".") are dropped with a warning; more than this fraction is an error
DATE_FORMAT = None  # dates like 03/04/2020: None detects day or month first from the whole column (a day above 12, else the order of the rows) and refuses when it cannot tell; "dayfirst", "monthfirst", or a strftime format such as "%d.%m.%Y %H:%M"
OUTLIERS = "warn"  # returns beyond 25 robust scales (more in series longer than 5000 returns: a split, a bad tick) and gaps far longer than the series' trading calendar explains: "warn" lists them and keeps them, "drop" removes those returns, "error" stops
RETURN_POWER = None  # returns are scaled then mapped to sign(z)|z|^(1/RETURN_POWER); 1.0 turns it off; "fitted": chosen in [1, 2] from the training returns' tails (data/tails.py; saved and printed); None: the preset's (cpu "fitted"; gpu and seed 1.5)
JOINT = False  # True: the several series CSV_PATH names (sp500,nasdaq) are one joint model, each a channel group of one image, so generated paths of all series belong together (correlation, spillover, common crashes); False: one series, or a CONDITION="asset" model that generates each series on its own
JOINT_GAPS = "drop"  # joint models, dates one series lacks (other holidays): "drop" keeps only the dates all series have (a move on a skipped date folds into the next common return); "ffill" carries the last price over (a zero return that day)
RETURN_CLIP = None  # winsorize scaled returns at this many robust scales (training only); None: off

# ---------------------------------------------------------------- scalogram
TRANSFORM_MODE = None  # "signed" (real Morlet), "complex" (complex Morlet, 2 channels) or "magnitude" (|W|, approximate inverse)
WAVELET = None  # PyWavelets name: "morl" for signed/magnitude, e.g. "cmor1.5-1.0" for complex
SCALES = None  # number of wavelet scales (log-spaced); the image gets one more row for the window mean
VOLATILITY_ROW = None  # divide each window by its RMS and carry the log RMS in one more row (see transforms/volatility.py)
VOL_LEVEL = None  # with VOLATILITY_ROW, where unconditional paths get their volatility level: "fitted" (drawn from the training windows' levels) or "model" (the generated row)
LOCAL_VOL_WINDOW = None  # with VOLATILITY_ROW, also divide each window by its moving RMS over this many returns (odd) and carry that curve as one more row, for clustering inside windows; 0: off; None: the preset's (cpu 21, when WINDOW_SIZE >= 84; gpu and seed off). Takes an image row
LOCAL_SPREAD = None  # generated local volatility rows' movement inside a window is multiplied by this; 1.0: as generated; "fitted": measured against the training rows at the end of training (models/calibration.py; saved and printed); needs LOCAL_VOL_WINDOW; None: the preset's (cpu "fitted"; 1.0 without the local row)
TAIL_STRETCH = None  # generated returns beyond each side's 95% quantile are raised to a power so that their tail follows the training returns' (fitted at the end of training on 128 generated windows, models/calibration.py; saved in the normalizer and printed), minus the mean shift this gives generated returns (their drift kept), then the residual over the 21-return moving RMS given the training returns' kurtosis at each volatility level (data/level_shape.py); "fitted" or 1.0 (both off); None: the preset's (cpu and gpu "fitted"; seed 1.0; 1.0 with CONDITION = "asset")
EDGE_MARGIN = None  # with VOLATILITY_ROW, returns generated beyond each end of a window and dropped, so that no output return comes from an image border (which the UNet generates damped); the model works on WINDOW_SIZE + 2 * EDGE_MARGIN returns; 0: off; None: the preset's (cpu and gpu 16, at most WINDOW_SIZE // 16; seed 0)
CONTEXT_FRACTIONS = None  # with VOLATILITY_ROW, the history a window may be given to continue (long paths, scenarios), as fractions of WINDOW_SIZE: a tuple of fractions in (0, 1), e.g. (0.25, 0.5, 0.75); each training window gets no history half of the time (the unconditional model) and its first round(f * WINDOW_SIZE) returns (plus the left EDGE_MARGIN) as known input, f drawn from the tuple, the other half; () off: an unconditional model only, as checkpoints without it; None: the preset's (cpu (0.25, 0.5, 0.75); gpu and seed (), not measured there)
CONTINUATION_LEVEL = None  # with CONTEXT_FRACTIONS, "fitted": at the end of training 128 training windows, and 64 whose histories end in the largest shocks, are continued from their own first returns and the new returns' level is given the real continuations' mean and distribution (quantiles) given the known part's level, its last weeks' and its last days' (so that scenarios widen after a shock), their first weeks a level of their own, and the first 32 new returns gains that undo the UNet's damping right after the known part (models/calibration.py; saved in the transform and printed; for the default CONTEXT_KNOWN of scenarios and of long paths); "off": as generated; None: the preset's (cpu and gpu "fitted"; seed and runs without context "off")
SCALE_MIN = 1.0  # smallest wavelet scale, in samples
SCALE_MAX = None  # largest wavelet scale; None: WINDOW_SIZE / 2
IMAGE_SIZE = None  # resize time to this many columns (the reference's 128); None keeps WINDOW_SIZE and an exact inverse

# ---------------------------------------------------------------- model
PRESET = "auto"  # "cpu", "gpu", "seed" (the reference configuration) or "auto" (gpu when there is one, else cpu)
BLOCK_OUT_CHANNELS = None  # UNet2DModel channels per level, e.g. (32, 64, 128)
LAYERS_PER_BLOCK = None  # ResNet layers per UNet level
ATTENTION_LEVELS = None  # how many of the lowest levels use self-attention (0: none)
PREDICTION_TYPE = None  # "v_prediction" or "epsilon"
NUM_TIMESTEPS = None  # diffusion steps of the training noise schedule
BETA_SCHEDULE = None  # "squaredcos_cap_v2" (cosine), "linear" or "scaled_linear"

# ---------------------------------------------------------------- training
BATCH_SIZE = None  # windows per optimizer step and device
GRAD_ACCUM = 1  # accumulate gradients over this many batches per optimizer step
EPOCHS = None  # passes over the training windows; training stops at the first of EPOCHS, MAX_STEPS, MAX_MINUTES
MAX_STEPS = None  # optimizer steps; None: no limit
MAX_MINUTES = None  # wall-clock budget in minutes; None: no limit
LR = None  # peak AdamW learning rate
WARMUP_STEPS = 200  # linear learning-rate warmup, then cosine decay to 10% of LR
WEIGHT_DECAY = 0.01  # AdamW weight decay
GRAD_CLIP = 1.0  # clip the gradient norm at this value (positive); None: no clipping
EMA_DECAY = 0.999  # in [0, 1): EMA of the weights used for sampling (warmed up: early steps average less)
CHECKPOINT_EVERY = 500  # save a checkpoint every N optimizer steps (and always at the end)
KEEP_CHECKPOINTS = 2  # keep the newest N checkpoints of a run
SAVE_DIR = "checkpoints"  # runs are written to SAVE_DIR/<run name>/step-NNNNNN
DEVICE = "auto"  # "auto", "cpu" or "cuda"
MIXED_PRECISION = "auto"  # "no", "bf16", "fp16" or "auto" (bf16 where the GPU or CPU has native bf16, else fp32)
COMPILE = False  # True or False: torch.compile the UNet (GPU; slow first steps)
SEED = 0  # any whole number; seeds data order, initial weights and noise

# ---------------------------------------------------------------- generation
N_SAMPLES = 256  # paths generate.py writes
SAMPLER = None  # "dpm" (DPM-Solver++), "unipc", "ddim" or "ddpm"
SAMPLING_STEPS = None  # solver steps; None: the sampler's default (dpm 20, unipc 20, ddim 50, ddpm = NUM_TIMESTEPS)
SAMPLE_BATCH = 64  # paths per denoising batch (does not change the paths)
START_PRICE = None  # first price of generated paths; None: the last training price
LENGTH = None  # returns per generated path; None: WINDOW_SIZE (one window); longer paths roll windows, each continuing the last CONTEXT_KNOWN returns of the path so far (needs CONTEXT_FRACTIONS)
CONTEXT_KNOWN = None  # known returns each rolled or scenario window continues: one of the checkpoint's round(f * WINDOW_SIZE) for f in CONTEXT_FRACTIONS; None: for scenarios the one nearest WINDOW_SIZE / 2, for long paths the shortest (fewest windows)
JOIN_OVERLAP = 0  # rolled and scenario windows: 0 gives the model the history up to its last return, and the first new returns, which the UNet damps then overshoots, get the start gains fitted at the end of training (CONTINUATION_LEVEL = "fitted"); N > 0 instead gives the model the history before its last N returns and writes those N real returns over the damped ones (use 4 with checkpoints saved before the start gains existed)
SCENARIO_MEAN = "drift"  # scenarios (--context): "drift" moves the mean of the N scenarios on each day onto the training returns' mean, their spread and shapes kept (the mean the model reads from a history scored no better than the drift on validation years; README, "Long paths and scenarios"; needs N_SAMPLES >= 16); "model": the model's own mean
OUTPUT_DIR = "outputs"  # where generate.py and evaluate.py write when no --out is given

# ---------------------------------------------------------------- conditioning
CONDITION = None  # None (unconditional), "vol-regime", "trend", "asset" (several series in CSV_PATH) or "realized-vol" (continuous); see "Conditional generation"
CONDITION_QUANTILES = None  # quantile levels that cut realized vol (vol-regime) or cumulative return (trend) into classes, fitted on training windows; None: terciles
CONDITION_DROP = 0.1  # in [0, 1): fraction of training labels replaced by the null label, so one model also learns the unconditional distribution
GUIDANCE = 1.0  # 0 or more: classifier-free guidance at sampling: uncond + GUIDANCE * (cond - uncond); 1: the conditional model alone, 0: unconditional
# fmt: on
