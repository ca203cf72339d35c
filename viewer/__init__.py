"""Dorsum: the muscles of the human back in 3D, layer by layer, and multifidus atrophy.

The package is split so that the model never needs VTK or Qt: :mod:`viewer.atlas` (data),
:mod:`viewer.model` (state and events), :mod:`viewer.render` (the only module that draws),
:mod:`viewer.cli` (the ``dorsum`` command).
"""

__version__ = "0.1.0"
