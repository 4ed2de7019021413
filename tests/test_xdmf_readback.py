"""The HF solver's XDMF output reads back with meshio (TimeSeriesReader, read_meshio_series) and with VTK's
XDMF reader (ParaView's), for one block, several blocks of one type and mixed linear types."""
from __future__ import annotations

import h5py
import meshio
import numpy as np
import pytest

from structrom.rom.adapters.meshio_series import read_meshio_series
from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.mesh import CellBlock, Mesh
from structrom.rom.fem.structured import box
from structrom.rom.hifi.output import SnapshotWriter


def _mesh(kinds):
    meshes = [box((1.0, 1.0, 1.0), (2, 1, 1), k) for k in kinds]
    points, blocks, offset = [], [], 0
    for i, m in enumerate(meshes):
        points.append(m.points + [2.0 * i, 0, 0])
        blocks.append(CellBlock(m.blocks[0].element, m.blocks[0].connectivity + offset))
        offset += m.n_nodes
    return Mesh(np.vstack(points), blocks)


@pytest.mark.parametrize("kinds", [["C3D20"], ["C3D20R", "C3D20R"], ["C3D4", "C3D8"], ["C3D15"], ["C3D6", "C3D8"]])
def test_snapshot_xdmf_reads_back_with_meshio_and_vtk(tmp_path, kinds):
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    mesh = _mesh(kinds)
    disc = Discretization(mesh)
    rng = np.random.default_rng(0)
    path = tmp_path / "run.h5"
    writer = SnapshotWriter(path, mesh, {}, disc.point_elements, disc.point_weights, disc.point_coordinates)
    for k in range(3):
        writer.append(0.5 * (k + 1), 1, 0.0, 0, {"displacement": rng.random((mesh.n_nodes, 3)),
                                                 "temperature": rng.random(mesh.n_nodes)},
                      {"stress": rng.random((disc.n_points, 6))})
    writer.close(True)
    with h5py.File(path, "r") as f:
        u, temp = f["fields/displacement"][()], f["fields/temperature"][()]
        vm = f["fields/element_average/von_mises"][()]
    with meshio.xdmf.TimeSeriesReader(path.with_suffix(".xdmf")) as reader:
        points, cells = reader.read_points_cells()
        assert np.array_equal(points, mesh.points) and sum(len(c.data) for c in cells) == mesh.n_elements
        for k in range(3):
            t, point_data, cell_data = reader.read_data(k)
            assert t == 0.5 * (k + 1) and np.array_equal(point_data["displacement"], u[k])
            assert np.array_equal(point_data["temperature"], temp[k])
            assert np.array_equal(np.concatenate(cell_data["von_mises"]), vm[k])
    back, times, fields = read_meshio_series(path.with_suffix(".xdmf"))
    assert np.array_equal(times, [0.5, 1.0, 1.5]) and np.array_equal(fields["displacement"], u)
    # wedges are written in VTK's numbering and read back in CalculiX's
    assert np.array_equal(np.concatenate([b.connectivity.ravel() for b in back.blocks]),
                          np.concatenate([b.connectivity.ravel() for b in mesh.blocks]))
    reader = vtk.vtkXdmfReader()
    reader.SetFileName(str(path.with_suffix(".xdmf")))
    reader.UpdateInformation()
    steps = reader.GetOutputInformation(0).Get(vtk.vtkStreamingDemandDrivenPipeline.TIME_STEPS())
    assert np.allclose(steps, [0.5, 1.0, 1.5])
    reader.UpdateTimeStep(steps[2])
    grid = reader.GetOutputDataObject(0)
    assert grid.GetNumberOfCells() == mesh.n_elements
    assert np.array_equal(vtk_to_numpy(grid.GetPointData().GetArray("displacement")), u[2])
    assert np.array_equal(vtk_to_numpy(grid.GetCellData().GetArray("von_mises")), vm[2])
    # VTK sees every cell with its true volume, positive (a wedge in CalculiX's numbering would be inside out)
    quality = vtk.vtkMeshQuality()
    quality.SetInputData(grid)
    quality.SetTetQualityMeasureToVolume()
    quality.SetHexQualityMeasureToVolume()
    quality.SetWedgeQualityMeasureToVolume()
    quality.Update()
    volumes = vtk_to_numpy(quality.GetOutput().GetCellData().GetArray("Quality"))
    linear = grid.GetCellType(0) in (vtk.VTK_TETRA, vtk.VTK_HEXAHEDRON, vtk.VTK_WEDGE)
    if linear and all(b.element in ("C3D4", "C3D8", "C3D6") for b in mesh.blocks):
        np.testing.assert_allclose(volumes.sum(), Discretization(mesh).volume, rtol=1e-12)
        assert np.all(volumes > 0)
