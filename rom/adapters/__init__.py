"""Nonintrusive adapters for third-party FE files (see docs/adapters.md).

* :mod:`structrom.rom.adapters.calculix` - CalculiX decks, runs, ``.dat``/``.frd`` results and exported matrices;
  the work is done by :mod:`~structrom.rom.adapters.inp_writer` / :mod:`~structrom.rom.adapters.inp` (the mesh
  as input cards and back), :mod:`~structrom.rom.adapters.calculix_runner` (running ccx),
  :mod:`~structrom.rom.adapters.dat` (``.dat`` results), :mod:`~structrom.rom.adapters.calculix_static_deck`
  (complete quasi-static decks), :mod:`~structrom.rom.adapters.calculix_matrices` (exported matrices) and
  :mod:`~structrom.rom.adapters.calculix_error`;
* :mod:`structrom.rom.adapters.frd` - CalculiX ``.frd`` results in full (mesh, every block of every increment);
* :mod:`structrom.rom.adapters.calculix_deck` - a user's CalculiX deck: laws, steps, load and temperature histories
  (:mod:`~structrom.rom.adapters.calculix_keywords`: what each keyword becomes; :mod:`~structrom.rom.adapters.calculix_materials`);
* :mod:`structrom.rom.adapters.abaqus_assembly` - Abaqus decks with parts and assemblies read as their flat deck
  (:mod:`~structrom.rom.adapters.abaqus_instance`: instances placed and renumbered;
  :mod:`~structrom.rom.adapters.abaqus_cards`: named boundary types, the flat deck written for ccx);
* :mod:`structrom.rom.adapters.calculix_history` - ccx's step and amplitude rules for load/temperature histories;
* :mod:`structrom.rom.adapters.calculix_import` - deck + ccx runs -> training cases (``structrom import calculix``;
  :mod:`~structrom.rom.adapters.calculix_import_runs`: the runs found, read and checked);
* :mod:`structrom.rom.adapters.calculix_predict` - a new deck of a model's family -> the loading a reduced model answers,
  and the answer written as ``.frd`` (:mod:`~structrom.rom.adapters.frd_writer`) and VTU (``structrom predict``);
* :mod:`structrom.rom.adapters.ansys_import` - Ansys static ``.rst`` runs -> training cases (``structrom import ansys``);
* :mod:`structrom.rom.adapters.training_cases` - what both imports share (force grouping, snapshot writing);
* :mod:`structrom.rom.adapters.ansys` - Ansys ``.rst``/``.cdb`` meshes and displacements through ``ansys-mapdl-reader``
  (every call into it in a process of its own, :mod:`~structrom.rom.adapters.reader_process`; the records read
  there, :mod:`~structrom.rom.adapters.ansys_records`; element types kept, skipped or refused,
  :mod:`~structrom.rom.adapters.ansys_elements`);
* :mod:`structrom.rom.adapters.ansys_results` - Ansys stresses, strains and temperatures;
* :mod:`structrom.rom.adapters.meshio_series` - meshes plus nodal time series from anything meshio reads.

The HF solver protocol (CalculiX or in-house solves written as snapshot files) is :mod:`structrom.rom.hifi_protocol`.
"""
