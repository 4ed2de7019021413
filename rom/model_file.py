"""The reduced model file: one versioned HDF5 file that the online stage and the server load.

Format ``structrom-reduced-model``, schema version 2 (version 1 files, without ``/validation`` and
``/indicator/calibration``, are still read); version 3 = version 2 with a ``/lifting`` group (prescribed
nonzero displacements, layout in :mod:`structrom.rom.lifting`), so that readers of version 2 refuse it. Shapes: ``N`` displacement modes, ``n_rp`` reduced
integration points (ECM points with positive weights, then the dual quantities' selected points with
zero weight), ``n_tn`` temperature nodes (nodes of the elements holding reduced points), ``m_q`` modes
of dual quantity ``q``, ``n_points`` integration points of the full mesh, ``n_dofs = 3 n_nodes``.

======================================  ===========================  =========================================
path                                    shape, type                  content
======================================  ===========================  =========================================
``/`` attrs ``format``,                 str, int, str                identification; ``provenance`` is JSON: code
``schema_version``, ``provenance``                                   version, configuration, snapshot hashes,
                                                                     tolerances, timings, number of ranks
``/`` attr ``units``                    JSON                         the units table
``/`` attr ``materials``                JSON list                    law configurations (``law_from_config``)
``/`` attr ``loading_schema``           JSON                         declared loading family and training ranges
``/`` attr ``dirichlet``                JSON list                    Dirichlet conditions of the first training
                                                                     case (node set, components, value); the
                                                                     nonzero ones are lifted (``/lifting``)
``/`` attr ``versions``                 JSON list                    version history, oldest first: ``version``,
                                                                     ``parent`` (or null), ``date``,
                                                                     ``loadings_added``, ``kept_as`` (the parent's
                                                                     file); absent or empty: version 1
``/mesh``                               group                        the full mesh (as in the snapshot files)
``/modes/full``                         (n_dofs, N) f8, chunked      displacement modes (orthonormal, mass)
``/modes/singular_values``              (N,) f8                      POD singular values
``/reduced/element``                    (n_rp,) i8                   element of each reduced point
``/reduced/point``                      (n_rp,) i8                   global integration point number
``/reduced/weights``                    (n_rp,) f8                   ECM weights (>= 0; 0 for dual-only points)
``/reduced/coordinates``                (n_rp, 3) f8                 physical coordinates
``/reduced/material``                   (n_rp,) i8                   index into ``materials``
``/reduced/integrator``                 (n_rp, 6, N) f8              strain of each mode at the point (B Phi)
``/reduced/temperature/nodes``          (n_tn,) i8                   mesh nodes needed for temperatures
``/reduced/temperature/coordinates``    (n_tn, 3) f8                 their coordinates
``/reduced/temperature/{data,indices,   CSR (n_rp, n_tn)             interpolation of nodal temperature to the
indptr}``                                                            reduced points
``/loads/pressure/<surface>``           (N,) f8                      Phi^T f for unit pressure on the surface set
``/loads/centrifugal``                  (N,) f8, attrs axis          Phi^T f for omega = 1
``/loads/gravity``                      (N, 3) f8                    Phi^T f for unit acceleration along x, y, z
``/loads/traction/<surface>``           (N, 3) f8                    Phi^T f for a unit traction along x, y, z
``/loads/force/<node set>``             (N, 3) f8                    Phi^T f for a unit force along x, y, z at
                                                                     each node of the set
``/dual/<q>/reduced_basis``             (n_rp * c, m_q) f8           Gappy basis at the reduced points (c = 1
                                                                     for scalars, 6 for stress, point-major)
``/dual/<q>/basis``                     (n_points * c, m_q) f8       full basis, chunked, for reconstruction
``/dual/<q>/singular_values``           (m_q,) f8
``/indicator`` attrs                    ``quantity``, ``tolerance``, error indicator: Gappy residual of this dual
                                        ``reference``                quantity, over max(its norm, reference:
                                                                     the largest training norm at the
                                                                     reduced points; 0 if absent); trust
                                                                     when below tolerance
``/indicator/calibration/factors``      (n_q, 1 + n_c) f8            calibrated factors of the error bound of
attrs ``components``, ``quantities``,   JSON, f8, str                each reported quantity (constant, then
``references``, ``margin``,                                          one per component), component scales,
``tolerance``, ``cases``,                                            left-out cases, training parameters and
``training``, ``scales``,                                            their scales, the guarantee; see
``statement``                                                        :mod:`structrom.rom.online.indicator`;
                                                                     optional (version 2)
``/validation/point``                   (n_val,) i8                  integration points kept out of the
``/validation/{weights,material}``      (n_val,) f8, i8              reduced set (validation cubature weights,
``/validation/integrator``              (n_val, 6, N) f8             materials, strain of each mode,
``/validation/temperature/{data,        CSR (n_val, n_tn)            temperature interpolation from
indices,indptr}``                                                    ``/reduced/temperature/nodes``, Gappy
``/validation/dual/<q>``                (n_val * c, m_q) f8          basis rows); optional (version 2)
======================================  ===========================  =========================================

Written atomically (``<name>.partial`` then ``os.replace``). :func:`load` checks format, version and
every shape, and names the first inconsistency.

Model kinds: the root attribute ``kind`` is ``"hyper_reduced"`` (this layout; files without the attribute
are of this kind) or ``"separated"`` (EIM-separated linear model, layout in
:mod:`structrom.rom.separated_model_file`). :func:`read_kind` tells them apart;
:func:`structrom.rom.online.load_model` returns the right online class.

Modules: :mod:`structrom.rom.model_data` (:class:`ReducedModelData`, :class:`DualBasis`, the format constants,
:class:`ModelFileError`), :mod:`structrom.rom.model_writer` (:func:`write`), :mod:`structrom.rom.model_reader`
(:func:`load`, :func:`read_kind`, :func:`check_header`, :func:`open_h5`). Every name is importable from here.
"""
from __future__ import annotations

from structrom.rom.model_data import (  # noqa: F401 (re-exported)
    FORMAT, KINDS, LIFTING_SCHEMA_VERSION, READABLE_VERSIONS, SCHEMA_VERSION, DualBasis, ModelFileError,
    ReducedModelData)
from structrom.rom.model_reader import (  # noqa: F401 (re-exported)
    _need, _read_indicator_data, _validate, check_header, load, open_h5, read_kind)
from structrom.rom.model_writer import _write_indicator_data, _write_rows, write  # noqa: F401 (re-exported)
