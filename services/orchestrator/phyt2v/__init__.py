"""PhyT2V-style iterative prompt refinement (`videophy-bench refine`); see docs/phyt2v.md."""
