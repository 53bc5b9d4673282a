"""Neural models. Depends only on torch and torch-geometric (no rdkit/pymatgen),
so training runs on GPU machines that have neither."""
