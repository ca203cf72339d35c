"""The lumbar region of an imported atlas, rebuilt to match published MRI anatomy.

BodyParts3D's lumbar deep muscles are too small and misplaced for MRI teaching (see the data's
README); this module rebuilds them on the imported vertebrae, sacrum and hip bones.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from viewer.atlas import MeshData


def rebuild_lumbar(bones: Mapping[str, MeshData], muscles: Mapping[str, MeshData],
                   spine: Mapping[str, np.ndarray]) -> dict[str, MeshData]:
    """Meshes that replace or add to the imported ones in the lumbar region.

    Parameters
    ----------
    bones : mapping of structure id to closed bone mesh, RAS mm
        At least ``vertebra_t11`` ... ``vertebra_l5``, ``sacrum``, ``hip_bone_left/right``, the
        twelfth ribs ``rib_12_left/right`` and the discs ``disc_t12_l1`` ... ``disc_l5_s1``.
    muscles : mapping of structure id to muscle mesh as imported (closed), RAS mm
        Every imported muscle, by Dorsum id (``multifidus_left``, ``longissimus_thoracis_right``, ...).
    spine : mapping of vertebra name (``"L4"``) to its body centre, RAS mm

    Returns
    -------
    dict of structure id to mesh
        Replacements for ids in ``muscles`` and meshes for new ids (``thoracolumbar_fascia``).
        The multifidus meshes carry per-vertex ``segment`` (float32) and ``side`` (int32) data.
    """
    return {}
