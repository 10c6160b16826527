"""Studies: benches, sweeps, reports, pictures and the tables and plots they write."""
