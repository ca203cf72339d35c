"""Measuring muscles the way MRI studies do: cross-sectional area at disc levels, and volume.

Pure geometry over numpy arrays; no VTK. A disc plane passes through the midpoint of the two
vertebral body centres and is perpendicular to the chord between them (the local spine axis), the
same planes the atlas builder uses for the per-vertex ``segment`` coordinate, so the plane of disc
L4-L5 is where ``segment == 22.5``.

The cross-section of a closed, outward-wound mesh is computed from the triangles the plane cuts:
each cut triangle contributes one segment, oriented by the triangle's normal so that the muscle
lies to the left when seen from the side the plane normal points to. The signed (shoelace) area of
these segments is the area of the section with its holes subtracted, and chaining them through the
shared mesh edges gives the outline loops. Area and loops therefore always agree.

Public functions used elsewhere (keep them stable): :func:`disc_plane`, :func:`section_loops`,
:func:`cross_sectional_area`, :func:`muscle_section_loops`, :func:`measure_muscle`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from viewer.atlas import Atlas, MeshData
from viewer.atrophy import wasting_of
from viewer.checks import check_option
from viewer.errors import DorsumError
from viewer.fat import GRADE_SCALE, fat_grade, section_composition
from viewer.geometry import (  # noqa: F401 (also this module's public names)
    SIDE_NAMES,
    cross_sectional_area,
    disc_plane,
    mesh_volume,
    section_faces,
    section_loops,
    side_area,
    spine_levels,
    vertex_levels,
    vertex_sides,
)
from viewer.levels import LUMBAR_DISCS, VERTEBRAE, disc_position, level_position, parse_level_list

if TYPE_CHECKING:
    from viewer.atrophy import AtrophyParams
    from viewer.model import SceneModel

#: Only section points whose level coordinate (interpolated from the vertices) lies within this many
#: levels of the disc count, so that an infinite plane cannot pick up a far part of a long muscle.
#: On the atlas, points on a disc plane have exactly the disc's level; the margin absorbs meshes
#: whose level data are coarse.
MM2_PER_CM2 = 100.0
MM3_PER_CM3 = 1000.0


# -- planes and the level coordinate ---------------------------------------------------------------
def body_plane(atlas: Atlas, vertebra: str) -> tuple[np.ndarray, np.ndarray]:
    """Plane of a vertebral body level, e.g. ``"L4"``: through the body centre, along the local spine.

    The normal is the mean of the unit chords to the neighbouring body centres (pointing caudally),
    the axis a slice at mid-body is taken perpendicular to; with one neighbour, that chord.
    """
    index = VERTEBRAE.index(str(vertebra).strip().upper())
    name = VERTEBRAE[index]
    if name not in atlas.spine:
        known = ", ".join(atlas.spine) or "none"
        raise DorsumError(f"levels: the atlas has no spine landmark for {name} (landmarks: {known})")
    centre = np.asarray(atlas.spine[name], float)
    chords = []
    for other, sign in ((index - 1, 1.0), (index + 1, -1.0)):
        if 0 <= other < len(VERTEBRAE) and VERTEBRAE[other] in atlas.spine:
            chord = sign * (centre - np.asarray(atlas.spine[VERTEBRAE[other]], float))
            chords.append(chord / np.linalg.norm(chord))
    if not chords:
        raise DorsumError(f"levels: the atlas has no spine landmark next to {name}, needed for its axis")
    normal = np.sum(chords, axis=0)
    return centre, normal / np.linalg.norm(normal)


def level_plane(atlas: Atlas, level: str) -> tuple[np.ndarray, np.ndarray]:
    """Plane of a disc (``"L4-L5"``, :func:`disc_plane`) or a vertebral body (``"L4"``, :func:`body_plane`)."""
    return disc_plane(atlas, level) if "-" in str(level) else body_plane(atlas, level)


def structures_measured(atlas: Atlas, name: str) -> tuple[Any, ...]:
    """Structures of a muscle (``"longissimus"``) or of a muscle group (``"erector_spinae"``)."""
    found = atlas.structures_of_muscle(name)
    if not found:
        found = tuple(s for s in atlas.structures if s.kind == "muscle" and s.group == name)
    return found


def measurable_names(atlas: Atlas) -> tuple[str, ...]:
    """Muscle names, then the names of the groups muscles belong to (``erector_spinae``)."""
    groups = (s.group for s in atlas.structures if s.kind == "muscle" and s.group not in atlas.muscles)
    return (*atlas.muscles, *dict.fromkeys(groups))


# -- sections -------------------------------------------------------------------------------------
NearLevel = tuple[np.ndarray, float]


# -- volume ---------------------------------------------------------------------------------------
# -- the measurement ------------------------------------------------------------------------------
def _change_percent(value: float, baseline: float) -> float | None:
    return None if baseline <= 0 else 100.0 * (value - baseline) / baseline


def muscle_section_loops(model: SceneModel, muscle: str, disc: str, healthy: bool = False) -> dict[str, list[np.ndarray]]:
    """Displayed outlines of a muscle at a disc level, per side (``"left"``, ``"right"``, ``"midline"``).

    For figures: these are exactly the outlines whose areas :func:`measure_muscle` reports
    (``csa_cm2``; with ``healthy``, the atlas outlines, whose areas are ``baseline_cm2``).

    Returns
    -------
    dict of side name to list of (k, 3) float ndarrays (mm)
        Only sides the muscle has; a side the plane misses maps to an empty list.
    """
    atlas = model.atlas
    check_option("muscle", muscle, measurable_names(atlas))
    plane = level_plane(atlas, disc)
    position = level_position(disc)
    loops: dict[str, list[np.ndarray]] = {}
    for structure in structures_measured(atlas, muscle):
        mesh = atlas.meshes[structure.id]
        levels, sides = vertex_levels(atlas, structure.id), vertex_sides(atlas, structure.id)
        for side in np.unique(sides):
            mask = sides[mesh.faces[:, 0]] == side
            vertices = mesh.vertices if healthy else model.vertices(structure.id)
            found = section_loops(vertices, mesh.faces, *plane, face_mask=mask,
                                  near_level=(levels, position))
            loops.setdefault(SIDE_NAMES[int(side)], []).extend(found)
    return loops


def measure_muscle(source: SceneModel | Atlas, muscle: str = "multifidus",
                   discs: Sequence[str] | str = LUMBAR_DISCS,
                   params: AtrophyParams | None = None) -> dict[str, Any]:
    """CSA per side at disc levels and volume per side of a muscle, on the displayed geometry.

    Parameters
    ----------
    source : SceneModel or Atlas
        A model is measured as displayed (its current, possibly atrophied vertices). An atlas is
        measured healthy, or with ``params`` applied.
    muscle : str
        Muscle name in the atlas (``dorsum info`` lists them), or a muscle group such as
        ``erector_spinae`` (its muscles' areas add up).
    discs : sequence of str or str
        Disc levels such as ``("L4-L5", "L5-S1")`` or ``"L4-L5,L5-S1"``, and/or vertebral-body
        levels such as ``"L4,L5"`` (plane through the body centre, see :func:`body_plane`).
    params : AtrophyParams, optional
        Atrophy to apply first (to a fresh model; a given model is not changed).

    Returns
    -------
    dict
        JSON-ready::

            {"muscle": "multifidus", "atrophy": {...} | None,
             "grade_scale": "Kjaer 3-grade (...)",
             "levels": {"L4-L5": {"left": {"csa_cm2": x, "baseline_cm2": y, "change_percent": z,
                                           "total_cm2": t, "lean_cm2": l, "fat_percent": f, "grade": g},
                                  "right": {...}}, ...},
             "volume_cm3": {"left": {"volume_cm3": x, "baseline_cm3": y, "change_percent": z},
                            "right": {...}, "total": {...}}}

        Areas in cm² (the atlas' mm² / 100), volumes in cm³; ``change_percent`` is None when the
        baseline is zero (the plane misses that side).
    """
    from viewer.model import SceneModel  # deferred: the model imports psygnal

    model = source if isinstance(source, SceneModel) else SceneModel(source)
    atlas = model.atlas
    check_option("muscle", muscle, measurable_names(atlas))
    try:
        disc_names = parse_level_list(discs if isinstance(discs, str) else ",".join(discs))
    except DorsumError as exc:
        message = str(exc)
        raise DorsumError(message if message.startswith("levels:") else f"levels: {message}") from None
    if params is not None:
        from viewer.atrophy import apply_atrophy  # deferred: atrophy builds on this module

        model = SceneModel(atlas)
        apply_atrophy(model, params)
    structures = structures_measured(atlas, muscle)
    levels: dict[str, dict[str, dict[str, float | None]]] = {}
    for disc in disc_names:
        plane = level_plane(atlas, disc)
        position = level_position(disc)
        shown: dict[str, float] = {}
        healthy: dict[str, float] = {}
        for structure in structures:
            mesh = atlas.meshes[structure.id]
            vl, vs = vertex_levels(atlas, structure.id), vertex_sides(atlas, structure.id)
            for side in np.unique(vs):
                name = SIDE_NAMES[int(side)]
                args = (mesh, vl, vs, plane, position, int(side))
                shown[name] = shown.get(name, 0.0) + side_area(model.vertices(structure.id), *args)
                healthy[name] = healthy.get(name, 0.0) + side_area(mesh.vertices, *args)
        levels[disc] = {
            name: {"csa_cm2": shown[name] / MM2_PER_CM2, "baseline_cm2": healthy[name] / MM2_PER_CM2,
                   "change_percent": _change_percent(shown[name], healthy[name]),
                   **_composition(wasting_of(model.atrophy, muscle), muscle, position, name, healthy[name], shown[name])}
            for name in SIDE_NAMES if name in shown
        }
    return {
        "muscle": muscle,
        "atrophy": _wasting_dict(wasting_of(model.atrophy, muscle)),
        "grade_scale": GRADE_SCALE,
        "levels": levels,
        "volume_cm3": _volumes(model, structures),
    }


def _wasting_dict(params: AtrophyParams | None) -> dict[str, object] | None:
    return params.as_dict() if params is not None else None


def _composition(params: AtrophyParams | None, muscle: str, position: float, side: str, healthy_mm2: float,
                 shown_mm2: float) -> dict[str, float | int]:
    """Total CSA inside the fascial boundary, lean CSA, fat percent and grade of one section (see
    :func:`viewer.fat.section_composition`)."""
    wasting = params is not None and params.muscle == muscle
    asked = params.fat_at(position, SIDE_NAMES.index(side)) if wasting else 0.0
    found = section_composition(healthy_mm2, shown_mm2, asked, bool(params.retracted) if wasting else False)
    fat_percent = 100.0 * found.fat_fraction
    return {"total_cm2": found.total_mm2 / MM2_PER_CM2, "lean_cm2": found.lean_mm2 / MM2_PER_CM2,
            "fat_percent": fat_percent, "grade": fat_grade(fat_percent)}


def _volumes(model: SceneModel, structures: Sequence[Any]) -> dict[str, dict[str, float | None]]:
    shown: dict[str, float] = {}
    healthy: dict[str, float] = {}
    for structure in structures:
        mesh = model.atlas.meshes[structure.id]
        for name in (structure.side, "total"):
            shown[name] = shown.get(name, 0.0) + mesh_volume(model.vertices(structure.id), mesh.faces)
            healthy[name] = healthy.get(name, 0.0) + mesh_volume(mesh.vertices, mesh.faces)
    order = [*SIDE_NAMES, "total"]
    return {name: {"volume_cm3": shown[name] / MM3_PER_CM3, "baseline_cm3": healthy[name] / MM3_PER_CM3,
                   "change_percent": _change_percent(shown[name], healthy[name])}
            for name in sorted(shown, key=order.index)}
