"""A loaded detector: its model resolved and verified, its family recognised, the engine on the
copy of the graph it needs, the family's contract checked; and detection with it, batched."""
