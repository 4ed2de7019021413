"""Full-size data of a reduced model, read on demand from its file (reconstruction only).

:class:`FullSizeData` (a mixin of :class:`~structrom.rom.online.model.ReducedModel`) reads, lazily and
once, the rows of the full displacement modes ``(n_dofs, N)`` and of the prescribed-displacement fields
``(n_dofs, n_G)``, the full Gappy bases ``(n_points * c, m)`` of the dual quantities (and the von Mises
map of the stress basis) and the mesh's node sets; small row selections are read from the HDF5 file
without reading the whole matrix. The solve never calls these.
"""
from __future__ import annotations

import contextlib

import numpy as np

from structrom.rom.model_file import ModelFileError
from structrom.rom.voigt import STRESS_WEIGHTS

from .errors import OnlineError


class FullSizeData:
    """The reconstruction-side reads of :class:`~structrom.rom.online.model.ReducedModel`.

    A mixin: it reads the host's ``path``, ``group``, ``data`` and ``n_mesh_nodes``, and keeps what it
    read in the host's ``_cache`` dict.
    """

    @contextlib.contextmanager
    def _h5(self):
        """The model's HDF5 group, open for reading (a context manager)."""
        import h5py

        if self.path is None:
            raise OnlineError("this model lives in memory and has no full modes / dual bases: "
                              "load it from a file or give data.modes and the dual bases")
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise ModelFileError(f"{self.path}: cannot reopen the model file ({exc})") from None
        with f:
            yield f[self.group]

    def modes(self, dofs: np.ndarray | None = None) -> np.ndarray:
        """Rows ``dofs`` of the full displacement modes ``(len(dofs), N)`` (all ``(n_dofs, N)`` if None).
        Small selections are read from the file; the whole matrix is read (and kept) otherwise."""
        return self._full_rows("modes", "modes/full", self.data.modes, dofs)

    def lifting_fields(self, dofs: np.ndarray | None = None) -> np.ndarray:
        """Rows ``dofs`` of the unit fields of the prescribed displacements ``(len(dofs), n_G)`` (as
        :meth:`modes`); ``(.., 0)`` for a model without them."""
        lift = self.data.lifting
        if lift is None:
            return np.zeros((3 * (self.n_mesh_nodes or 0) if dofs is None else len(dofs), 0))
        return self._full_rows("lifting", "lifting/full", lift.full, dofs)

    def _full_rows(self, key: str, dataset: str, in_memory, dofs: np.ndarray | None) -> np.ndarray:
        full = self._cache.get(key)
        if full is None and in_memory is not None:
            full = self._cache[key] = np.asarray(in_memory)
        if full is not None:
            return full if dofs is None else full[dofs]
        with self._h5() as f:
            ds = f[dataset]
            if dofs is None or len(dofs) > 0.05 * ds.shape[0] or len(dofs) > 4096:
                full = self._cache[key] = ds[()]
                return full if dofs is None else full[dofs]
            uniq, inv = np.unique(dofs, return_inverse=True)
            return ds[uniq.tolist(), :][inv] if len(uniq) else np.zeros((0, ds.shape[1]))

    def dual_basis(self, quantity: str) -> np.ndarray:
        """The full Gappy basis ``(n_points * c, m)`` of a dual quantity (read once, then kept)."""
        if quantity not in self.data.duals:
            raise OnlineError(f"this model has no dual basis for {quantity!r}; it has {sorted(self.data.duals)}")
        key = ("dual", quantity)
        if key not in self._cache:
            basis = self.data.duals[quantity].basis
            if basis is None:
                with self._h5() as f:
                    basis = f[f"dual/{quantity}/basis"][()]
            self._cache[key] = np.asarray(basis)
        return self._cache[key]

    def von_mises_basis(self) -> np.ndarray:
        """The stress basis mapped so that von Mises is a norm: ``(n_points * 6, m)`` rows ``V Psi_k`` with
        ``V = diag(sqrt(1.5 W)) P_dev`` (``W``: :data:`structrom.rom.voigt.STRESS_WEIGHTS`), hence
        ``von_mises(Psi_k beta) = ||V Psi_k beta||`` (read once, then kept)."""
        key = ("von_mises_basis",)
        if key not in self._cache:
            basis = self.dual_basis("stress")  # (n_points * 6, m), point-major rows
            m = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
            V = np.sqrt(1.5 * STRESS_WEIGHTS)[:, None] * (np.eye(6) - np.outer(m, m) / 3.0)
            self._cache[key] = np.einsum("ij,pjm->pim", V, basis.reshape(-1, 6, basis.shape[1])).reshape(basis.shape)
        return self._cache[key]

    def node_set(self, name: str) -> np.ndarray:
        """Node indices of a node set of the model's mesh (read from the file)."""
        key = ("node_set", name)
        if key not in self._cache:
            if self.data.mesh is not None:
                self._cache[key] = self.data.mesh.node_set(name)
            else:
                with self._h5() as f:
                    sets = f.get("mesh/node_sets")
                    if sets is None or name not in sets:
                        known = sorted(sets) if sets is not None else []
                        raise OnlineError(f"node set {name!r} is not in the model's mesh; known: {known}")
                    self._cache[key] = sets[name][()]
        return self._cache[key]
