"""structrom.mpi: distributed linear algebra over mpi4py and petsc4py (the lowest layer).

Nothing here knows about meshes or mechanics: partitions of point clouds, contiguous ownership of
degrees of freedom, assembly of COO contributions into PETSc matrices and vectors, reductions.
"""
import os as _os

# Debian's petsc4py is found through /usr/lib/petsc or PETSC_DIR (see README).
if not _os.path.exists("/usr/lib/petsc"):
    _default = "/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-real"
    if _os.path.isdir(_default):
        _os.environ.setdefault("PETSC_DIR", _default)
