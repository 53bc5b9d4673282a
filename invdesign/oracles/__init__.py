"""Independent physics oracles that check generated candidates (GFN2-xTB for molecules)."""
