"""TEST DOUBLE of the PG2 generator interface used by ``augreid synth``.

Not a generator: it pastes the condition image inside the (dilated) target
pose disks and fills the rest with flat grey. It implements exactly the
contract synth relies on (``config``, ``checkpoint_path``, ``checkpoint_hash``,
``render_pose``, ``generate``), so that synth's planning, batching, writing,
resuming and scoring can be tested in seconds without a trained model. The
integration test with a real PG2 checkpoint lives in tests/test_synth.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from augreid.data.pose import pose_maps


class Interrupted(RuntimeError):
    """Raised by the double to simulate a crash in the middle of a run."""


class PasteGenerator(torch.nn.Module):
    def __init__(self, shape=(128, 64), *, fail_after: int | None = None, fingerprint: str | None = None) -> None:
        super().__init__()
        self.config = {
            "image_size": list(shape),
            "pose_map_mode": "disk",
            "pose_radius": 4,
            "dataset_fingerprint": fingerprint,
            "preset": "test-double",
            "step": 0,
            "has_g2": False,
        }
        self.checkpoint_path = "test-double"
        self.checkpoint_hash = "test-double-v1"
        self.grey = torch.nn.Parameter(torch.tensor(0.2))
        self.fail_after = fail_after
        self.calls = 0
        self.eval()

    def render_pose(self, pose):
        return pose_maps(pose, tuple(self.config["image_size"]), radius=4, mode="disk")

    @torch.no_grad()
    def generate(self, condition: torch.Tensor, target_maps: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise Interrupted(f"simulated crash at batch {self.calls}")
        mask = F.max_pool2d(target_maps.amax(1, keepdim=True).float(), 9, stride=1, padding=4)
        return condition * mask + (1 - mask) * self.grey
