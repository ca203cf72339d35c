"""Fatty infiltration as MRI shows it: where the fat lies inside a wasting muscle, and how much.

On T1-weighted MRI a wasting multifidus keeps its fascial compartment and fat appears inside it as
bright streaks and patches: scattered foci ("moth-eaten") at low fractions, confluent at high ones.
Dorsum places that fat with one deterministic, band-limited 3D noise field (:func:`fat_noise`, a sum
of seeded plane waves, elongated along the spine so that fat runs in streaks between fascicles and
varies smoothly from level to level). Thresholding the field at a quantile makes a given fraction
fat: a low quantile keeps only the troughs (isolated foci), a high one leaves only islands of
muscle (confluent fat).

- In a section, the exact quantile of the field over the section's own pixels is taken
  (:func:`fat_pixels`), so the fat area is the asked fraction to the pixel.
- On the 3D surface, each vertex compares the field's (normal) CDF with the fat fraction of its
  level (:func:`marbling`), so the surface shows the same pattern as marbling.

How much: :func:`section_composition` turns the healthy and displayed areas and the fat asked at a
level into the numbers MRI studies report (total CSA inside the fascial boundary, lean CSA, fat
fraction). :func:`fat_grade` grades the fraction on one scale (see :data:`GRADE_SCALE`).

Numpy only; no VTK.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import erf, sqrt

import numpy as np

#: Seed of the fat pattern: the same seed gives the same fat, pixel for pixel, on every run.
FIELD_SEED = 1107
#: (count, shortest and longest in-plane wavelength in mm, weight) of the plane waves: fine foci
#: between fascicles and coarser patches (a lumbar multifidus is about 30 x 40 mm across).
WAVE_BANDS = ((24, 5.0, 9.0, 0.7), (16, 12.0, 22.0, 1.0))
#: Wavelength (mm) along the spine is this many times the in-plane one: fat runs in streaks along
#: the fascicles and changes smoothly from one level to the next.
STREAK_STRETCH = 4.0
#: Width (in fat fraction) of the soft edge between fat and muscle on the 3D surface.
MARBLING_EDGE = 0.08

#: The grading scale reported with every fat fraction: the three-grade visual scale after Kjaer
#: (BMC Med 2007) with the cut-offs Storheim et al. (BMC Musculoskelet Disord 2017) used on the
#: fat share of the multifidus cross-section. Chosen because it is a lumbar multifidus scale
#: defined on the fat fraction itself, so a number maps to a grade without invented thresholds
#: (Goutallier and Mercuri grades are visual descriptions without numeric cut-offs below 30%).
GRADE_SCALE = "Kjaer 3-grade (Storheim 2017: 0 below 20% fat, 1 20-50%, 2 above 50%)"
GRADE_LIMITS = (20.0, 50.0)
GRADE_NAMES = ("none or slight", "moderate", "severe")


@dataclass(frozen=True)
class _Waves:
    vectors: np.ndarray  # (k, 3) rad/mm
    phases: np.ndarray  # (k,)
    weights: np.ndarray  # (k,)


def _waves(seed: int = FIELD_SEED) -> _Waves:
    rng = np.random.default_rng(seed)
    vectors, phases, weights = [], [], []
    for count, shortest, longest, weight in WAVE_BANDS:
        angle = rng.uniform(0.0, 2.0 * np.pi, count)
        wavelength = rng.uniform(shortest, longest, count)
        k = 2.0 * np.pi / wavelength
        along = rng.uniform(-1.0, 1.0, count) * k / STREAK_STRETCH
        vectors.append(np.column_stack([k * np.cos(angle), k * np.sin(angle), along]))
        phases.append(rng.uniform(0.0, 2.0 * np.pi, count))
        weights.append(np.full(count, weight))
    return _Waves(np.concatenate(vectors), np.concatenate(phases), np.concatenate(weights))


_WAVES = _waves()


def fat_noise(points: np.ndarray) -> np.ndarray:
    """The fat field at points in the atlas frame (RAS, mm), (n,) with mean 0 and variance 1.

    A sum of plane waves with seeded directions, wavelengths and phases (band-limited: no detail
    finer than 5 mm across or 20 mm along the spine, z being the atlas' superior axis).
    """
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    waves = _WAVES
    values = np.cos(p @ waves.vectors.T + waves.phases) @ waves.weights
    return values / np.sqrt(0.5 * np.sum(waves.weights**2))


def _normal_cdf(values: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(erf)(np.asarray(values, float) / sqrt(2.0)))


def marbling(points: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """Fat weight of surface points for a per-point fat fraction, (n,) in [0, 1].

    A point is fat where the field's CDF lies below the fraction, with a soft edge
    (:data:`MARBLING_EDGE`) so colours blend across a triangle instead of flickering; a fraction of
    0 gives no fat anywhere and 1 fat everywhere.
    """
    fraction = np.broadcast_to(np.asarray(fraction, float), (len(np.asarray(points).reshape(-1, 3)),))
    rank = _normal_cdf(fat_noise(points))
    t = np.clip((fraction - rank) / MARBLING_EDGE + 0.5, 0.0, 1.0)
    weight = t * t * (3.0 - 2.0 * t)
    return np.where(fraction <= 0.0, 0.0, np.where(fraction >= 1.0, 1.0, weight))


def fat_pixels(values: np.ndarray, count: int) -> np.ndarray:
    """(n,) bool: the ``count`` lowest of the field ``values`` (the exact quantile), ties broken by order."""
    chosen = np.zeros(len(values), dtype=bool)
    count = int(np.clip(count, 0, len(values)))
    if count:
        chosen[np.argsort(values, kind="stable")[:count]] = True
    return chosen


@dataclass(frozen=True)
class Composition:
    """What lies inside a muscle's fascial boundary at one level and side (mm² and fractions).

    Attributes
    ----------
    total_mm2 : area inside the boundary (the healthy outline, or the retracted one with ``retracted``).
    lean_mm2 : muscle tissue, ``total_mm2 * (1 - fat_fraction)``.
    fat_fraction : share of ``total_mm2`` that is fat, 0 to 1.
    intramuscular : share of the retracted muscle's own section that is fat (the patches drawn
        inside it; in fill mode the vacated space around it is fat as well).
    """

    total_mm2: float
    lean_mm2: float
    fat_fraction: float
    intramuscular: float


def section_composition(healthy_mm2: float, shown_mm2: float, fat_asked: float, retracted: bool) -> Composition:
    """The MRI composition of one section.

    Parameters
    ----------
    healthy_mm2 : float
        Area of the healthy (atlas) section, the fascial boundary, mm².
    shown_mm2 : float
        Area of the displayed (possibly retracted) muscle section, mm².
    fat_asked : float
        Fat fraction asked at this level and side, 0 to 1 (0 outside the wasting levels and side).
    retracted : bool
        False (default display): the boundary stays healthy and what the muscle lost is fat, so the
        fat fraction is at least the share lost. True: the boundary is the retracted outline.
    """
    if retracted or healthy_mm2 <= 0.0:
        total = shown_mm2
        fat = fat_asked
    else:
        total = healthy_mm2
        vacated = float(np.clip(1.0 - shown_mm2 / healthy_mm2, 0.0, 1.0))
        fat = max(fat_asked, vacated)
    inside = 1.0 - (0.0 if retracted or total <= 0.0 else float(np.clip(1.0 - shown_mm2 / total, 0.0, 1.0)))
    intramuscular = 0.0 if inside <= 0.0 else float(np.clip((fat - (1.0 - inside)) / inside, 0.0, 1.0))
    return Composition(total, total * (1.0 - fat), fat, intramuscular)


def fat_grade(fat_percent: float) -> int:
    """Grade of a fat fraction (percent) on :data:`GRADE_SCALE`: 0, 1 or 2."""
    low, high = GRADE_LIMITS
    return 0 if fat_percent < low else 1 if fat_percent <= high else 2
