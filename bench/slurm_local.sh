#!/usr/bin/env bash
# Runs the tiny campaign through the unchanged SLURM profile on a real SLURM, started here as a two-node
# cluster on this one machine, and checks what the cluster was asked for:
#   * every training job is one 2-node job (--nodes=2, --gres=gpu:1 per node) whose two torchrun agents
#     meet at a rendezvous on the first node and train one model (DDP over gloo: there is no real GPU);
#   * every search job asks for one GPU (--gpus=1); the GPUs are placeholder device files, so torch sees
#     none and runtime.device: auto falls back to the CPU;
#   * the CHGNet check fans out into one job per batch (the checkpoint).
# Then (phase "timelimit") it trains one generator for longer than its SLURM time limit: SLURM kills the job,
# the profile's retries resubmit it, and training continues from its checkpoint (runtime.checkpoint_minutes).
# bench/slurm_local_check.py reads the controller's job records and prints ok/FAIL for each claim.
#
#   bash bench/slurm_local.sh [campaign|timelimit|all] [RESULTS_DIR]   (default: all, results/slurm_local)
#
# For a disposable machine or container only: it needs root, installs Debian's slurm-wlm and munge when they
# are missing, starts munged, slurmctld and two slurmd, and stops the SLURM daemons and removes its
# /etc/slurm/slurm.conf when it ends (it refuses to run where another slurm.conf exists: jobs' own srun calls
# read /etc/slurm, not SLURM_CONF). Run it from the repository root
# with the project's environment active (`pip install -r requirements.txt`) and ../shared/data beside it,
# as for the tests. Its record is in docs/benchmarks.md ("SLURM, end to end").
set -euo pipefail
cd "$(dirname "$0")/.."
PHASE=${1:-all}
RESULTS=${2:-results/slurm_local}
case $PHASE in campaign|timelimit|all) ;; *) echo "slurm_local.sh: the phase is campaign, timelimit or all, not $PHASE" >&2; exit 2;; esac
[ "$(id -u)" = 0 ] || { echo "slurm_local.sh: needs root (it starts SLURM daemons); run it in a disposable container" >&2; exit 2; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
fi

MARK="# written by invdesign bench/slurm_local.sh"
if [ -e /etc/slurm/slurm.conf ] && ! head -1 /etc/slurm/slurm.conf | grep -qF "$MARK"; then
  echo "slurm_local.sh: /etc/slurm/slurm.conf exists (a real SLURM installation?); not touching it" >&2; exit 2
fi
ETC=$(mktemp -d /tmp/invdesign-slurm.XXXXXX)
mkdir -p /etc/slurm
export SLURM_CONF=/etc/slurm/slurm.conf
HOST=$(hostname -s)
N1=$HOST           # the first node carries the machine's name, so the rendezvous address resolves
N2=${HOST}-b
mkdir -p "$ETC/state" "$ETC/spool" "$ETC/log"
for i in 0 1 2 3; do mknod "$ETC/gpu$i" c 1 3; done   # placeholder GPU device files (like /dev/null)

cat > "$SLURM_CONF" <<EOF
$MARK
ClusterName=invdesign-local
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
AuthType=auth/munge
StateSaveLocation=$ETC/state
SlurmdSpoolDir=$ETC/spool/%n
SlurmctldPidFile=$ETC/slurmctld.pid
SlurmdPidFile=$ETC/slurmd-%n.pid
SlurmctldLogFile=$ETC/log/slurmctld.log
SlurmdLogFile=$ETC/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MinJobAge=7200
KillWait=10
ReturnToService=2
MpiDefault=none
GresTypes=gpu
# The profile asks 8 CPUs and 32 GB for a training job: declare nodes that size whatever this machine has.
SlurmdParameters=config_overrides
NodeName=$N1 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=16818 CPUs=8 RealMemory=64000 Gres=gpu:2 State=UNKNOWN
NodeName=$N2 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=16819 CPUs=8 RealMemory=64000 Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
cat > /etc/slurm/gres.conf <<EOF
$MARK
AutoDetect=off
NodeName=$N1 Name=gpu File=$ETC/gpu[0-1]
NodeName=$N2 Name=gpu File=$ETC/gpu[2-3]
EOF

if ! pgrep -x munged >/dev/null; then
  mkdir -p /run/munge && chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  runuser -u munge -- munged
fi
stop() { pkill -f "slurmd -N $N1" || true; pkill -f "slurmd -N $N2" || true; pkill -f "slurmctld -f $SLURM_CONF" || true
        rm -f /etc/slurm/slurm.conf /etc/slurm/gres.conf; }
trap stop EXIT
slurmctld -f "$SLURM_CONF"
slurmd -N "$N1" -f "$SLURM_CONF"
slurmd -N "$N2" -f "$SLURM_CONF"
for _ in $(seq 30); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo
srun -N2 --ntasks-per-node=1 true   # both nodes take work

# No accounting database here, so sacct cannot report job states: ask squeue (kept 2 h by MinJobAge).
SMK=(snakemake --profile workflow/profiles/slurm --slurm-status-command squeue --slurm-init-seconds-before-status-checks 10)
status=0
if [ "$PHASE" != timelimit ]; then
  start=$(date +%s)
  "${SMK[@]}" --configfile config/tests/tiny.yaml \
    --config "results=$RESULTS" 'runtime={"device": "auto", "threads": 1, "nodes": 2, "gpus": 1}'
  echo "campaign through SLURM: $(( $(date +%s) - start )) s"
  python3 -m bench.slurm_local_check campaign "$RESULTS" || status=1
fi
if [ "$PHASE" != campaign ]; then
  # one molecule VAE for 1,200 epochs (about 3 min on one core) under a 1 min SLURM limit, a checkpoint every 15 s
  TL=${RESULTS}_timelimit
  python3 -m bench.slurm_local_check timelimit-config "$TL"
  start=$(date +%s)
  "${SMK[@]}" --configfile "$TL/config.yaml" --set-resources train_generator:runtime=1 \
    -- "$TL/tiny_mol/models/generator_vae.pt"
  echo "training through SLURM time limits: $(( $(date +%s) - start )) s"
  python3 -m bench.slurm_local_check timelimit "$TL" || status=1
fi
exit $status
