"""Layer 2, sources: encoders by name (one module per family), image sets, SPair-71k, the mini
benchmark, projectors, the paper's table, offline models. May import ``core``, nothing above."""
