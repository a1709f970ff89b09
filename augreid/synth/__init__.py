"""Synthetic training sets: training identities rendered in target poses by a generator."""

from augreid.lazy import lazy_exports

_EXPORTS = {
    "ControlResult": "augreid.synth.control",
    "SynthConfig": "augreid.synth.config",
    "SynthResult": "augreid.synth.run",
    "copy_control": "augreid.synth.control",
    "load_synth_config": "augreid.synth.config",
    "parse_min_quality": "augreid.synth.config",
    "synthesize": "augreid.synth.run",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ControlResult",
    "SynthConfig",
    "SynthResult",
    "copy_control",
    "load_synth_config",
    "parse_min_quality",
    "synthesize",
]
