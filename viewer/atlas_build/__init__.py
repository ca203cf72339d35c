"""Build the Dorsum anatomical atlas (bones and back muscles) from the myo-sim models.

Public entry points: :func:`viewer.atlas_build.build.build_atlas` and
:func:`viewer.atlas_build.check.check_atlas`. Importing this package does no work; the heavy
dependencies (mujoco, myo-sim, scikit-image, manifold3d) are imported by the modules that need them.
"""
