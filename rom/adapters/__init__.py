"""Nonintrusive adapters for third-party FE files (see docs/adapters.md).

* :mod:`structrom.rom.adapters.calculix` - CalculiX decks, runs, ``.dat``/``.frd`` results and exported matrices;
* :mod:`structrom.rom.adapters.ansys` - Ansys ``.rst``/``.cdb`` through ``ansys-mapdl-reader`` (optional);
* :mod:`structrom.rom.adapters.meshio_series` - meshes plus nodal time series from anything meshio reads.

The HF solver protocol (CalculiX or in-house solves written as snapshot files) is :mod:`structrom.rom.hifi_protocol`.
"""
