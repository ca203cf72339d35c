"""3D export for slides and the web: a GLB (binary glTF 2.0) of the structures as displayed.

One node per visible structure, named by its structure id, holding that structure's displayed
(possibly atrophied) vertices and a PBR material in its displayed colour. Vertices stay in the atlas
frame (RAS, mm); each node's matrix turns them into glTF's frame (+Y up, +Z toward the viewer,
metres), so PowerPoint, Keynote and web viewers show the body upright, facing them, at true size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from viewer.checks import parse_colour
from viewer.model import SceneModel
from viewer.output import write_atomically

# RAS mm -> glTF: x_gltf = patient's left, y_gltf = superior, z_gltf = anterior; mm -> m.
RAS_MM_TO_GLTF = np.array([
    [-0.001, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.001, 0.0],
    [0.0, 0.001, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
])


def srgb_to_linear(channel: np.ndarray) -> np.ndarray:
    """sRGB-encoded colour channels in [0, 1] to linear light (glTF colour factors are linear)."""
    c = np.asarray(channel, dtype=float)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def base_colour_factor(colour: str, opacity: float) -> list[float]:
    """glTF ``baseColorFactor`` (linear RGBA) of a displayed ``#rrggbb`` colour and opacity."""
    rgb = srgb_to_linear(np.array(parse_colour("colour", colour)))
    return [*(float(v) for v in rgb), float(opacity)]


def unit_vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit-length vertex normals (glTF requires unit normals; zero-length ones are invalid).

    Area-weighted face normals are summed per vertex. Where they cancel (a two-sided flap, a
    vertex only on degenerate triangles, an unused vertex), the direction from the mesh centre
    is used instead, and +z if even that is undefined.

    Parameters
    ----------
    vertices : (n, 3) float ndarray
        Positions, mm.
    faces : (m, 3) int ndarray
        Triangles.

    Returns
    -------
    (n, 3) float32 ndarray
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    normals = np.zeros_like(v)
    if len(f):
        cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        for corner in range(3):
            np.add.at(normals, f[:, corner], cross)
    length = np.linalg.norm(normals, axis=1)
    weak = length <= 1e-9 * max(float(np.abs(v).max(initial=1.0)) ** 2, 1.0)
    if weak.any():
        outward = v[weak] - v.mean(axis=0)
        size = np.linalg.norm(outward, axis=1)
        outward = np.where(size[:, None] > 1e-9, outward, [0.0, 0.0, 1.0])
        normals[weak] = outward
        length = np.linalg.norm(normals, axis=1)
    return (normals / length[:, None]).astype(np.float32)


def scene_glb(model: SceneModel) -> bytes:
    """The visible structures of ``model`` as GLB bytes (see the module docstring)."""
    import trimesh
    from trimesh.visual.material import PBRMaterial

    scene = trimesh.Scene()
    for sid in model.visible_ids():
        structure = model.atlas.structure(sid)
        opacity = model.opacity(sid)
        material = PBRMaterial(
            name=sid, baseColorFactor=base_colour_factor(model.colour(sid), opacity),
            metallicFactor=0.0, roughnessFactor=0.55 if structure.kind == "muscle" else 0.75,
            alphaMode="BLEND" if opacity < 1.0 else "OPAQUE", doubleSided=False,
        )
        vertices, faces = model.vertices(sid), model.atlas.meshes[sid].faces
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False,
                               vertex_normals=unit_vertex_normals(vertices, faces),
                               visual=trimesh.visual.TextureVisuals(material=material))
        scene.add_geometry(mesh, node_name=sid, geom_name=sid, transform=RAS_MM_TO_GLTF)
    return scene.export(file_type="glb", include_normals=True)


def export_glb(model: SceneModel, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the visible structures of ``model`` to a GLB file, atomically; returns the path."""
    data = scene_glb(model)
    return write_atomically(path, lambda target: target.write_bytes(data), overwrite=overwrite)
