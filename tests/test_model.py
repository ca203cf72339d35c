"""The scene model: visibility rules, opacity, names, batching and geometry, with no rendering."""

from __future__ import annotations

from unittest.mock import Mock

import numpy as np
import pytest

from viewer.errors import DorsumError
from viewer.model import SceneModel


@pytest.fixture
def model(fixture_atlas):
    return SceneModel(fixture_atlas)


def test_structure_visible_only_when_its_layer_is(model):
    model.set_layer_visible("deep", False)
    assert not model.is_visible("mf_left")
    assert model.structure_visible("mf_left")
    model.set_layer_visible("deep", True)
    assert model.is_visible("mf_left")


def test_hiding_a_layer_emits_one_event_with_its_structures(model):
    slot = Mock()
    model.events.visibility.connect(slot)
    model.set_layer_visible("deep", False)
    slot.assert_called_once_with(("mf_right", "mf_left"))


def test_batch_emits_once(model):
    slot = Mock()
    model.events.visibility.connect(slot)
    with model.batch():
        model.set_visible("superficial", False)
        model.set_visible("intermediate", False)
        model.set_visible("mf_left", False)
    slot.assert_called_once()
    assert set(slot.call_args.args[0]) == {"sheet", "column", "mf_left"}


def test_names_resolve_to_layers_muscles_and_ids(model):
    assert model.resolve("deep") == ("mf_right", "mf_left")
    assert model.resolve("multifidus") == ("mf_right", "mf_left")
    assert model.resolve("bone") == ("bone",)
    with pytest.raises(DorsumError, match="unknown layer or structure 'middle'.*layers: superficial"):
        model.resolve("middle")


def test_show_only_and_show_all(model):
    model.show_only(["multifidus"])
    assert model.visible_ids() == ("mf_right", "mf_left")
    model.show_all()
    assert len(model.visible_ids()) == 5


def test_showing_a_structure_of_a_hidden_layer_shows_it_alone(model):
    model.set_layer_visible("deep", False)
    model.set_visible("mf_left", True)
    assert model.is_visible("mf_left") and not model.is_visible("mf_right")


def test_opacity_multiplies_layer_and_structure(model):
    model.set_opacity("deep", 0.5)
    model.set_opacity("mf_left", 0.5)
    assert model.opacity("mf_left") == pytest.approx(0.25)
    assert model.opacity("mf_right") == pytest.approx(0.5)
    with pytest.raises(DorsumError, match=r"out of range \(allowed: 0 to 1\)"):
        model.set_opacity("deep", 1.5)


def test_set_vertices_keeps_shape_and_can_be_undone(model):
    slot = Mock()
    model.events.geometry.connect(slot)
    original = model.vertices("mf_left")
    moved = original + np.array([1.0, 0, 0])
    model.set_vertices("mf_left", moved)
    assert np.array_equal(model.vertices("mf_left"), moved)
    model.set_vertices("mf_left", original)
    assert model.vertices("mf_left") is model.atlas.meshes["mf_left"].vertices
    assert slot.call_count == 2
    with pytest.raises(ValueError, match="shape"):
        model.set_vertices("mf_left", original[:-1])


def test_highlight_emits_only_on_change(model):
    slot = Mock()
    model.events.highlight.connect(slot)
    model.set_highlight("bone")
    model.set_highlight("bone")
    model.set_highlight(None)
    assert [c.args[0] for c in slot.call_args_list] == ["bone", None]
    with pytest.raises(DorsumError, match="unknown structure 'nerve'"):
        model.set_highlight("nerve")


def test_import_viewer_loads_no_qt_or_vtk():
    import subprocess
    import sys

    # Building the command line (every subcommand registered) must not load them either: `dorsum info`
    # and `dorsum measure` start without VTK.
    code = ("import sys, viewer, viewer.model, viewer.atlas, viewer.cli; viewer.cli.build_parser(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'vtk', 'vtkmodules', 'pyvista')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_vertex_colours_emit_once_and_check_shape(model):
    slot = Mock()
    model.events.colour.connect(slot)
    n = len(model.atlas.meshes["mf_left"].vertices)
    colours = np.tile([1.0, 0.9, 0.4], (n, 1))
    model.set_vertex_colours("mf_left", colours)
    model.set_vertex_colours("mf_left", colours.copy())  # unchanged: no event, no re-render
    model.set_vertex_colours("mf_left", None)
    assert [c.args[0] for c in slot.call_args_list] == [("mf_left",), ("mf_left",)]
    with pytest.raises(ValueError, match=r"expected \(%d, 3\)" % n):
        model.set_vertex_colours("mf_left", colours[:-1])


def test_show_layer_after_show_only_always_changes_the_picture(fixture_atlas):
    model = SceneModel(fixture_atlas)
    model.show_only(["mf_left"])
    assert not model.layer_shown("superficial") and model.layer_shown("deep")
    model.show_layer("superficial", True)  # its structures were hidden one by one: all come back
    assert model.is_visible("sheet") and model.layer_shown("superficial")
    model.show_layer("deep", False)
    assert not model.layer_shown("deep")
    model.show_layer("deep", True)  # keeps which of its structures were on
    assert model.is_visible("mf_left") and not model.is_visible("mf_right")
