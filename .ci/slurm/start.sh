#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine, for the tests of profiles/slurm.
#
# Why: the SLURM profile is only worth something if a real scheduler accepts what it submits
# (partition, --gpus, --mem, -t, requeue) and Snakemake can follow the jobs to the end. Debian's
# slurmctld + slurmd + munge give such a scheduler on localhost in seconds.
#
# What it does (idempotent: a second call finds the cluster up and only checks it):
#   1. installs munge, slurmctld, slurmd, slurm-client with apt-get when they are missing;
#   2. writes /etc/slurm/slurm.conf and /etc/slurm/gres.conf for THIS machine (hostname, CPUs,
#      memory measured by `slurmd -C`), with fake GPUs (gres `gpu` on harmless character devices
#      such as /dev/null) so that GPU requests schedule; training then falls back to the CPU as it
#      does without CUDA;
#   3. starts munged, slurmctld and slurmd (daemons, pid files under $STATE_DIR);
#   4. waits until `sinfo` shows the node idle.
# Partitions: `cpu` (default) and `gpu`, both on the one node. No slurmdbd: job status comes
# from `squeue` (MinJobAge=600 keeps finished jobs visible), so Snakemake runs with
# `--slurm-status-command squeue`.
#
# Needs root. Stop everything with .ci/slurm/stop.sh.
# Env: FRUGALMED_SLURM_STATE (default /var/lib/frugalmed-slurm): state, logs, pid files.
#      FRUGALMED_SLURM_TIMEOUT (default 60): seconds to wait for the node to become idle.
#      FRUGALMED_SLURM_GPUS (default: the number of CPUs, at most 4): fake GPUs on the node.
set -euo pipefail

STATE_DIR="${FRUGALMED_SLURM_STATE:-/var/lib/frugalmed-slurm}"
TIMEOUT="${FRUGALMED_SLURM_TIMEOUT:-60}"
CONF_DIR=/etc/slurm
MARKER="# managed by frugalmed .ci/slurm/start.sh"

log() { echo "[slurm-ci] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, starts munged/slurmctld/slurmd)"

# --- 1. packages -------------------------------------------------------------------------------
missing=()
for cmd in munged slurmctld slurmd sinfo sbatch squeue scontrol; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing SLURM + munge (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq munge slurmctld slurmd slurm-client >/dev/null
fi

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
pid_dead() { [ -s "$1" ] && ! kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -n1; }

# Already up? (idempotent second call)
if pid_alive "$STATE_DIR/slurmctld.pid" && pid_alive "$STATE_DIR/slurmd.pid" \
    && [[ "$(node_state)" =~ ^(idle|mixed|allocated) ]]; then
    log "cluster already running: $(sinfo -h -o '%P %a %D %T' | tr '\n' ';')"
    exit 0
fi

# --- 2. configuration ----------------------------------------------------------------------------
if [ -f "$CONF_DIR/slurm.conf" ] && ! grep -qF "$MARKER" "$CONF_DIR/slurm.conf"; then
    die "$CONF_DIR/slurm.conf exists and was not written by this script; refusing to overwrite it"
fi
mkdir -p "$CONF_DIR" "$STATE_DIR/ctld" "$STATE_DIR/d"

# `slurmd -C` prints this machine's node line as slurmd itself measures it
# (NodeName=<hostname> CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..)
node_line="$(slurmd -C | grep '^NodeName=')"
[ -n "$node_line" ] || die "slurmd -C printed no NodeName line"
host="$(sed -E 's/^NodeName=([^ ]+).*/\1/' <<<"$node_line")"
# Advertise slightly less memory than measured: a node whose RealMemory exceeds what slurmd
# finds at registration is drained.
real_mem="$(sed -E 's/.*RealMemory=([0-9]+).*/\1/' <<<"$node_line")"
node_line="$(sed -E "s/RealMemory=[0-9]+/RealMemory=$((real_mem * 95 / 100))/" <<<"$node_line")"
cpus="$(sed -E 's/.*CPUs=([0-9]+).*/\1/' <<<"$node_line")"
# As many fake GPUs as CPUs: training jobs then queue for CPUs, as on a real GPU node.
fake_devices=(/dev/null /dev/zero /dev/full /dev/urandom)
gpus="${FRUGALMED_SLURM_GPUS:-$(( cpus < ${#fake_devices[@]} ? cpus : ${#fake_devices[@]} ))}"
[ "$gpus" -ge 1 ] && [ "$gpus" -le "${#fake_devices[@]}" ] \
    || die "FRUGALMED_SLURM_GPUS must be 1..${#fake_devices[@]} (one distinct device file per fake GPU)"

cat >"$CONF_DIR/slurm.conf" <<EOF
$MARKER
# One-node test cluster for frugalmed's SLURM profile. Do not use in production.
ClusterName=frugalmedci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/slurmctld.log
SlurmdLogFile=$STATE_DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# No cgroups in containers: track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
# No slurmdbd: finished jobs stay visible to squeue/scontrol for 10 minutes, which is what the
# executor plugin's squeue status command relies on.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
# NodeAddr: reach slurmd on loopback even where the hostname does not resolve.
${node_line} NodeAddr=127.0.0.1 Gres=gpu:${gpus} State=UNKNOWN
PartitionName=cpu Nodes=${host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=${host} Default=NO MaxTime=INFINITE State=UP
EOF

{
    echo "$MARKER"
    echo "# Fake GPUs so that --gpus=1 / --gres=gpu:1 jobs schedule on a machine without one. A GPU"
    echo "# gres needs a device file (a count alone is reported as 0 by slurmd): one harmless"
    echo "# character device per GPU. No cgroup device constraint here, so nothing is blocked."
    echo "AutoDetect=off"
    for device in "${fake_devices[@]:0:$gpus}"; do
        echo "NodeName=${host} Name=gpu File=${device}"
    done
} >"$CONF_DIR/gres.conf"

# --- 3. daemons ----------------------------------------------------------------------------------
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then  # Debian's postinst normally creates it
    log "creating /etc/munge/munge.key"
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
fi
if ! pid_alive /run/munge/munged.pid; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
fi
for _ in $(seq 1 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"

if ! pid_alive "$STATE_DIR/slurmctld.pid"; then
    log "starting slurmctld"
    rm -f "$STATE_DIR/slurmctld.pid"
    # -c: clear stale jobs/state from an earlier run of this test cluster.
    slurmctld -c
fi
if ! pid_alive "$STATE_DIR/slurmd.pid"; then
    log "starting slurmd"
    rm -f "$STATE_DIR/slurmd.pid"
    slurmd
fi

# --- 4. wait for the node ------------------------------------------------------------------------
deadline=$((SECONDS + TIMEOUT))
state=""
while [ "$SECONDS" -lt "$deadline" ]; do
    # A daemon writes its pid file once it has forked; a pid file whose process is gone means
    # the daemon died (its log says why).
    pid_dead "$STATE_DIR/slurmctld.pid" && { state="slurmctld exited"; break; }
    pid_dead "$STATE_DIR/slurmd.pid" && { state="slurmd exited"; break; }
    state="$(node_state || true)"
    case "$state" in
        idle*|mixed*|allocated*) break ;;
        down*|drain*)
            scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
if ! [[ "$state" =~ ^(idle|mixed|allocated) ]]; then
    log "node state: '${state:-none}' (waited up to ${TIMEOUT}s); stop with .ci/slurm/stop.sh"
    tail -n 20 "$STATE_DIR/slurmctld.log" "$STATE_DIR/slurmd.log" >&2 || true
    die "SLURM node did not become idle"
fi
log "cluster up: $(sinfo -h -o '%P %a %D %T %G' | tr '\n' ';')"
