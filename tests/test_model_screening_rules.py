"""The model file's screening rules for the attributes that steer its answers and for sizes that an upload could
inflate: the indicator's reference norm bounded by the training scale its dual basis implies (so that a file cannot
make the indicator trust any answer), the Dirichlet conditions on node sets of the mesh, variable-length string
attributes counted by their characters, not by their heap references."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

import api_fixtures as af
from structrom.rom.h5_screening import Limits, UnsafeFileError
from structrom.rom.model_screening import screen_model
from structrom.rom.model_screening_indicator import REFERENCE_MARGIN, _training_scale


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return af.build_small_model(tmp_path_factory.mktemp("screening_rules")).path


def screened(src, tmp_path, mutate, limits=Limits()):
    with h5py.File(af.mutated(src, tmp_path / "m.h5", mutate), "r") as f:
        return screen_model(f, limits)


def test_reference_norm_is_bounded_by_the_training_scale(model, tmp_path):
    with h5py.File(model, "r") as f:
        q = f["indicator"].attrs["quantity"]
        ref = float(f["indicator"].attrs["reference"])
        scale = _training_scale(f, f"dual/{q}/reduced_basis", q, Limits())
    # the offline stage's reference (the largest training norm at the reduced points) lies within the scale the
    # dual basis implies (up to its POD truncation)
    assert scale > 0 and 0 <= ref <= scale * (1 + 1e-6)

    def set_ref(value):
        return lambda f: f["indicator"].attrs.__setitem__("reference", value)

    screened(model, tmp_path, set_ref(0.95 * REFERENCE_MARGIN * scale))
    for bad in (1.05 * REFERENCE_MARGIN * scale, 1.7e308):
        with pytest.raises(UnsafeFileError, match="reference.*trust any answer"):
            screened(model, tmp_path, set_ref(bad))


def test_dirichlet_conditions_name_node_sets_of_the_mesh(model, tmp_path):
    with h5py.File(model, "r") as f:
        sets = sorted(f["mesh/node_sets"])
    good = f'[{{"node_set": "{sets[0]}", "components": ["x", "z"], "value": 0.0}}]'
    screened(model, tmp_path, lambda f: f.attrs.__setitem__("dirichlet", good))
    for bad, words in (('[{"node_set": "nowhere"}]', "not a node set of the mesh"),
                       (f'[{{"node_set": "{sets[0]}", "components": [7]}}]', "'components' must be"),
                       (f'[{{"node_set": "{sets[0]}", "value": "hot"}}]', "'value' must be a finite number"),
                       ('{"node_set": 1}', "must be a JSON list"), ('[1]', "entry 0 must be an object")):
        with pytest.raises(UnsafeFileError, match=words):
            screened(model, tmp_path, lambda f, b=bad: f.attrs.__setitem__("dirichlet", b))


def test_string_attributes_are_measured_by_their_characters(model, tmp_path):
    big = '{"length": "mm", "note": "' + "a" * (3 * 2**20) + '"}'  # a Python str: a variable-length string
    limits = Limits(max_attribute_bytes=2**20)
    with pytest.raises(UnsafeFileError, match=r"attribute 'units' holds \d+ bytes, above the limit"):
        screened(model, tmp_path, lambda f: f.attrs.__setitem__("units", big), limits)


@pytest.mark.parametrize("element,n_faces", [("C3D10", 4), ("C3D15", 5)])
def test_surface_faces_exist_on_their_elements(tmp_path, element, n_faces):
    """A tetrahedron has faces S1-S4, a wedge S1-S5: a surface set naming a face beyond is refused (it passed the
    bound of 6 faces that holds for hexahedra), naming the row, the element and its type. (The wedge model is built
    by the offline stage like the others: its points, faces and sets pass the screening.)"""
    model = af.build_small_model(tmp_path, name=f"{element}.h5", element=element).path
    with h5py.File(model, "r") as f:
        faces = f["mesh/surface_sets/zmax"][()]
    assert faces[:, 1].max() <= n_faces - 1  # (the offline stage's own sets: faces of the element)

    def face(value, row=0):
        def mutate(f):
            d = f["mesh/surface_sets/zmax"]
            a = d[()]
            a[row, 1] = value
            d[...] = a
        return mutate

    screened(model, tmp_path, face(n_faces - 1))
    for bad in range(n_faces, 6):
        with pytest.raises(UnsafeFileError, match=rf"row 1 names face S{bad + 1} of element \d+, a '{element}' "
                                                  rf"element with {n_faces} faces"):
            screened(model, tmp_path, face(bad, row=1))
