"""Independent physics oracles that check generated candidates: GFN2-xTB (tblite) for molecules,
CHGNet relaxation, CHGNet energy above hull and matcalc EOS bulk modulus for crystals."""
