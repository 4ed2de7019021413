"""The offline stage (``mpirun -n P structrom offline config.toml``): snapshots -> reduced model file."""
