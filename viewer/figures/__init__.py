"""Teaching figures: lesson files, composed panels, labels, cross-sections, animations and 3D export.

These modules draw with Pillow and the render adapter; the model and geometry never import them.
"""

# Here rather than in ``animation`` so that the command line can list them without loading VTK.
ANIMATION_KINDS = ("atrophy", "turntable", "peel", "scenario")
ANIMATION_SUFFIXES = (".gif", ".mp4")
