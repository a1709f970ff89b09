"""TEST DOUBLE of a generator, registered as the generator ``test-paste``.

Not a generator: it pastes the condition image inside the (dilated) target
pose disks and fills the rest with flat grey. It implements exactly the
``generators.base.Generator`` protocol (and a plug-in whose checkpoint is one
JSON file), so that synth's planning, batching, writing, resuming and scoring,
and the generic checkpoint dispatch, can be tested in seconds without a
trained model. The integration tests with a real PG2 checkpoint live in
tests/test_synth.py and tests/test_generators.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from augreid.data.pose import pose_maps
from generators.base import GeneratorPlugin, register_generator

NAME = "test-paste"


class Interrupted(RuntimeError):
    """Raised by the double to simulate a crash in the middle of a run."""


class PasteGenerator(torch.nn.Module):
    name = NAME

    def __init__(
        self, shape=(128, 64), *, fail_after: int | None = None, fingerprint: str | None = None, grey: float = 0.2
    ) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.fingerprint = fingerprint
        self.checkpoint_path = "test-double"
        self.checkpoint_hash = "test-double-v1"
        self.grey = torch.nn.Parameter(torch.tensor(float(grey)))
        self.fail_after = fail_after
        self.calls = 0
        self.condition_poses: list = []  # what each call was given, for the tests
        self.eval()

    @property
    def image_size(self) -> tuple[int, int]:
        return self.shape

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("disks", "paste")

    def provenance(self) -> dict:
        return {"name": NAME, "preset": "test-double", "step": 0, "dataset_fingerprint": self.fingerprint}

    def render_pose(self, pose, source_size=None):
        return pose_maps(pose, self.shape, radius=4, mode="disk")

    @torch.no_grad()
    def generate_outputs(
        self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses=None
    ) -> dict[str, torch.Tensor]:
        self.calls += 1
        self.condition_poses.append(condition_poses)
        if self.fail_after is not None and self.calls > self.fail_after:
            raise Interrupted(f"simulated crash at batch {self.calls}")
        mask = F.max_pool2d(target_maps.amax(1, keepdim=True).float(), 9, stride=1, padding=4)
        return {"disks": mask.expand_as(condition) * 2 - 1, "paste": condition * mask + (1 - mask) * self.grey}

    @torch.no_grad()
    def generate(self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses=None) -> torch.Tensor:
        return self.generate_outputs(condition, target_maps, condition_poses)["paste"]


def write_checkpoint(path: Path, shape=(128, 64), fingerprint: str | None = None, grey: float = 0.2) -> Path:
    """A ``test-paste`` "checkpoint": one JSON file, as found by ``generators.base``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"generator": NAME, "image_size": list(shape), "dataset_fingerprint": fingerprint, "grey": grey})
    )
    return path


def _load(path: Path, device: str) -> PasteGenerator:
    from generators.base import list_checkpoint_files

    meta_path = list_checkpoint_files(path)[-1][1] if path.is_dir() else path
    meta = json.loads(meta_path.read_text())
    gen = PasteGenerator(tuple(meta["image_size"]), fingerprint=meta.get("dataset_fingerprint"), grey=meta["grey"])
    gen.checkpoint_path = meta_path
    gen.checkpoint_hash = f"test-paste-{meta['grey']}"
    return gen.to(device)


PLUGIN = GeneratorPlugin(name=NAME, load=_load, description="test double: pastes the condition inside the pose disks")
register_generator(NAME, PLUGIN)
