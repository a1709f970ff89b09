"""Settings of a re-ID training run: the dataclass below holds the defaults, a TOML file and options override them.

The resolved settings are written to ``RUN/config.toml`` so that a run can be
repeated with ``--config RUN/config.toml``; ``None`` values are left out of that
file because every optional key defaults to ``None``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from augreid import settings
from augreid.reid.methods import method_class, method_names

if TYPE_CHECKING:
    from augreid.reid.methods.base import ReidMethod

LabelScheme = Literal["same-id", "lsro", "smoothed-id"]
# What torchreid's build_optimizer / build_lr_scheduler accept (torchreid 0.2.5).
Optimizer = Literal["adam", "amsgrad", "sgd", "rmsprop", "radam"]
LrScheduler = Literal["single_step", "multi_step", "cosine"]
Device = Literal["auto", "cpu", "cuda"]
LABEL_SCHEMES = get_args(LabelScheme)
OPTIMIZERS = get_args(Optimizer)
LR_SCHEDULERS = get_args(LrScheduler)
DEVICES = get_args(Device)


@dataclass
class ReidConfig:
    # data
    data: str | None = None  # Market-layout root; None = the embedded demo dataset
    synthetic: str | None = None  # synthetic folder (bounding_box_train/ + manifest.jsonl + synth.json)
    # Synthetic images added ON TOP of the batch_size real ones (CamStyle's design): the arms of a comparison then
    # take the same optimizer steps with the same real images per batch. 0 = none.
    synthetic_per_batch: int = 8
    max_synthetic_per_id: int | None = None  # keep at most this many synthetic images per identity (seeded choice)
    # labelling of synthetic images
    label_scheme: LabelScheme = "same-id"
    label_smoothing: float = 0.1  # epsilon of "smoothed-id" (synthetic images only)
    real_label_smoothing: float = 0.1  # epsilon on real images (torchreid's label_smooth, BoT's 0.1); 0 = plain CE
    # model
    model: str = "mobilenetv2_x1_0"  # any torchreid model name
    # "auto" (offline ImageNet weights where the model has them, else random), "imagenet" (required),
    # "none" (random) or a local weights file; never downloaded
    pretrained: str | None = "auto"
    height: int = 128
    width: int = 64
    norm_mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    norm_std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    # torchreid build_transforms names (BoT's set)
    transforms: list[str] = field(default_factory=lambda: ["random_flip", "random_crop", "random_erase"])
    # optimisation (torchreid build_optimizer / build_lr_scheduler)
    method: str = "bot"  # a name in augreid.reid.methods' registry: bot (BoT), softmax or triplet (torchreid's engines)
    method_options: dict[str, Any] = field(default_factory=dict)  # the method's own settings (its Options dataclass)
    # bot: linear warmup from warmup_factor * lr over these epochs; None = BoT's share of the run (10 of 120)
    warmup_epochs: int | None = None
    warmup_factor: float = 0.1
    margin: float = 0.3  # triplet margin
    num_instances: int = 4  # images per identity in a triplet batch
    epochs: int = 30
    batch_size: int = 64  # real images per batch; bot / triplet: P = batch_size / num_instances identities
    optimizer: Optimizer = "adam"
    lr: float = 0.00035
    weight_decay: float = 0.0005
    lr_scheduler: LrScheduler = "multi_step"  # softmax / triplet (bot always warms up, then steps at stepsize)
    # Epochs from which the rate is multiplied by gamma; None = BoT's points of the run (40 and 70 of 120 epochs),
    # so that any number of epochs gets a schedule that runs its course; [] = no decay.
    stepsize: list[int] | None = None
    gamma: float = 0.1
    # Optimizer steps per epoch; None = one pass over the real images. Set it to give runs on different amounts
    # of data (fractions) the same step budget, epochs * iters_per_epoch, with the schedule at the same points.
    iters_per_epoch: int | None = None
    channels_last: bool = True  # model and batches in channels_last memory format (faster convolutions on CPU)
    eval_every: int = 0  # evaluate query/gallery every N epochs and at the end (a learning curve); 0 = only at the end
    # run
    seed: int = 0
    device: Device = "auto"  # auto = cuda when available
    workers: int = 2
    threads: int = 0  # torch CPU threads; 0 = torch's default (all cores)
    evaluate: bool = True  # rank-1/mAP on query/gallery at the end (augreid's evaluator)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return settings.to_toml(
            self, "Resolved settings of this run (augreid train-reid --config this-file repeats it)."
        )

    @property
    def uses_synthetic(self) -> bool:
        return self.synthetic is not None and self.synthetic_per_batch > 0

    def problems(self) -> list[str]:
        problems = check_values(dataclasses.asdict(self))
        if self.method not in method_names():
            return problems + [f"method: {self.method!r} is not one of {', '.join(method_names())}"]
        self._build_options(method_class(self.method), problems, prefix="method_options.")
        return problems

    def options_of(self, method: ReidMethod | type[ReidMethod]) -> Any:
        """``method_options`` as ``method``'s own ``Options`` dataclass (defaults filled in, values checked)."""
        problems: list[str] = []
        options = self._build_options(method, problems)
        if problems:
            raise settings.invalid(f"{method.name} options are invalid", problems)
        return options

    def _build_options(self, method: ReidMethod | type[ReidMethod], problems: list[str], prefix: str = "") -> Any:
        """``method_options`` as ``method.Options``; its problems are appended to ``problems`` (each ``prefix``ed)."""
        layer = settings.Layer("method_options", self.method_options)
        return settings.build(method.Options, [layer], problems, prefix=prefix)

    @property
    def schedule(self) -> tuple[int, list[int]]:
        """``(warmup_epochs, stepsize)`` as given, or placed at BoT's points of this run's ``epochs``."""
        return resolved_schedule(self.epochs, self.warmup_epochs, self.stepsize)


# BoT (Luo et al. 2019) warms up over 10 of its 120 epochs and decays at epochs 40 and 70.
BOT_WARMUP_SHARE = 10 / 120
BOT_DECAY_SHARES = (40 / 120, 70 / 120)


def resolved_schedule(epochs: int, warmup: int | None, stepsize: list[int] | None) -> tuple[int, list[int]]:
    """Warmup epochs and milestones; ``None`` ones at BoT's shares of ``epochs`` (milestones that would fall
    outside 1..epochs-1, in runs too short to decay, are left out)."""
    if stepsize is None:
        stepsize = sorted({m for share in BOT_DECAY_SHARES if 1 <= (m := round(share * epochs)) < epochs})
    if warmup is None:
        warmup = min(round(BOT_WARMUP_SHARE * epochs), max(0, min(stepsize, default=epochs) - 1))
    return warmup, list(stepsize)


# Keys of earlier versions -> what to write now (settings files, recipes' [reid] and --set).
RENAMED = {
    "synthetic_ratio": "synthetic images are now added on top of the batch_size real ones: write "
    "synthetic_per_batch = N (e.g. 8 with batch_size = 32)",
    "max_iters_per_epoch": "write iters_per_epoch (every epoch then takes exactly that many optimizer steps)",
    "last_stride": "bot's own option now: write [reid.method_options] last_stride = 1 "
    "(or --set method_options.last_stride=1)",
}

FIELDS = {f.name: f for f in dataclasses.fields(ReidConfig)}
PATH_KEYS = ("data", "synthetic", "pretrained")
PRETRAINED_NAMES = ("auto", "imagenet", "none")  # --pretrained values that are names, not files


def absolute(value: Any, base: Path) -> Any:
    """A path setting made absolute (relative to the config file, or to the working folder for options)."""
    if not isinstance(value, (str, Path)) or value in PRETRAINED_NAMES:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _absolute_paths(values: dict[str, Any], base: Path) -> dict[str, Any]:
    return {k: absolute(v, base) if k in PATH_KEYS else v for k, v in values.items()}


def resolve_config(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ReidConfig:
    """Defaults, then ``config_file``, then ``overrides`` (``None`` values in overrides mean "not given")."""
    layers = []
    if config_file is not None:
        layer = settings.file_layer(config_file)
        base = Path(config_file).expanduser().resolve().parent
        layers.append(settings.Layer(layer.source, _absolute_paths(dict(layer.values), base)))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    layers.append(settings.Layer("the options", _absolute_paths(given, Path.cwd())))
    problems: list[str] = []
    config = settings.build(ReidConfig, layers, problems, hints=RENAMED)
    if problems:
        raise settings.invalid("re-ID settings are invalid", problems)
    return config


def check_values(s: dict[str, Any]) -> list[str]:
    """Range checks that need no data (choices are the Literal types; torchreid checks the model name later)."""
    problems = []
    if s["stepsize"] is not None and any(step < 1 for step in s["stepsize"]):
        problems.append(f"stepsize: {s['stepsize']!r} must list epochs >= 1 ([] = no decay)")
    elif s["stepsize"] == [] and not _warms_up(s) and s["lr_scheduler"] == "single_step":
        problems.append("stepsize: single_step needs a step size (the last value of stepsize)")
    if s["warmup_epochs"] is not None and s["warmup_epochs"] < 0:
        problems.append(f"warmup_epochs: {s['warmup_epochs']} must be at least 0")
    if not 0.0 < s["warmup_factor"] <= 1.0:
        problems.append(f"warmup_factor: {s['warmup_factor']} is outside (0, 1]")
    for key in ("lr", "weight_decay", "margin", "gamma"):
        if not math.isfinite(s[key]) or s[key] < 0 or (key == "lr" and s[key] == 0):
            problems.append(f"{key}: {s[key]} must be a finite number {'> 0' if key == 'lr' else '>= 0'}")
    if s["height"] < 32 or s["width"] < 16:
        problems.append(f"height/width: {s['height']}x{s['width']} is too small for a re-ID backbone (min 32x16)")
    for key in ("label_smoothing", "real_label_smoothing"):
        if not 0.0 <= s[key] <= 1.0:
            problems.append(f"{key}: {s[key]} is outside [0, 1]")
    if s["synthetic_per_batch"] < 0:
        problems.append(f"synthetic_per_batch: {s['synthetic_per_batch']} must be at least 0")
    if s["max_synthetic_per_id"] is not None and s["max_synthetic_per_id"] < 1:
        problems.append(f"max_synthetic_per_id: {s['max_synthetic_per_id']} must be at least 1")
    for key in ("height", "width", "epochs", "batch_size", "num_instances"):
        if s[key] < 1:
            problems.append(f"{key}: {s[key]} must be at least 1")
    for key in ("workers", "threads", "eval_every"):
        if s[key] < 0:
            problems.append(f"{key}: {s[key]} must be at least 0")
    if s["iters_per_epoch"] is not None and s["iters_per_epoch"] < 1:
        problems.append(f"iters_per_epoch: {s['iters_per_epoch']} must be at least 1")
    if _identity_batches(s) and s["batch_size"] < s["num_instances"]:
        problems.append(f"batch_size: {s['batch_size']} is smaller than num_instances={s['num_instances']}")
    if len(s["norm_mean"]) != 3 or len(s["norm_std"]) != 3:
        problems.append("norm_mean/norm_std: expected three values (RGB)")
    if s["epochs"] >= 1 and not any(p.startswith(("stepsize:", "warmup_epochs:")) for p in problems):
        problems += schedule_problems(s)
    return problems


def schedule_problems(s: dict[str, Any]) -> list[str]:
    """A learning-rate schedule that cannot run its course within ``epochs``.

    Epochs are counted from 0; a milestone m lowers the rate from epoch m on, so it must be below ``epochs``,
    and warmup must end before the first milestone (or, with ``stepsize = []``, a constant rate, before the
    run ends). A method with ``warmup_schedule`` (bot) warms up and steps at ``stepsize``; torchreid's
    multi_step steps at every milestone, single_step every ``stepsize[-1]`` epochs, cosine uses none.
    """
    if not _warms_up(s) and s["lr_scheduler"] == "cosine":
        return []
    epochs, problems = s["epochs"], []
    warmup, stepsize = resolved_schedule(epochs, s["warmup_epochs"], s["stepsize"])
    milestones = stepsize if _warms_up(s) or s["lr_scheduler"] == "multi_step" else stepsize[-1:]
    late = [m for m in milestones if m >= epochs]
    if late:
        problems.append(
            f"stepsize: milestone(s) {late} at or beyond epochs = {epochs}: the learning rate never decays there "
            f"(a milestone m lowers it from epoch m + 1 of 1..{epochs}; use milestones below {epochs}, or stepsize = [] for no decay)"
        )
    if not _warms_up(s) or not warmup:
        return problems
    if milestones and warmup >= min(milestones):
        problems.append(
            f"warmup_epochs: {warmup} is at or beyond the first stepsize milestone {min(milestones)}: "
            "the learning rate decays before warmup has ended"
        )
    elif not milestones and warmup >= epochs:
        problems.append(f"warmup_epochs: {warmup} is at or beyond epochs = {epochs}: warmup never ends")
    return problems


def _capability(s: dict[str, Any], name: str) -> bool:
    """A class-level capability of the settings' method (False for a name the registry does not know)."""
    return s["method"] in method_names() and bool(getattr(method_class(s["method"]), name))


def _warms_up(s: dict[str, Any]) -> bool:
    return _capability(s, "warmup_schedule")


def _identity_batches(s: dict[str, Any]) -> bool:
    return _capability(s, "identity_batches")
