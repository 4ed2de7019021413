"""structrom.rom: FE kernel, constitutive laws, HF solver, POD, hyper-reduction, reduced models, adapters."""
