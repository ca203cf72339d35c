"""The atlas cache: normals, closure checks and levels of detail kept between runs by mesh-file digest."""

from __future__ import annotations

import shutil

import numpy as np

from viewer import lod
from viewer.atlas import default_atlas_dir, load_atlas
from viewer.atlas_cache import MeshCache, cache_file, vertex_normals
from viewer.model import SceneModel
from viewer.render import SceneRenderer, offscreen_plotter, render_image


def _lumbar(atlas) -> SceneModel:
    model = SceneModel(atlas)
    model.show_only(["multifidus", "skeleton"])
    return model


def test_a_second_load_reads_the_arrays_the_first_computed(tmp_path):
    atlas_dir = shutil.copytree(default_atlas_dir(), tmp_path / "atlas")
    first = load_atlas(atlas_dir)
    plotter = offscreen_plotter((32, 32))
    renderer = SceneRenderer(plotter, SceneModel(first))
    renderer.prepare_lod()
    renderer.close()
    plotter.close()
    assert cache_file(atlas_dir).is_file()

    second = load_atlas(atlas_dir)
    computed: list[str] = []
    for sid, mesh in second.meshes.items():
        cached = second.cache.derived(mesh.digest, "normals", lambda s=sid: computed.append(s))
        assert cached.dtype == np.float32
        assert np.array_equal(cached, vertex_normals(mesh.vertices, mesh.faces)), sid
        coarse = second.cache.derived(mesh.digest, "lod", lambda s=sid: computed.append(s))
        assert np.array_equal(coarse, lod.coarse_faces(mesh.vertices, mesh.faces, cached)), sid
    assert computed == []  # every array came from the file


def test_an_edited_mesh_file_misses_the_cache(tmp_path):
    atlas_dir = shutil.copytree(default_atlas_dir(), tmp_path / "atlas")
    before = load_atlas(atlas_dir)
    sid = "multifidus_right"
    old_normals = before.normals(sid).copy()
    before.cache.save()
    # Mirror the muscle's mesh file in place: same header and size, different bytes.
    path = before.structure(sid).mesh
    other = before.structure("multifidus_left").mesh
    shutil.copyfile(other, path)
    after = load_atlas(atlas_dir)
    mesh = after.meshes[sid]
    assert mesh.digest != before.meshes[sid].digest
    assert np.array_equal(after.normals(sid), vertex_normals(mesh.vertices, mesh.faces))
    assert not np.array_equal(after.normals(sid), old_normals)
    after.cache.save()
    with np.load(cache_file(atlas_dir)) as stored:
        digests = {name.split(".", 1)[0] for name in stored.files if name != "format"}
    assert before.meshes[sid].digest not in digests  # the stale entry is dropped


def test_a_corrupt_cache_file_is_ignored_and_replaced(tmp_path):
    atlas_dir = shutil.copytree(default_atlas_dir(), tmp_path / "atlas")
    path = cache_file(atlas_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a zip file")
    atlas = load_atlas(atlas_dir)
    mesh = atlas.meshes["multifidus_right"]
    assert np.array_equal(atlas.normals("multifidus_right"), vertex_normals(mesh.vertices, mesh.faces))
    atlas.cache.save()
    assert MeshCache(path).derived(mesh.digest, "normals", lambda: None) is not None


def test_an_array_damaged_inside_the_cache_file_is_computed_again(tmp_path):
    # Arrays are read from the file when first asked for: damage found then counts as a miss.
    path = tmp_path / "cache.npz"
    np.savez(path, format=np.array(1), **{"abc.normals": np.arange(6.0), "abc.lod": np.arange(9)})
    data = bytearray(path.read_bytes())
    start = data.rindex(b"\x93NUMPY")  # the last array written: the level of detail
    data[start:start + 6] = b"NOTNPY"
    path.write_bytes(bytes(data))
    cache = MeshCache(path)
    assert np.array_equal(cache.derived("abc", "normals", lambda: None), np.arange(6.0))
    assert np.array_equal(cache.derived("abc", "lod", lambda: np.array([7])), [7])


def test_meshes_made_in_memory_are_never_cached():
    cache = MeshCache(None)
    calls = []
    for _ in range(2):
        cache.derived("", "normals", lambda: calls.append(1) or np.zeros(1))
    assert len(calls) == 2


def test_pictures_are_identical_with_and_without_the_cache(tmp_path):
    atlas_dir = shutil.copytree(default_atlas_dir(), tmp_path / "atlas")
    cold = render_image(_lumbar(load_atlas(atlas_dir)), (200, 260), view="posterior")
    assert cache_file(atlas_dir).is_file()
    warm = render_image(_lumbar(load_atlas(atlas_dir)), (200, 260), view="posterior")
    assert np.array_equal(cold, warm)
    assert (cold != 255).any()


def test_an_unwritable_cache_folder_only_makes_loading_slower(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    cache = MeshCache(blocker / "atlases" / "x.npz")
    value = cache.derived("abc", "normals", lambda: np.ones(3))
    cache.save()  # no error
    assert np.array_equal(value, np.ones(3)) and not (blocker / "atlases").exists()


_FORKED: dict[str, MeshCache] = {}  # set in the parent before forking, as viewer.figures.parallel does


def _read_every_array(keys: list[str]) -> bool:
    cache = _FORKED["cache"]
    return all(np.array_equal(cache.derived(key, "normals", lambda: None), np.full(20000, int(key)))
               for key in keys)


def test_forked_workers_read_the_cache_file_each_for_itself(tmp_path):
    # `lesson --jobs` forks workers holding the parent's open cache file; their reads must not mix.
    import multiprocessing

    path = tmp_path / "cache.npz"
    keys = [str(k) for k in range(1, 41)]
    np.savez(path, format=np.array(1), **{f"{k}.normals": np.full(20000, int(k)) for k in keys})
    _FORKED["cache"] = MeshCache(path)
    assert _FORKED["cache"].derived("1", "normals", lambda: None) is not None  # open in the parent
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(_read_every_array, [keys[1:]] * 8)
    assert all(results)
