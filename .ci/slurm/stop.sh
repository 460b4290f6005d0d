#!/usr/bin/env bash
# Stop the single-node SLURM test cluster started by .ci/slurm/start.sh.
#
#   bash .ci/slurm/stop.sh               # slurmd, slurmctld, slurmdbd, mariadbd, munged
#   bash .ci/slurm/stop.sh --slurm-only  # only the three SLURM daemons
#
# Running jobs are cancelled first. Saved state (/var/lib/slurm, the MariaDB
# accounting database) is kept, so job ids keep increasing after a restart.
# Each daemon gets 20 s to exit after its polite stop, then SIGKILL.
set -uo pipefail

RUN_DIR=/run/slurm
SLURM_ONLY=0
[ "${1:-}" = "--slurm-only" ] && SLURM_ONLY=1

log() { echo "[slurm-ci stop] $*" >&2; }

# pids of a daemon: from its pid file if that process is alive, else by exact
# executable name (only the daemon binaries of this cluster).
pids_of() { # pids_of NAME PIDFILE
    local pid
    if [ -s "$2" ] && pid=$(cat "$2") && kill -0 "$pid" 2>/dev/null; then
        echo "$pid"
        return
    fi
    pgrep -x "$1" 2>/dev/null || true
}

# stop_daemon NAME PIDFILE: SIGTERM, wait up to 20 s, then SIGKILL.
stop_daemon() {
    local name=$1 pidfile=$2 pids pid
    pids=$(pids_of "$name" "$pidfile")
    if [ -z "$pids" ]; then
        log "$name not running"
        return
    fi
    log "stopping $name (pid ${pids//$'\n'/ })"
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 40); do
        local alive=0
        for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.5
    done
    for pid in $pids; do
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) did not exit; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$pidfile"
}

if command -v scancel >/dev/null 2>&1 && timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; then
    log "cancelling all jobs"
    mapfile -t jobs < <(timeout 10 squeue -h -o %A 2>/dev/null | sort -u)
    [ "${#jobs[@]}" -gt 0 ] && timeout 10 scancel "${jobs[@]}" >/dev/null 2>&1
    sleep 1
fi

stop_daemon slurmd "$RUN_DIR/slurmd.pid"
stop_daemon slurmctld "$RUN_DIR/slurmctld.pid"
stop_daemon slurmdbd "$RUN_DIR/slurmdbd.pid"

if [ "$SLURM_ONLY" = 0 ]; then
    stop_daemon mariadbd /run/mysqld/mysqld.pid
    stop_daemon munged /run/munge/munged.pid
fi
log "done"
