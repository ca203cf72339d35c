"""The lumbar region of an imported atlas, rebuilt to match published MRI anatomy.

BodyParts3D's lumbar deep muscles are too small and misplaced for MRI teaching (see the data's
README); this module rebuilds them on the imported vertebrae, sacrum and hip bones, from T12 to
the sacrum (``docs/atlas.md``, "The lumbar region of an imported BodyParts3D atlas").

How: a stack of planes follows the spine, one every ~1 mm, each through the spine curve and
perpendicular to the local spine axis, so the plane at a disc level *is* the disc plane that
:func:`viewer.measure.disc_plane` measures in (and the plane at a body level is the body plane).
The bones are voxelised once and sampled in every plane. In each plane, each muscle is grown on
each side from an anatomical seed (the groove beside the spinous process for the multifidus,
lateral to it for the erector spinae, beside the vertebral body for psoas, in front of the
transverse processes for quadratus lumborum) over the pixels its bony walls allow, nearest first,
until it holds the area published for that level; labels are exclusive, so no muscle enters bone
or another muscle. The label stack is smoothed and meshed (marching cubes in plane coordinates,
mapped back to the body), simplified, given a faint fascicle relief, and joined to the
BodyParts3D parts above T12 (and psoas below S1). Measured CSAs are then compared with the
targets and the targets corrected once, so that the drawn meshes measure what the studies report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from viewer.atlas import MeshData
from viewer.geometry import spine_levels
from viewer.levels import VERTEBRAE
from viewer.measure import cross_sectional_area

#: Published healthy adult CSA per side (cm²) at level coordinates (L1 = 19 ... S1 = 24, a disc
#: half-way). Sources in docs/atlas.md: multifidus from Hides (L2-L5 vertebral levels), Stokes 2005,
#: Danneels 2000, Fortin and Niemelainen 2011 (disc levels); erector spinae (longissimus +
#: iliocostalis), quadratus lumborum and psoas major from Ivanac 2026 (healthy controls) and Fortin.
TARGETS_CM2: dict[str, tuple[tuple[float, float], ...]] = {
    "multifidus": ((17.55, 0.9), (18.0, 1.4), (18.5, 1.9), (19.0, 2.3), (19.5, 2.7), (20.0, 3.3), (20.5, 4.0),
                   (21.0, 5.0), (21.5, 6.3), (22.0, 7.3), (22.5, 8.2), (23.0, 8.9), (23.5, 9.6), (24.0, 9.0),
                   (24.5, 7.4), (25.0, 5.4), (25.5, 3.4), (26.0, 1.6), (26.35, 0.4)),
    "erector_spinae": ((17.55, 15.0), (18.0, 17.0), (18.5, 19.0), (19.5, 21.5), (20.5, 22.0), (21.0, 21.3),
                       (21.5, 20.3), (22.0, 18.5), (22.5, 16.5), (23.0, 13.5), (23.5, 7.5), (24.0, 4.5),
                       (24.5, 2.6), (25.0, 1.4), (25.4, 0.5)),
    "quadratus_lumborum": ((17.8, 0.4), (18.5, 1.8), (19.5, 3.4), (20.5, 5.2), (21.5, 6.8), (22.0, 6.4),
                           (22.5, 4.8), (23.0, 2.2), (23.3, 0.4)),
    "psoas_major": ((17.8, 0.4), (18.5, 1.6), (19.5, 4.4), (20.5, 9.9), (21.5, 14.6), (22.5, 17.7),
                    (23.5, 15.7), (24.4, 15.0)),
}
#: Tilt of the longissimus/iliocostalis boundary (mm of |x| per mm forward).
SPLIT_TILT = 0.4
#: Share of the erector spinae section that is longissimus (the medial part); the rest is
#: iliocostalis lumborum, which below L4 thins into the aponeurosis on the iliac crest.
LONGISSIMUS_SHARE = ((17.5, 0.6), (21.5, 0.62), (22.5, 0.7), (23.0, 0.85), (23.4, 1.0))
#: Level coordinates of the rebuilt stack (T11-T12 disc to the lower sacrum).
FIRST_LEVEL, LAST_LEVEL = 17.55, 26.4
#: Where the rebuilt parts meet the BodyParts3D parts: above T12's centre they are BodyParts3D's.
JOIN_LEVEL = 18.0
#: Below this level psoas is BodyParts3D's again (it leaves the stack for the pelvis).
PSOAS_JOIN_LEVEL = 24.0
#: Pixel size in the planes and plane spacing, mm.
PIXEL_MM = 0.8
PLANE_MM = 1.0
#: Plane extent: half-width (mm) and the posterior/anterior reach from the spine curve (mm).
HALF_WIDTH_MM, POSTERIOR_MM, ANTERIOR_MM = 120.0, 110.0, 60.0
#: Muscles keep this far (mm) from the midline: the spinous processes and the ligaments between
#: them form a bare ridge that no muscle of either side covers.
MIDLINE_GAP_MM = 2.5
#: The erector spinae starts this fraction of the multifidus' half-width from the midline.
ES_MEDIAL_SHARE = 0.7
#: The erector spinae grows this many times wider than deep (where bone and neighbours allow).
ES_ASPECT = 1.7
#: The erector spinae reaches no farther forward than this (mm) in front of the transverse-process line,
#: by level coordinate: from L3-L4 down it lies behind the line, wider than deep (above, it also
#: fills the space beside the twelfth rib).
ES_FRONT_MM = ((20.5, 4.0), (21.5, -2.0))
#: Behind the ilium, the lateral limit of the back muscles widens by this much per mm.
ILIAC_SLOPE = 1.5
#: The back of the paraspinal mass curves forward laterally: the limit moves this much (mm) forward per mm² of |x|.
BACK_CURVATURE = 0.0022
#: Muscles reach this far (mm) behind the spinous tips, no farther, by level coordinate: the spinous
#: processes lie in a furrow between the paraspinal masses, deepest at L1-L2 and from L5 down (the
#: short L5 spinous process and the median sacral crest), following the room made below.
BACK_MARGIN_MM = ((18.0, 9.0), (18.8, 14.0), (19.5, 16.0), (20.5, 13.0), (21.5, 10.0), (22.0, 10.0),
                  (23.0, 13.0), (23.5, 18.0))
#: BodyParts3D lays latissimus dorsi's lumbar aponeurosis and serratus posterior inferior close over
#: the lumbar spinous tips, leaving the erector spinae too little room (none at L5-S1); they are moved
#: this far (mm) backward, by level coordinate, ...
ROOM_MM = ((18.0, 0.0), (18.8, 6.0), (19.5, 9.0), (20.5, 6.0), (21.5, 3.0), (22.0, 4.0), (23.0, 10.0),
           (23.5, 13.0), (24.0, 13.0), (25.0, 7.0), (26.0, 0.0))
MOVED_PREFIXES = ("latissimus_dorsi", "serratus_posterior_inferior")
#: ... over their medial part: fully from this |x| (mm) outward, tapering to nothing at the midline
#: (where it attaches to the spinous processes) and at ROOM_LATERAL_MM (the iliac crest and flank).
ROOM_MEDIAL_MM, ROOM_LATERAL_MM = 22.0, 110.0
#: Half-thickness (mm) of the interspinous/supraspinous ligament sheet on the midline.
LIGAMENT_HALF_MM = 1.5
#: Smoothing of the label stack before meshing (pixels in-plane, planes along the spine).
SMOOTH_SIGMA = (2.2, 2.2, 2.5)
#: Fascicle relief: amplitude (mm) and spacing (mm) of the ridges along the fascicles.
RELIEF_MM, RELIEF_PERIOD_MM = 0.6, 5.0
#: Largest surface deviation allowed when simplifying, mm.
SIMPLIFY_MM = 0.2
#: A second pass corrects the targets when a measured area is off by more than this fraction.
CALIBRATION_TOLERANCE = 0.04
#: The fascia sheet takes every this many planes and columns (its surface is smooth).
FASCIA_STRIDE = 3
#: Thickness of the thoracolumbar fascia sheet, mm.
FASCIA_MM = 1.2

MUSCLE_LABELS = {"multifidus": 1, "longissimus": 2, "iliocostalis": 3, "quadratus_lumborum": 4,
                 "psoas_major": 5}
IDS = {"multifidus": "multifidus", "longissimus": "longissimus_thoracis", "iliocostalis": "iliocostalis_lumborum",
       "quadratus_lumborum": "quadratus_lumborum", "psoas_major": "psoas_major"}
BONE_IDS = ("vertebra_t10", "vertebra_t11", "vertebra_t12", "vertebra_l1", "vertebra_l2", "vertebra_l3",
            "vertebra_l4", "vertebra_l5", "sacrum", "hip_bone_left", "hip_bone_right", "rib_11_left",
            "rib_11_right", "rib_12_left", "rib_12_right", "disc_t11_t12", "disc_t12_l1", "disc_l1_l2",
            "disc_l2_l3", "disc_l3_l4", "disc_l4_l5", "disc_l5_s1", "coccyx")
#: Imported muscles that lie over the rebuilt ones (latissimus dorsi's aponeurosis, serratus posterior
#: inferior, gluteus maximus): obstacles in the label stack, so the rebuilt muscles stay deep to them.
OBSTACLE_PREFIXES = ("latissimus_dorsi", "serratus_posterior_inferior", "gluteus_maximus")
OBSTACLE = 5
#: Deep muscles that may cross the lumbar midline or lie in the rebuilt muscles: carved.
CARVED_PREFIXES = ("spinalis", "semispinalis", "rotatores", "interspinales", "intertransversari")


# -- the frame of planes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """Planes along the spine: level coordinate, origin and axes of each (all (n, 3) mm / unit)."""

    levels: np.ndarray
    origins: np.ndarray
    normals: np.ndarray
    rights: np.ndarray
    anteriors: np.ndarray
    u: np.ndarray  # (nu,) in-plane coordinate toward the patient's right, mm
    v: np.ndarray  # (nv,) in-plane coordinate toward anterior, mm

    def to_world(self, s_index: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """World points (k, 3) of fractional plane indices and in-plane coordinates (mm)."""
        i = np.clip(np.floor(s_index).astype(int), 0, len(self.levels) - 2)
        t = (s_index - i)[:, None]

        def lerp(a: np.ndarray) -> np.ndarray:
            return (1 - t) * a[i] + t * a[i + 1]

        return lerp(self.origins) + u[:, None] * lerp(self.rights) + v[:, None] * lerp(self.anteriors)

    def plane_points(self, k: int) -> np.ndarray:
        """World points (nu, nv, 3) of the pixels of plane ``k``."""
        return (self.origins[k][None, None, :] + self.u[:, None, None] * self.rights[k][None, None, :]
                + self.v[None, :, None] * self.anteriors[k][None, None, :])


def _centres(spine: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    names = sorted((n for n in spine if n in VERTEBRAE), key=VERTEBRAE.index)
    return (np.array([VERTEBRAE.index(n) for n in names], float),
            np.array([np.asarray(spine[n], float) for n in names]))


def spine_point(levels: np.ndarray, spine: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Point on the spine curve and unit axis (pointing caudally) at level coordinates, each (n, 3).

    The curve joins the body centres by straight chords (so a disc level lies at the midpoint of
    its chord) and runs on along the last chord below S1. The axis is the chord at a disc level and
    blends linearly between neighbouring chords' midpoints (the mean at a body centre).
    """
    index, centres = _centres(spine)
    chords = np.diff(centres, axis=0)
    units = chords / np.linalg.norm(chords, axis=1, keepdims=True)
    steps = np.diff(index)
    levels = np.asarray(levels, float)
    k = np.clip(np.searchsorted(index, levels, side="right") - 1, 0, len(chords) - 1)
    points = centres[k] + ((levels - index[k]) / steps[k])[:, None] * chords[k]
    middles = 0.5 * (index[:-1] + index[1:])
    axes = np.column_stack([np.interp(levels, middles, units[:, j]) for j in range(3)])
    return points, axes / np.linalg.norm(axes, axis=1, keepdims=True)


def level_coordinates(points: np.ndarray, spine: Mapping[str, np.ndarray]) -> np.ndarray:
    """Level coordinate (C1 = 0 ... S1 = 24) of points, (n,), for the per-vertex ``segment`` data.

    A point in front of the lordosis, between two chords, takes the nearer chord.
    """
    return spine_levels(points, spine, nearest_chord=True)


def make_frame(spine: Mapping[str, np.ndarray]) -> Frame:
    index, centres = _centres(spine)
    level_mm = float(np.mean(np.linalg.norm(np.diff(centres, axis=0), axis=1) / np.diff(index)))
    count = int(round((LAST_LEVEL - FIRST_LEVEL) * level_mm / PLANE_MM)) + 1
    levels = np.linspace(FIRST_LEVEL, LAST_LEVEL, count)
    origins, normals = spine_point(levels, spine)
    rights = np.array([1.0, 0.0, 0.0])[None, :] - normals[:, :1] * normals
    rights /= np.linalg.norm(rights, axis=1, keepdims=True)
    anteriors = np.cross(normals, rights)  # normal points caudally: right x down... fix the sign below
    anteriors *= np.sign(anteriors[:, 1:2])
    u = np.arange(-HALF_WIDTH_MM, HALF_WIDTH_MM + 1e-6, PIXEL_MM)
    v = np.arange(-POSTERIOR_MM, ANTERIOR_MM + 1e-6, PIXEL_MM)
    return Frame(levels, origins, normals, rights, anteriors, u, v)


# -- bones in the planes -----------------------------------------------------------------------------
def _surface_points(vertices: np.ndarray, faces: np.ndarray, spacing: float) -> np.ndarray:
    """Points covering a triangle surface no farther apart than ``spacing`` (deterministic)."""
    tri = vertices[faces]
    longest = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
    splits = np.clip(np.ceil(longest / spacing).astype(int), 1, 64)
    out = [vertices]
    for n in np.unique(splits):
        group = tri[splits == n]
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = i + j <= n
        a, b = (i[keep] / n), (j[keep] / n)
        weights = np.column_stack([1 - a - b, a, b])  # (w, 3)
        out.append(np.einsum("wk,tkd->twd", weights, group).reshape(-1, 3))
    return np.concatenate(out)


def _solid(shell: np.ndarray) -> np.ndarray:
    """Voxels inside a voxelised bone surface. A bone whose surface has holes (BodyParts3D's hip
    bones are open) does not fill in 3D; it is filled slice by slice instead, where its outline closes."""
    closed = ndimage.binary_closing(shell, iterations=1)
    filled = ndimage.binary_fill_holes(closed)
    layers = np.zeros_like(closed)
    for k in range(closed.shape[2]):
        layers[:, :, k] = ndimage.binary_fill_holes(closed[:, :, k])
    return filled | layers


def bone_stack(frame: Frame, bones: Mapping[str, MeshData],
               others: Mapping[str, MeshData] | None = None) -> np.ndarray:
    """(ns, nu, nv) uint8: 0 free, 1 vertebra or sacrum, 2 hip bone, 3 rib, 4 disc, 5 another
    (superficial) muscle the rebuilt ones must stay deep to, in every plane."""
    corners = np.concatenate([frame.plane_points(k)[[0, 0, -1, -1], [0, -1, 0, -1]]
                              for k in (0, len(frame.levels) // 2, len(frame.levels) - 1)])
    low, high = corners.min(axis=0) - 5.0, corners.max(axis=0) + 5.0
    pitch = 1.0
    shape = tuple(np.ceil((high - low) / pitch).astype(int) + 1)
    world = np.zeros(shape, dtype=np.uint8)
    sources = [(name, bones[name]) for name in BONE_IDS if name in bones]
    sources += [(name, mesh) for name, mesh in (others or {}).items() if name.startswith(OBSTACLE_PREFIXES)]
    for name, mesh in sources:
        code = (4 if name.startswith("disc") else 2 if name.startswith("hip") else 3 if name.startswith("rib")
                else 1 if name in BONE_IDS else OBSTACLE)
        points = _surface_points(mesh.vertices, mesh.faces, 0.5 * pitch)
        cells = np.floor((points - low) / pitch).astype(int)
        inside = np.all((cells >= 0) & (cells < np.array(shape)), axis=1)
        cells = cells[inside]
        if not len(cells):
            continue
        lo, hi = cells.min(axis=0), cells.max(axis=0) + 1
        box = np.zeros(tuple(hi - lo + 4), dtype=bool)
        box[tuple((cells - lo + 2).T)] = True
        box = _solid(box)
        sl = tuple(slice(max(a - 2, 0), min(b + 2, n)) for a, b, n in zip(lo, hi, shape))
        cut = tuple(slice(s.start - (a - 2), s.stop - (a - 2)) for s, a in zip(sl, lo))
        region = world[sl]
        region[box[cut] & (region == 0)] = code
    stack = np.zeros((len(frame.levels), len(frame.u), len(frame.v)), dtype=np.uint8)
    for k in range(len(frame.levels)):
        cells = (frame.plane_points(k) - low) / pitch
        stack[k] = ndimage.map_coordinates(world, cells.reshape(-1, 3).T, order=0, mode="constant",
                                           cval=0).reshape(stack.shape[1:])
    return stack


# -- growing the muscles plane by plane ----------------------------------------------------------------
def _interp(table: tuple[tuple[float, float], ...], levels: np.ndarray, below: bool = False) -> np.ndarray:
    """``table`` (level, value) at ``levels``: its first value cranial to it; caudal to it 0, or its last value
    with ``below``."""
    x, y = np.array(table).T
    return np.interp(levels, x, y, left=y[0], right=y[-1] if below else 0.0)


def _first_index(mask: np.ndarray, default: int) -> np.ndarray:
    """Index of the first True along the last axis (``default`` where none)."""
    has = mask.any(axis=-1)
    return np.where(has, np.argmax(mask, axis=-1), default)


def _grow(region: np.ndarray, uu: np.ndarray, vv: np.ndarray, seed: tuple[float, float], pixels: int,
          scale: tuple[float, float]) -> np.ndarray:
    """The ``pixels`` pixels of ``region`` connected to ``seed`` and nearest to it (scaled metric)."""
    out = np.zeros_like(region)
    if pixels <= 0 or not region.any():
        return out
    labels, count = ndimage.label(region)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    # Start in the nearest pocket that can hold the muscle (not a crevice between two processes).
    roomy = sizes >= min(pixels, sizes.max())
    d = ((uu - seed[0]) / scale[0]) ** 2 + ((vv - seed[1]) / scale[1]) ** 2
    d_region = np.where(roomy[labels], d, np.inf)
    start = np.unravel_index(np.argmin(d_region), region.shape)
    component = labels == labels[start]
    idx = np.flatnonzero(component)
    if len(idx) > pixels:
        idx = idx[np.argpartition(d.ravel()[idx], pixels - 1)[:pixels]]
    out.ravel()[idx] = True
    return out


def _medial_to_ilium(hip: np.ndarray, uu: np.ndarray, sign: float) -> np.ndarray:
    """(nu, nv) bool: pixels medial to the ilium on one side (all, where the plane misses the hip bone).

    Per row (v), the limit is the hip bone's most medial pixel; rows behind the bone keep the limit
    of its most posterior row, so the back muscles stay in the bowl between sacrum and ilium.
    """
    side_hip = hip & (sign * uu > 0)
    rows = side_hip.any(axis=0)
    if not rows.any():
        return np.ones_like(hip)
    limit = np.where(side_hip, np.abs(uu), np.inf).min(axis=0)  # (nv,)
    first = int(np.argmax(rows))
    # Behind the bone the limit opens outward (the contour of the posterior iliac crest and the buttock).
    limit[:first] = limit[first] + ILIAC_SLOPE * PIXEL_MM * (first - np.arange(first))
    return np.abs(uu) < limit[None, :]


@dataclass(frozen=True)
class Landmarks:
    """Per plane and column: where the posterior bony wall lies (pixel index along v), and per plane the
    transverse-process line, the spinous-process tip and the vertebral body's lateral edge (mm)."""

    floor: np.ndarray  # (ns, nu) int
    tp_v: np.ndarray  # (ns,) mm
    body_edge: np.ndarray  # (ns,) mm, half-width of body/disc
    body_back: np.ndarray  # (ns,) mm
    tips: np.ndarray  # (ns,) mm: the line of the spinous tips and the median sacral crest
    back_line: np.ndarray  # (ns,) mm: muscles stay in front of it (the tips, less a margin)


def landmarks(frame: Frame, stack: np.ndarray) -> Landmarks:
    ns, nu, nv = stack.shape
    spine_bone = (stack == 1) | (stack == 4)
    any_bone = (stack > 0) & (stack != OBSTACLE)
    first = _first_index(any_bone, nv)
    # Laminae shingle: a column open at one plane (between two laminae) takes the wall of its neighbours.
    window = max(3, int(round(7.0 / PLANE_MM)))
    envelope = ndimage.minimum_filter1d(first, window, axis=0)
    floor = np.minimum(first, envelope + int(round(3.0 / PIXEL_MM)))
    uu = np.abs(frame.u)[:, None]
    vv = frame.v[None, :]
    tp = np.full(ns, np.nan)
    edge = np.full(ns, np.nan)
    back = np.full(ns, np.nan)
    tips = np.full(ns, np.nan)
    for k in range(ns):
        spinous = spine_bone[k] & (uu < 4.0) & (vv < -30.0)
        if spinous.any():
            tips[k] = vv[0, np.flatnonzero(spinous.any(axis=0))].min()
        plane = spine_bone[k]
        # Body or disc: spine bone within 15 mm of the curve, anterior to it; its half-width and back wall.
        core = plane & (vv > -12) & (vv < 25)
        if core.any():
            rows = np.flatnonzero(core.any(axis=1))
            edge[k] = np.abs(frame.u[rows]).max() if np.abs(frame.u[rows]).max() < 45 else np.nan
            central = core & (uu < 6)
            if central.any():
                back[k] = vv[0, np.flatnonzero(central.any(axis=0))].min()
        lateral = (stack[k] == 1) & (uu > 30) & (vv < -5)
        if lateral.any():
            tp[k] = float(np.average(np.broadcast_to(vv, lateral.shape)[lateral]))
    levels = frame.levels
    for arr, fallback in ((tp, -30.0), (edge, 25.0), (back, -15.0)):
        good = np.isfinite(arr)
        if good.sum() >= 2:
            arr[:] = np.interp(levels, levels[good], arr[good])
        else:
            arr[:] = fallback
        arr[:] = ndimage.gaussian_filter1d(arr, 6.0, mode="nearest")
    # Between two spinous processes the line follows the tips above and below (windowed minimum).
    tips = np.where(np.isfinite(tips), tips, np.nanmax(tips) if np.isfinite(tips).any() else -70.0)
    tips = ndimage.minimum_filter1d(tips, max(3, int(round(24.0 / PLANE_MM))), mode="nearest")
    tips = ndimage.gaussian_filter1d(tips, 8.0, mode="nearest")
    return Landmarks(floor, tp, edge, back, tips, tips - _interp(BACK_MARGIN_MM, levels, below=True))


def grow_labels(frame: Frame, stack: np.ndarray, marks: Landmarks,
                targets: Mapping[str, np.ndarray]) -> np.ndarray:
    """(ns, nu, nv) int8 labels (:data:`MUSCLE_LABELS`, and -1 for the midline ligament) in every plane."""
    ns, nu, nv = stack.shape
    area = PIXEL_MM ** 2
    uu, vv = np.meshgrid(frame.u, frame.v, indexing="ij")
    labels = np.zeros(stack.shape, dtype=np.int8)
    share = _interp(LONGISSIMUS_SHARE, frame.levels, below=True)
    es_front = _interp(ES_FRONT_MM, frame.levels, below=True)
    v_index = np.arange(nv)[None, :]
    for k in range(ns):
        # One pixel of clearance keeps the smoothed, relief-textured surfaces out of the bone.
        bone = ndimage.binary_dilation(stack[k] > 0) | ndimage.binary_dilation(stack[k] == OBSTACLE, iterations=3)
        back = marks.back_line[k] + BACK_CURVATURE * uu ** 2
        behind = (v_index < marks.floor[k][:, None]) & (vv < marks.tp_v[k] + 4.0) & (vv > back) & ~bone
        in_front = ~bone & (vv > marks.tp_v[k] + 3.0)
        taken = bone.copy()
        plane = labels[k]
        # The interspinous/supraspinous ligament: a midline sheet behind the arch, to the spinous tips.
        midline = np.abs(uu) <= LIGAMENT_HALF_MM
        if frame.levels[k] <= 24.0:
            plane[midline & behind & (vv >= marks.tips[k] - 1.5)] = -1
        for sign, side in ((-1.0, 0), (1.0, 1)):
            lateral = sign * uu >= MIDLINE_GAP_MM
            pelvis = _medial_to_ilium(stack[k] == 2, uu, sign)
            # Multifidus: from the groove between spinous process and lamina, 12 mm from the midline.
            col = int(np.argmin(np.abs(frame.u - sign * 12.0)))
            seed_v = frame.v[max(int(marks.floor[k, col]) - 1, 0)] - 5.0
            region = behind & lateral & pelvis & ~taken
            mf = _grow(region, uu, vv, (sign * 12.0, seed_v), int(targets["multifidus"][k] / area), (1.2, 1.0))
            plane[mf] = MUSCLE_LABELS["multifidus"]
            taken |= mf
            # Erector spinae: lateral to the multifidus, behind the transverse processes, wider than deep.
            es_pixels = int(targets["erector_spinae"][k] / area)
            if es_pixels > 0:
                if mf.any():
                    reach = np.abs(uu[mf]).max()
                    centre_v = float(vv[mf].mean())
                else:
                    reach, centre_v = 15.0, seed_v
                half = np.sqrt(es_pixels * area * 1.7 / np.pi)
                seed = (sign * (reach + 0.55 * half), centre_v)
                # The erector spinae lies lateral to the multifidus, not over it (the aponeurosis is the fascia's).
                beside = np.abs(uu) >= ES_MEDIAL_SHARE * reach
                shallow = vv < marks.tp_v[k] + es_front[k]
                es = _grow(behind & shallow & lateral & pelvis & beside & ~taken, uu, vv, seed, es_pixels,
                           (ES_ASPECT, 1.0))
                if es.any():
                    # The boundary between longissimus and iliocostalis runs obliquely, forward and medially.
                    rank = np.abs(uu) + SPLIT_TILT * (vv - centre_v)
                    order = np.sort(rank[es])
                    split = order[min(int(share[k] * len(order)), len(order) - 1)]
                    plane[es & (rank <= split)] = MUSCLE_LABELS["longissimus"]
                    plane[es & (rank > split)] = MUSCLE_LABELS["iliocostalis"]
                    taken |= es
            # Psoas major: beside the vertebral body and disc, in front of the transverse processes.
            ps = _grow(in_front & lateral & ~taken, uu, vv, (sign * (marks.body_edge[k] + 14.0), -3.0),
                       int(targets["psoas_major"][k] / area), (1.0, 1.0))
            plane[ps] = MUSCLE_LABELS["psoas_major"]
            taken |= ps
            # Quadratus lumborum: lateral to psoas, in front of the transverse processes, flat.
            reach = np.abs(uu[ps]).max() if ps.any() else marks.body_edge[k] + 25.0
            ql = _grow(in_front & lateral & ~taken & (vv < marks.tp_v[k] + 30.0), uu, vv,
                       (sign * (reach + 14.0), marks.tp_v[k] + 9.0),
                       int(targets["quadratus_lumborum"][k] / area), (1.8, 1.0))
            plane[ql] = MUSCLE_LABELS["quadratus_lumborum"]
            taken |= ql
    return labels


# -- meshes -------------------------------------------------------------------------------------------
def _mesh_label(frame: Frame, mask: np.ndarray, sides: bool) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Closed surfaces of a boolean stack: (side, vertices (n, 3) world mm, faces (m, 3)) per side."""
    from skimage.measure import marching_cubes

    out = []
    half = len(frame.u) // 2
    parts = ((0, slice(0, half)), (1, slice(half, None))) if sides else ((-1, slice(None)),)
    for side, cols in parts:
        sub = np.zeros_like(mask)
        sub[:, cols, :] = mask[:, cols, :]
        if not sub.any():
            continue
        idx = np.argwhere(sub)
        lo = np.maximum(idx.min(axis=0) - 4, 0)
        hi = np.minimum(idx.max(axis=0) + 5, np.array(mask.shape))
        box = sub[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.float32)
        box = np.pad(box, 3)
        field = ndimage.gaussian_filter(box, (SMOOTH_SIGMA[2], SMOOTH_SIGMA[0], SMOOTH_SIGMA[1]))
        verts, faces, _, _ = marching_cubes(field, 0.5)
        verts = verts - 3 + lo
        s_index = verts[:, 0]
        u = np.interp(verts[:, 1], np.arange(len(frame.u)), frame.u)
        v = np.interp(verts[:, 2], np.arange(len(frame.v)), frame.v)
        world = frame.to_world(s_index, u, v)
        faces = faces[:, ::-1]  # marching cubes in (s, u, v) index space, a left-handed map: keep outward
        out.append((side, world, faces.astype(np.int64)))
    return out


def _clean(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest connected piece, outward wound, simplified (manifold3d when available)."""
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=True)
    pieces = mesh.split(only_watertight=False)
    if len(pieces) > 1:
        mesh = max(pieces, key=lambda p: len(p.faces))
    if mesh.volume < 0:
        mesh.invert()
    mesh = _simplify(mesh)
    return np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64)


def _manifold(mesh):
    try:
        import manifold3d
    except ImportError:  # pragma: no cover - the import extra brings it
        return None
    solid = manifold3d.Manifold(manifold3d.Mesh(vert_properties=np.asarray(mesh.vertices, np.float32),
                                                tri_verts=np.asarray(mesh.faces, np.uint32)))
    return solid if solid.status() == manifold3d.Error.NoError else None


def _from_manifold(solid):
    import trimesh

    out = solid.to_mesh()
    return trimesh.Trimesh(np.asarray(out.vert_properties)[:, :3].astype(float), np.asarray(out.tri_verts),
                           process=True)


def _simplify(mesh):
    solid = _manifold(mesh)
    return mesh if solid is None else _from_manifold(solid.simplify(SIMPLIFY_MM))


def _relief(vertices: np.ndarray, faces: np.ndarray, direction_of) -> np.ndarray:
    """Vertices (n, 3) moved along their normals by a ridge pattern running along the fascicles.

    ``direction_of`` maps points to a coordinate across the fascicles (mm); the ridges are its level sets.
    """
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    normals = np.asarray(mesh.vertex_normals)
    across = direction_of(vertices)
    phase = 2 * np.pi * across / RELIEF_PERIOD_MM
    bumps = RELIEF_MM * (np.sin(phase) + 0.35 * np.sin(2.3 * phase + 1.0))
    return vertices + bumps[:, None] * normals


def _trim(mesh: MeshData, origin: np.ndarray, normal: np.ndarray):
    """The part of a closed mesh on the side of the plane its ``normal`` points away from, as manifold."""
    import trimesh

    solid = _manifold(trimesh.Trimesh(mesh.vertices, mesh.faces, process=True))
    if solid is None:
        return None
    return solid.trim_by_plane(tuple(float(x) for x in -normal), float(-origin @ normal))


def _join(lumbar, imported: MeshData | None, spine, level: float, keep_above: bool):
    """Union of the lumbar part with the imported part beyond ``level`` (above it, or below)."""
    import trimesh

    if imported is None:
        return lumbar
    point, axis = spine_point(np.array([level]), spine)
    normal = axis[0] if keep_above else -axis[0]  # trim keeps the side the normal points away from
    part = _trim(imported, point[0], normal)
    solid = _manifold(lumbar)
    if part is None or solid is None:
        return lumbar
    joined = _from_manifold(solid + part)
    pieces = [p for p in joined.split(only_watertight=False) if len(p.faces) >= 40]
    return trimesh.util.concatenate(pieces) if len(pieces) > 1 else joined


# -- the rebuild --------------------------------------------------------------------------------------
def _target_arrays(frame: Frame, correction: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    out = {}
    for name, table in TARGETS_CM2.items():
        values = _interp(table, frame.levels) * 100.0
        if name == "psoas_major":
            values[frame.levels > TARGETS_CM2[name][-1][0]] = 0.0
        if correction is not None and name in correction:
            values = values * correction[name]
        out[name] = values
    return out


def _measure_levels() -> np.ndarray:
    """Level coordinates where the rebuild checks its areas (discs and bodies T12-L1 ... S1)."""
    return np.arange(18.5, 24.01, 0.5)


def _section_area(vertices, faces, spine, level: float) -> float:
    point, axis = spine_point(np.array([level]), spine)
    return cross_sectional_area(vertices, faces, point[0], axis[0]) / 100.0


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
        Replacements for ``multifidus_*``, ``longissimus_thoracis_*``, ``iliocostalis_lumborum_*``,
        ``quadratus_lumborum_*``, ``psoas_major_*`` and carved deep muscles (``spinalis``,
        ``semispinalis``, ``rotatores``, ``interspinales``, ``intertransversarii`` ids that reach the
        lumbar midline), ``latissimus_dorsi_*`` and ``serratus_posterior_inferior_*`` moved back to make
        room (:func:`make_room`), and new meshes ``thoracolumbar_fascia`` and ``interspinous_ligament``. The
        multifidus meshes carry per-vertex ``segment`` (float32) and ``side`` (int32) data.
    """
    frame = make_frame(spine)
    moved = make_room(muscles, frame, spine)
    stack = bone_stack(frame, bones, {**muscles, **moved})
    marks = landmarks(frame, stack)
    targets = _target_arrays(frame)
    labels = grow_labels(frame, stack, marks, targets)
    built = _mesh_muscles(frame, labels)
    correction = _correction(frame, built, spine, targets)
    if any(np.abs(f - 1.0).max() > CALIBRATION_TOLERANCE for f in correction.values()):
        targets = _target_arrays(frame, correction)
        labels = grow_labels(frame, stack, marks, targets)
        built = _mesh_muscles(frame, labels)
    out: dict[str, MeshData] = {}
    for (name, side), (vertices, faces) in built.items():
        out[f"{IDS[name]}_{('left', 'right')[side]}"] = (vertices, faces)
    return {**_finish(out, frame, labels, stack, muscles, spine), **moved}


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def make_room(muscles: Mapping[str, MeshData], frame: Frame, spine: Mapping[str, np.ndarray]) -> dict[str, MeshData]:
    """Latissimus dorsi and serratus posterior inferior moved backward over the lumbar spine (:data:`ROOM_MM`).

    The displacement is smooth and the same through the sheet's thickness, so the sheet stays
    closed and keeps its thickness; it stays on the spinous processes at the midline and on the
    iliac crest laterally, so the erector spinae and multifidus lie in a furrow beneath it.
    """
    out: dict[str, MeshData] = {}
    for sid, mesh in muscles.items():
        if not sid.startswith(MOVED_PREFIXES):
            continue
        points = mesh.vertices
        levels = level_coordinates(points, spine)
        amount = _interp(ROOM_MM, levels, below=True)
        width = np.abs(points[:, 0])
        weight = _smoothstep(0.0, ROOM_MEDIAL_MM, width) * (1.0 - _smoothstep(0.6 * ROOM_LATERAL_MM, ROOM_LATERAL_MM,
                                                                                width))
        shift = amount * weight
        if not shift.any():
            continue
        anterior = np.column_stack([np.interp(levels, frame.levels, frame.anteriors[:, j]) for j in range(3)])
        anterior /= np.linalg.norm(anterior, axis=1, keepdims=True)
        out[sid] = MeshData(points - shift[:, None] * anterior, mesh.faces, dict(mesh.point_data))
    return _under_latissimus(out)


def _under_latissimus(moved: dict[str, MeshData]) -> dict[str, MeshData]:
    """Serratus posterior inferior without the part BodyParts3D puts inside latissimus dorsi (about 11 %
    of its volume): the deeper sheet gives way to the one over it."""
    import trimesh

    for side in ("left", "right"):
        deep, over = moved.get(f"serratus_posterior_inferior_{side}"), moved.get(f"latissimus_dorsi_{side}")
        if deep is None or over is None:
            continue
        carved = _minus(deep, _manifold(trimesh.Trimesh(over.vertices, over.faces, process=False)))
        if carved is not None:
            moved[f"serratus_posterior_inferior_{side}"] = carved
    return moved


def _minus(mesh: MeshData, cutter) -> MeshData | None:
    """``mesh`` without what lies inside the manifold ``cutter``, crumbs (< 40 faces) dropped; None if
    either is not a closed solid or nothing is left."""
    import trimesh

    solid = _manifold(trimesh.Trimesh(mesh.vertices, mesh.faces, process=False))
    if solid is None or cutter is None:
        return None
    pieces = [p for p in _from_manifold(solid - cutter).split(only_watertight=False) if len(p.faces) >= 40]
    if not pieces:
        return None
    kept = trimesh.util.concatenate(pieces)
    return MeshData(np.asarray(kept.vertices, float), np.asarray(kept.faces, np.int64))


def _mesh_muscles(frame: Frame, labels: np.ndarray) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    built = {}
    for name, code in MUSCLE_LABELS.items():
        for side, vertices, faces in _mesh_label(frame, labels == code, sides=True):
            built[(name, side)] = _clean(vertices, faces)
    return built


def _correction(frame: Frame, built, spine, targets) -> dict[str, np.ndarray]:
    """Factor per plane that brings the measured areas to the targets (interpolated between checks)."""
    levels = _measure_levels()
    out = {}
    groups = {"multifidus": ("multifidus",), "erector_spinae": ("longissimus", "iliocostalis"),
              "quadratus_lumborum": ("quadratus_lumborum",), "psoas_major": ("psoas_major",)}
    for group, names in groups.items():
        want = np.interp(levels, frame.levels, targets[group]) / 100.0
        ratios = []
        for level, target in zip(levels, want):
            got = np.mean([sum(_section_area(*built[(n, side)], spine, level) for n in names if (n, side) in built)
                           for side in (0, 1)])
            ratios.append(target / got if got > 0.05 and target > 0.05 else 1.0)
        factor = np.clip(np.array(ratios), 0.7, 1.5)
        out[group] = np.interp(frame.levels, levels, factor)
    return out


def _finish(out, frame, labels, stack, muscles, spine) -> dict[str, MeshData]:
    """Join to the BodyParts3D parts, add relief, level data, fascia and ligament; carve the rest."""
    import trimesh

    result: dict[str, MeshData] = {}
    for sid, (vertices, faces) in out.items():
        mesh = trimesh.Trimesh(vertices, faces, process=False)
        if sid.startswith(("multifidus", "longissimus", "iliocostalis")):
            mesh = _join(mesh, muscles.get(sid), spine, JOIN_LEVEL, keep_above=True)
        elif sid.startswith("psoas"):
            mesh = _join(mesh, muscles.get(sid), spine, PSOAS_JOIN_LEVEL, keep_above=False)
        v = np.asarray(mesh.vertices, float)
        f = np.asarray(mesh.faces, np.int64)
        v = _relief(v, f, _across_fascicles(sid, spine))
        point_data = {"segment": level_coordinates(v, spine).astype(np.float32)}
        if sid.startswith("multifidus"):
            point_data["side"] = np.full(len(v), 0 if sid.endswith("left") else 1, dtype=np.int32)
        result[sid] = MeshData(v, f, point_data)
    result.update(_fascia_and_ligament(frame, labels, stack))
    result.update(_carve(muscles, result, spine))
    return result


def _across_fascicles(sid: str, spine):
    """Coordinate across the fascicles (mm) at points: ridges run along it at constant value."""
    angle = np.radians(15.0 if sid.startswith("multifidus") else 5.0)

    def across(points: np.ndarray) -> np.ndarray:
        height = points[:, 2]
        lateral = np.abs(points[:, 0])
        # Fascicles run caudally and laterally (multifidus ~15 degrees off the spinous line).
        return lateral * np.cos(angle) + height * np.sin(angle) + 0.3 * points[:, 1]

    return across


def _fascia_and_ligament(frame: Frame, labels: np.ndarray, stack: np.ndarray) -> dict[str, MeshData]:
    """Thoracolumbar fascia (posterior layer) over the erector spinae and multifidus, and the midline ligament."""
    out: dict[str, MeshData] = {}
    ligament = labels == -1
    if ligament.any():
        for _, vertices, faces in _mesh_label(frame, ndimage.binary_dilation(ligament, iterations=1), sides=False):
            v, f = _clean(vertices, faces)
            out["interspinous_ligament"] = MeshData(v, f)
    sheet = _fascia_sheet(frame, labels, stack)
    if sheet is not None:
        out["thoracolumbar_fascia"] = sheet
    return out


def _fascia_sheet(frame: Frame, labels: np.ndarray, stack: np.ndarray) -> MeshData | None:
    """A thin closed slab along the posterior surface of the back muscles and the spinous tips.

    Per plane and column, the most posterior pixel of multifidus, erector spinae, ligament or
    spinous process gives the depth; the sheet lies just behind it, smoothed, FASCIA_MM thick.
    """
    back = np.isin(labels, (MUSCLE_LABELS["multifidus"], MUSCLE_LABELS["longissimus"],
                            MUSCLE_LABELS["iliocostalis"], -1))
    spinous = (stack == 1) & (np.abs(frame.u)[None, :, None] < 4.0)
    solid = back | (spinous & back.any(axis=2, keepdims=True).any(axis=1, keepdims=True))
    ns, nu, nv = labels.shape
    has = solid.any(axis=2)
    first = np.argmax(solid, axis=2).astype(float)
    if has.sum() < 50:
        return None
    depth = np.where(has, frame.v[np.clip(first.astype(int), 0, nv - 1)], np.nan)
    # Fill gaps along rows by interpolation, then smooth; the sheet covers columns with muscle.
    filled = depth.copy()
    for k in range(ns):
        row = filled[k]
        good = np.isfinite(row)
        if good.sum() >= 2:
            inner = (frame.u >= frame.u[good].min()) & (frame.u <= frame.u[good].max())
            row[inner & ~good] = np.interp(frame.u[inner & ~good], frame.u[good], row[good])
    cover = np.isfinite(filled)
    cover = ndimage.binary_erosion(cover, iterations=2) if cover.sum() > 200 else cover
    weight = ndimage.gaussian_filter(np.isfinite(filled).astype(float), 2.0)
    base = ndimage.gaussian_filter(np.where(np.isfinite(filled), filled, 0.0), 2.0) / np.maximum(weight, 1e-6)
    outer = base - 0.6 - FASCIA_MM
    inner_surface = base - 0.6
    step = FASCIA_STRIDE
    coarse = Frame(frame.levels[::step], frame.origins[::step], frame.normals[::step], frame.rights[::step],
                   frame.anteriors[::step], frame.u[::step], frame.v)
    pick = (slice(None, None, step), slice(None, None, step))
    return _slab(coarse, cover[pick], outer[pick], inner_surface[pick])


def _slab(frame: Frame, cover: np.ndarray, outer: np.ndarray, inner: np.ndarray) -> MeshData | None:
    """Closed slab between two height fields (v as a function of plane and column) over ``cover``."""
    import trimesh

    # Keep the largest connected covered patch and drop thin spurs.
    lab, n = ndimage.label(cover)
    if n == 0:
        return None
    sizes = ndimage.sum(cover, lab, range(1, n + 1))
    cover = lab == (1 + int(np.argmax(sizes)))
    cover = ndimage.binary_opening(cover, iterations=1)
    ns, nu = cover.shape
    # One quad per covered cell whose four corners are covered: build top, bottom and boundary walls.
    cells = cover[:-1, :-1] & cover[1:, :-1] & cover[:-1, 1:] & cover[1:, 1:]
    if cells.sum() < 20:
        return None
    index = -np.ones((ns, nu), dtype=np.int64)
    used = np.zeros_like(cover)
    used[:-1, :-1] |= cells
    used[1:, :-1] |= cells
    used[:-1, 1:] |= cells
    used[1:, 1:] |= cells
    ks, js = np.nonzero(used)
    index[ks, js] = np.arange(len(ks))
    n = len(ks)
    top = frame.to_world(ks.astype(float), frame.u[js], outer[ks, js])
    bottom = frame.to_world(ks.astype(float), frame.u[js], inner[ks, js])
    ck, cj = np.nonzero(cells)
    a, b = index[ck, cj], index[ck + 1, cj]
    c, d = index[ck + 1, cj + 1], index[ck, cj + 1]
    faces = [np.column_stack([a, b, c]), np.column_stack([a, c, d]),
             np.column_stack([a, c, b]) + n, np.column_stack([a, d, c]) + n]
    tri = np.concatenate(faces)
    # Boundary edges of the top surface get a wall to the bottom surface.
    mesh_top = trimesh.Trimesh(top, np.concatenate(faces[:2]), process=False)
    edges = mesh_top.edges_sorted
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    boundary = set(map(tuple, unique[counts == 1]))
    walls = []
    for e in mesh_top.edges:  # directed edges of the top faces
        if (min(e), max(e)) in boundary:
            p, q = int(e[0]), int(e[1])
            walls.append((q, p, p + n))
            walls.append((q, p + n, q + n))
    faces_all = np.concatenate([tri, np.array(walls, dtype=np.int64).reshape(-1, 3)])
    mesh = trimesh.Trimesh(np.concatenate([top, bottom]), faces_all, process=True)
    if mesh.volume < 0:
        mesh.invert()
    return MeshData(np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64))


def _carve(muscles: Mapping[str, MeshData], rebuilt: Mapping[str, MeshData], spine) -> dict[str, MeshData]:
    """Deep muscles that reach the lumbar midline or into the rebuilt muscles, with those parts removed."""
    import trimesh

    try:
        import manifold3d
    except ImportError:  # pragma: no cover
        return {}
    centres = _centres(spine)[1]
    top = float(spine["T12"][2]) if "T12" in spine else float(centres[:, 2].max())
    bottom = float(centres[:, 2].min()) - 80.0
    cutters = [_manifold(trimesh.Trimesh(m.vertices, m.faces, process=False))
               for sid, m in rebuilt.items()
               if sid.startswith(("multifidus", "longissimus", "iliocostalis", "quadratus", "psoas"))]
    cutters = [c for c in cutters if c is not None]
    y_low = min(float(m.vertices[:, 1].min()) for m in rebuilt.values()) - 30.0
    y_high = float(np.max([spine[n][1] for n in spine if n in ("L1", "L2", "L3", "L4", "L5")]))
    slab = manifold3d.Manifold.cube((2 * MIDLINE_GAP_MM, y_high - y_low, top - bottom)).translate(
        (-MIDLINE_GAP_MM, y_low, bottom))
    cutter = manifold3d.Manifold.batch_boolean([slab, *cutters], manifold3d.OpType.Add)
    out: dict[str, MeshData] = {}
    for sid, mesh in muscles.items():
        if not sid.startswith(CARVED_PREFIXES) or sid in rebuilt:
            continue
        if mesh.vertices[:, 2].min() > top:
            continue
        carved = _minus(mesh, cutter)
        if carved is not None:
            out[sid] = carved
    return out
