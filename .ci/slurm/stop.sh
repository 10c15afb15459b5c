#!/usr/bin/env bash
# Stop the one-node test cluster that .ci/slurm/start.sh started: cancel its jobs, then end
# slurmd, slurmctld and munged by the pids in their pid files (never by process name, so that
# nothing else on the machine is touched). Safe to call when nothing runs.
# Env: FRUGALMED_SLURM_STATE (default /var/lib/frugalmed-slurm), as for start.sh.
#      FRUGALMED_SLURM_PURGE=1 also deletes the state directory and the generated config files.
set -uo pipefail

STATE_DIR="${FRUGALMED_SLURM_STATE:-/var/lib/frugalmed-slurm}"
MARKER="# managed by frugalmed .ci/slurm/start.sh"

log() { echo "[slurm-ci] $*" >&2; }

stop_pidfile() {  # name pidfile
    local name="$1" pidfile="$2" pid
    [ -s "$pidfile" ] || { log "$name: no pid file"; return 0; }
    pid="$(cat "$pidfile")"
    if ! kill -0 "$pid" 2>/dev/null; then
        log "$name: not running (stale pid $pid)"
        rm -f "$pidfile"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
        sleep 0.5
    done
    log "$name did not stop after 15s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
    rm -f "$pidfile"
}

# Cancel whatever still runs, so that slurmd leaves no job processes behind.
if [ -s "$STATE_DIR/slurmctld.pid" ] && kill -0 "$(cat "$STATE_DIR/slurmctld.pid")" 2>/dev/null; then
    if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
        log "cancelling remaining jobs"
        scancel --full --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 1 20); do
            [ -z "$(squeue -h -t RUNNING,COMPLETING,PENDING -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

stop_pidfile slurmd "$STATE_DIR/slurmd.pid"
stop_pidfile slurmctld "$STATE_DIR/slurmctld.pid"
stop_pidfile munged /run/munge/munged.pid

if [ "${FRUGALMED_SLURM_PURGE:-0}" = 1 ]; then
    log "purging $STATE_DIR and the generated /etc/slurm/{slurm,gres}.conf"
    rm -rf "$STATE_DIR"
    for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
        [ -f "$f" ] && grep -qF "$MARKER" "$f" && rm -f "$f"
    done
fi
log "stopped"
