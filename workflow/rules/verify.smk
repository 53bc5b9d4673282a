# Independent checks and chemist-facing exports. Molecules: GFN2-xTB (tblite) optimisation,
# connectivity check and a gap calibrated to the data's DFT scale; SDF with 3D coordinates.
# Crystals: CHGNet relaxation, energy above the CHGNet hull of the known phases, EOS bulk modulus
# (matcalc) of the stable ones; a zip of CIFs.

MOL_CAMPAIGNS = [c for c in CAMPAIGNS if config["campaigns"][c]["domain"] == "molecules"]
CRY_CAMPAIGNS = [c for c in CAMPAIGNS if config["campaigns"][c]["domain"] == "crystals"]


def _only(names):
    return "|".join(names) or "(?!)"  # a pattern that matches nothing when the list is empty


rule calibrate_xtb:
    input:
        dataset=rules.prepare_dataset.output.dataset,
    output:
        calibration=f"{RESULTS}/{{campaign}}/oracle/xtb_calibration.json",
    wildcard_constraints:
        campaign=_only(MOL_CAMPAIGNS),
    params:
        campaign=campaign_params("dataset", "oracle"),
    log:
        log_path("calibrate_xtb"),
    benchmark:
        bench_path("calibrate_xtb")
    threads: 1
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/calibrate_xtb.py"


rule verify_molecules:
    input:
        candidates=rules.filter_rank.output.parquet,
        dataset=rules.prepare_dataset.output.dataset,
        calibration=rules.calibrate_xtb.output.calibration,
    output:
        csv=f"{RESULTS}/{{campaign}}/candidates_verified.csv",
        parquet=f"{RESULTS}/{{campaign}}/candidates_verified.parquet",
        sdf=f"{RESULTS}/{{campaign}}/candidates.sdf",
        metrics=f"{RESULTS}/{{campaign}}/oracle/metrics.json",
    wildcard_constraints:
        campaign=_only(MOL_CAMPAIGNS),
    params:
        campaign=campaign_params("oracle", "target"),
    log:
        log_path("verify_molecules"),
    benchmark:
        bench_path("verify_molecules")
    threads: 1
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/verify_molecules.py"


checkpoint crystal_batches:
    input:
        candidates=rules.filter_rank.output.parquet,
        # earlier campaigns' verdicts that rank the candidates (oracle.feedback_from); one produced by this
        # workflow (results/<other campaign>/candidates_verified.parquet) is built first
        feedback=lambda wc: config["campaigns"][wc.campaign]["oracle"]["feedback_from"],
    output:
        batches=directory(f"{RESULTS}/{{campaign}}/oracle/batches"),
    wildcard_constraints:
        campaign=_only(CRY_CAMPAIGNS),
    params:
        campaign=campaign_params("oracle"),
    log:
        log_path("crystal_batches"),
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/crystal_batches.py"


rule relax_crystal_batch:
    """One CHGNet job per batch of candidates; Snakemake learns the batches from the checkpoint above, so
    a cluster profile runs them side by side."""
    input:
        batch=f"{RESULTS}/{{campaign}}/oracle/batches/batch_{{batch}}.parquet",
        dataset=rules.prepare_dataset.output.dataset,
    output:
        verified=f"{RESULTS}/{{campaign}}/oracle/verified/batch_{{batch}}.parquet",
    wildcard_constraints:
        campaign=_only(CRY_CAMPAIGNS),
        batch=r"\d+",
    params:
        campaign=campaign_params("oracle", "target"),
    log:
        f"{RESULTS}/logs/{{campaign}}/relax_crystal_batch_{{batch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{campaign}}/relax_crystal_batch_{{batch}}.tsv"
    threads: 1  # CHGNet on small cells is fastest single-threaded
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/relax_crystal_batch.py"


def verified_batches(wc):
    """The verified files of every batch the checkpoint wrote (known once it has run)."""
    folder = checkpoints.crystal_batches.get(campaign=wc.campaign).output.batches
    ids = glob_wildcards(os.path.join(folder, "batch_{batch}.parquet")).batch
    return expand(f"{RESULTS}/{wc.campaign}/oracle/verified/batch_{{batch}}.parquet", batch=sorted(ids))


rule verify_crystals:
    input:
        batches=verified_batches,
    output:
        csv=f"{RESULTS}/{{campaign}}/candidates_verified.csv",
        parquet=f"{RESULTS}/{{campaign}}/candidates_verified.parquet",
        metrics=f"{RESULTS}/{{campaign}}/oracle/metrics.json",
    wildcard_constraints:
        campaign=_only(CRY_CAMPAIGNS),
    params:
        campaign=campaign_params("oracle", "target"),
    log:
        log_path("verify_crystals"),
    benchmark:
        bench_path("verify_crystals")
    threads: 1
    priority: chain_priority
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/verify_crystals.py"


rule package_crystals:
    input:
        candidates=rules.filter_rank.output.parquet,
    output:
        zip=f"{RESULTS}/{{campaign}}/candidates_cifs.zip",
    wildcard_constraints:
        campaign=_only(CRY_CAMPAIGNS),
    log:
        log_path("package_crystals"),
    threads: 1
    conda:
        "../../envs/chem.yaml"
    script:
        "../scripts/package_crystals.py"


def final_outputs():
    return (expand(f"{RESULTS}/{{campaign}}/candidates_verified.csv", campaign=CAMPAIGNS)
            + expand(f"{RESULTS}/{{campaign}}/candidates.sdf", campaign=MOL_CAMPAIGNS)
            + expand(f"{RESULTS}/{{campaign}}/candidates_cifs.zip", campaign=CRY_CAMPAIGNS))
