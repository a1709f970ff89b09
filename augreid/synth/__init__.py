"""Synthetic training sets: training identities rendered in target poses by a generator."""

from augreid.lazy import lazy_exports

_EXPORTS = {
    "SynthConfig": "augreid.synth.config",
    "SynthResult": "augreid.synth.run",
    "load_synth_config": "augreid.synth.config",
    "parse_min_quality": "augreid.synth.config",
    "synthesize": "augreid.synth.run",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["SynthConfig", "SynthResult", "load_synth_config", "parse_min_quality", "synthesize"]
