"""Teaching figures: lesson files, composed panels, labels, cross-sections, animations and 3D export.

These modules draw with Pillow and the render adapter; the model and geometry never import them.
"""
