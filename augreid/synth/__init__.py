"""Synthetic training sets: training identities rendered in target poses by a generator."""

from augreid.synth.config import SynthConfig, load_synth_config, parse_min_quality
from augreid.synth.run import SynthResult, synthesize

__all__ = ["SynthConfig", "SynthResult", "load_synth_config", "parse_min_quality", "synthesize"]
