"""Modular-DCM (Rahman & Kocaoglu, ICML 2024): deep causal generative models trained module by module."""
from .generators import *  # noqa: F403
from .generators import COLOUR_NAMES, COLOURS, __all__  # noqa: F401
