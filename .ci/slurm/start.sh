#!/usr/bin/env bash
# Install, configure and start a real single-node SLURM cluster (Debian's
# slurm-wlm 22.05) with slurmdbd accounting on this machine, for the tests
# marked `slurm` (they submit jobs through submitit).
#
#   sudo bash .ci/slurm/start.sh     # as root; idempotent
#
# - Works without systemd: every daemon is started by hand, detached, with its
#   output in /var/log/slurm/*.log.
# - If the cluster is already up and working it returns 0 within a second.
# - It ends by running a real job (srun + sbatch --wait + sacct) and exits
#   non-zero, printing the tail of the daemon logs, if anything is broken.
#
# Environment knobs (all optional):
#   SLURM_CI_CLUSTER   cluster name            (default: llcci)
#   SLURM_CI_JOBACCT   JobAcctGatherType       (default: jobacct_gather/linux)
#   SLURM_CI_SKIP_INSTALL=1   never run apt-get (fail if packages are missing)
#   SLURM_CI_FORCE_RESTART=1  restart the daemons even if the cluster is up
# See docs/slurm-ci.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOG_DIR=/var/log/slurm
MUNGE_LOG=/var/log/munge/munged.log
RUN_DIR=/run/slurm
STATE_DIR=/var/lib/slurm
CONF_DIR=/etc/slurm
CLUSTER="${SLURM_CI_CLUSTER:-llcci}"
JOBACCT="${SLURM_CI_JOBACCT:-jobacct_gather/linux}"
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_PASS_FILE="$CONF_DIR/.slurmdbd-db-pass"
PACKAGES=(munge slurm-client slurmctld slurmd slurmdbd mariadb-server mariadb-client)
T0=$(date +%s)

log() { echo "[slurm-ci $(($(date +%s) - T0))s] $*" >&2; }

dump_logs() {
    local f
    echo "----- tail of logs in $LOG_DIR -----" >&2
    for f in "$MUNGE_LOG" "$LOG_DIR"/mariadb.log "$LOG_DIR"/slurmdbd.log \
             "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd.log; do
        [ -f "$f" ] || continue
        echo "===== $f (last 40 lines) =====" >&2
        tail -n 40 "$f" >&2 || true
    done
    if command -v sinfo >/dev/null 2>&1; then
        echo "===== sinfo -N -l =====" >&2
        timeout 10 sinfo -N -l >&2 2>&1 || true
        echo "===== scontrol show node =====" >&2
        timeout 10 scontrol show node >&2 2>&1 || true
    fi
    echo "----- end of logs -----" >&2
}

die() {
    echo "[slurm-ci] ERROR: $*" >&2
    dump_logs
    exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.5 s.
# With WAIT_PIDFILE set, give up early once the daemon that writes that pid
# file is dead (after a 5 s grace period for it to fork and write it); with
# WAIT_PID set, as soon as that process is gone.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local start deadline
    start=$(date +%s)
    deadline=$((start + secs))
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            die "timed out after ${secs}s waiting for $what"
        fi
        if [ -n "${WAIT_PIDFILE:-}" ] && [ "$(date +%s)" -ge $((start + 5)) ] &&
            ! pid_alive "$WAIT_PIDFILE"; then
            die "the daemon died while waiting for $what (no live pid in $WAIT_PIDFILE)"
        fi
        if [ -n "${WAIT_PID:-}" ] && ! kill -0 "$WAIT_PID" 2>/dev/null; then
            die "the daemon (pid $WAIT_PID) died while waiting for $what"
        fi
        sleep 0.5
    done
}

have_all_binaries() {
    local b
    for b in munged munge unmunge mariadbd mariadb mariadb-admin slurmdbd slurmctld \
             slurmd sinfo srun sbatch sacct sacctmgr scontrol; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || return 1
    done
}

# ---------------------------------------------------------------- health checks
pid_alive() { # pid_alive PIDFILE
    [ -s "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null
}
# (the pid check first: with no munged, `munge` retries for a few seconds)
munge_ok() { pid_alive /run/munge/munged.pid && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
mariadb_ok() { mariadb-admin --protocol=socket -uroot ping >/dev/null 2>&1; }
slurmdbd_ok() { timeout 10 sacctmgr -n -P show cluster format=cluster >/dev/null 2>&1; }
slurmctld_ok() { timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_state() { timeout 10 sinfo -h -N -o '%T' 2>/dev/null | head -n1; }
node_ready() {
    case "$(node_state)" in
        idle | mixed | allocated | completing) return 0 ;;
        *) return 1 ;;
    esac
}
cluster_registered() {
    timeout 10 sacctmgr -n -P show cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"
}
cluster_up() {
    have_all_binaries && munge_ok && slurmctld_ok && node_ready && cluster_registered
}

# ------------------------------------------------------------------------ steps
install_packages() {
    if have_all_binaries; then
        log "packages already installed"
        return
    fi
    [ "${SLURM_CI_SKIP_INSTALL:-0}" = 1 ] && die "SLURM packages missing and SLURM_CI_SKIP_INSTALL=1"
    log "installing ${PACKAGES[*]} (apt-get)"
    # Keep the packages' postinst from trying to start services (no systemd,
    # and we start every daemon ourselves). Respect an existing policy-rc.d.
    local created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    local rc=0
    {
        apt-get update &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                "${PACKAGES[@]}"
    } >"$LOG_DIR/apt.log" 2>&1 || rc=$?
    [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    if [ "$rc" != 0 ]; then
        tail -n 30 "$LOG_DIR/apt.log" >&2
        die "apt-get failed (rc=$rc); full log in $LOG_DIR/apt.log"
    fi
    have_all_binaries || die "packages installed but some SLURM/munge/MariaDB binaries are missing"
}

ensure_hosts() {
    local host=$1
    if ! getent ahostsv4 "$host" 2>/dev/null | awk '{print $1}' | grep -q '^127\.'; then
        log "adding '127.0.0.1 $host' to /etc/hosts"
        echo "127.0.0.1 $host" >>/etc/hosts
    fi
}

make_dirs() {
    mkdir -p "$LOG_DIR" "$RUN_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd" \
             /run/munge /var/log/munge /var/lib/munge /run/mysqld
    chown slurm:slurm "$LOG_DIR" "$RUN_DIR" "$STATE_DIR/slurmctld"
    chmod 755 "$LOG_DIR" "$RUN_DIR"
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    chown mysql:mysql /run/mysqld
    local f
    for f in slurmctld.log slurmdbd.log; do
        touch "$LOG_DIR/$f"; chown slurm:slurm "$LOG_DIR/$f"
    done
    touch "$LOG_DIR/slurmd.log"
    # munged insists on a log directory owned by root or munge, so its log
    # stays in /var/log/munge; a symlink makes it visible next to the others.
    touch "$MUNGE_LOG"; chown munge:munge "$MUNGE_LOG"; chmod 640 "$MUNGE_LOG"
    ln -sfn "$MUNGE_LOG" "$LOG_DIR/munged.log"
    touch "$LOG_DIR/mariadb.log"; chown mysql:mysql "$LOG_DIR/mariadb.log"
}

start_munge() {
    if munge_ok; then
        log "munged already running"
        return
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        log "creating /etc/munge/munge.key"
        runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 700 /etc/munge
    chmod 600 /etc/munge/munge.key
    log "starting munged"
    # --force: remove a stale socket/lock left by a killed munged.
    runuser -u munge -- /usr/sbin/munged --force --log-file="$MUNGE_LOG" \
        </dev/null >>"$MUNGE_LOG" 2>&1 || die "munged failed to start"
    WAIT_PIDFILE=/run/munge/munged.pid wait_for 20 "munge to work" munge_ok
}

start_mariadb() {
    if mariadb_ok; then
        log "mariadbd already running"
    else
        if [ ! -d /var/lib/mysql/mysql ]; then
            log "initialising the MariaDB data directory"
            mariadb-install-db --user=mysql --datadir=/var/lib/mysql \
                >>"$LOG_DIR/mariadb.log" 2>&1 || die "mariadb-install-db failed"
        fi
        log "starting mariadbd"
        # Detached, stdio away from the caller (CI waits for its pipes to close).
        setsid /usr/sbin/mariadbd --user=mysql --log-error="$LOG_DIR/mariadb.log" \
            --innodb-lock-wait-timeout=900 --innodb-buffer-pool-size=1024M \
            </dev/null >>"$LOG_DIR/mariadb.log" 2>&1 &
        WAIT_PID=$! wait_for 60 "mariadbd to accept connections" mariadb_ok
    fi
    # Database and user for slurmdbd (password generated once, kept root-only).
    if [ ! -s "$DB_PASS_FILE" ]; then
        (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DB_PASS_FILE")
    fi
    local pass
    pass=$(cat "$DB_PASS_FILE")
    mariadb --protocol=socket -uroot <<SQL || die "could not create the slurm accounting database"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$pass';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
}

render() { # render TEMPLATE DEST: replace @KEY@ placeholders from the env vars R_KEY
    sed -e "s|@CLUSTER@|$R_CLUSTER|g" -e "s|@HOST@|$R_HOST|g" \
        -e "s|@NODE_SPEC@|$R_NODE_SPEC|g" -e "s|@JOBACCT@|$R_JOBACCT|g" \
        -e "s|@DB_PASS@|$R_DB_PASS|g" "$1" >"$2.tmp"
    mv "$2.tmp" "$2"
}

write_configs() {
    local host=$1 spec
    # e.g. "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
    spec=$(slurmd -C 2>/dev/null | head -n1 | sed -e 's/^NodeName=[^ ]* *//')
    case "$spec" in
        *CPUs=*RealMemory=*) ;;
        *) die "unexpected 'slurmd -C' output: $(slurmd -C 2>&1 | head -n3)" ;;
    esac
    mkdir -p "$CONF_DIR"
    R_CLUSTER=$CLUSTER R_HOST=$host R_NODE_SPEC=$spec R_JOBACCT=$JOBACCT R_DB_PASS="" \
        render "$HERE/slurm.conf.in" "$CONF_DIR/slurm.conf"
    chmod 644 "$CONF_DIR/slurm.conf"
    R_CLUSTER=$CLUSTER R_HOST=$host R_NODE_SPEC="" R_JOBACCT="" R_DB_PASS="$(cat "$DB_PASS_FILE")" \
        render "$HERE/slurmdbd.conf.in" "$CONF_DIR/slurmdbd.conf"
    chown slurm:slurm "$CONF_DIR/slurmdbd.conf"
    chmod 600 "$CONF_DIR/slurmdbd.conf"
    log "wrote $CONF_DIR/slurm.conf (node: $host $spec) and $CONF_DIR/slurmdbd.conf"
}

start_slurmdbd() {
    if pid_alive "$RUN_DIR/slurmdbd.pid" && slurmdbd_ok; then
        log "slurmdbd already running"
    else
        log "starting slurmdbd"
        slurmdbd </dev/null >>"$LOG_DIR/slurmdbd.log" 2>&1 || die "slurmdbd failed to start"
        WAIT_PIDFILE=$RUN_DIR/slurmdbd.pid wait_for 60 "slurmdbd to answer sacctmgr" slurmdbd_ok
    fi
    if ! cluster_registered; then
        log "registering cluster '$CLUSTER' in slurmdbd"
        sacctmgr -i add cluster "$CLUSTER" >&2 || cluster_registered ||
            die "sacctmgr add cluster $CLUSTER failed"
    fi
}

start_slurmctld() {
    if pid_alive "$RUN_DIR/slurmctld.pid" && slurmctld_ok; then
        log "slurmctld already running; reconfiguring"
        scontrol reconfigure >&2 || true
    else
        log "starting slurmctld"
        # Keeps its saved state (job ids keep increasing across restarts, so sacct
        # never sees two jobs with the same id).
        slurmctld </dev/null >>"$LOG_DIR/slurmctld.log" 2>&1 || die "slurmctld failed to start"
        WAIT_PIDFILE=$RUN_DIR/slurmctld.pid wait_for 60 "slurmctld to answer 'scontrol ping'" slurmctld_ok
        # Jobs recovered from the saved state belong to test processes that are
        # gone (the daemons were stopped or killed); without this they would be
        # requeued and run again, taking cores from the tests.
        local leftover
        mapfile -t leftover < <(squeue -h -o %A 2>/dev/null | sort -u)
        if [ "${#leftover[@]}" -gt 0 ]; then
            log "cancelling ${#leftover[@]} job(s) left from a previous run: ${leftover[*]}"
            scancel "${leftover[@]}" >/dev/null 2>&1 || true
        fi
    fi
}

start_slurmd() {
    local host=$1
    if pid_alive "$RUN_DIR/slurmd.pid"; then
        log "slurmd already running"
    else
        log "starting slurmd"
        slurmd </dev/null >>"$LOG_DIR/slurmd.log" 2>&1 || die "slurmd failed to start"
    fi
    local deadline=$(($(date +%s) + 60)) state
    while :; do
        state=$(node_state || true)
        case "$state" in
            idle | mixed | allocated | completing) break ;;
            down* | drain* | fail*)
                # e.g. left DOWN by an unclean stop: put it back in service.
                scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
        esac
        [ "$(date +%s)" -ge "$deadline" ] && die "node $host not ready after 60s (state: '${state:-?}')"
        if [ "$(date +%s)" -ge $((deadline - 55)) ] && ! pid_alive "$RUN_DIR/slurmd.pid"; then
            die "slurmd died (no live pid in $RUN_DIR/slurmd.pid)"
        fi
        sleep 0.5
    done
    log "node $host is $state"
}

verify() {
    log "verifying: srun hostname"
    local out
    out=$(timeout 60 srun -p debug -N1 -n1 -t 1 hostname 2>&1) ||
        die "srun hostname failed: $out"
    log "srun ran on: $out"

    log "verifying: sbatch + sacct"
    local jobid
    # (not `sbatch --wait`: it polls with a ~10 s period; sacct polling is faster
    # and checks the accounting path submitit relies on at the same time)
    jobid=$(timeout 30 sbatch --parsable -p debug -t 1 -J slurm-ci-check \
        -o /dev/null -e /dev/null --wrap 'exit 0' 2>&1) || die "sbatch failed: $jobid"
    jobid=${jobid%%;*}
    # Accounting is asynchronous (slurmctld -> slurmdbd); give it a moment.
    local deadline=$(($(date +%s) + 60)) state=""
    while :; do
        state=$(sacct -n -X -P -j "$jobid" -o State 2>/dev/null | head -n1 || true)
        case "$state" in
            COMPLETED) break ;;
            FAILED* | CANCELLED* | TIMEOUT* | NODE_FAIL* | OUT_OF_MEMORY* | BOOT_FAIL*)
                die "test job $jobid ended in state $state" ;;
        esac
        [ "$(date +%s)" -ge "$deadline" ] &&
            die "sacct does not report job $jobid as COMPLETED after 60s (got '${state:-nothing}'; squeue: $(squeue -h -j "$jobid" -o '%T %r' 2>&1)) - accounting broken?"
        sleep 0.5
    done
    log "job $jobid COMPLETED and visible in sacct"
}

# ------------------------------------------------------------------------- main
[ "$(id -u)" = 0 ] || { echo "[slurm-ci] ERROR: must run as root" >&2; exit 1; }

if [ "${SLURM_CI_FORCE_RESTART:-0}" != 1 ] && cluster_up 2>/dev/null; then
    log "SLURM cluster already up (node $(node_state)); nothing to do"
    exit 0
fi

mkdir -p "$LOG_DIR"
install_packages
HOST=$(hostname -s)
[ -n "$HOST" ] || die "empty short hostname"
ensure_hosts "$HOST"
make_dirs

if [ "${SLURM_CI_FORCE_RESTART:-0}" = 1 ]; then
    log "SLURM_CI_FORCE_RESTART=1: stopping slurm daemons first"
    bash "$HERE/stop.sh" --slurm-only || true
fi

start_munge
start_mariadb
write_configs "$HOST"
start_slurmdbd
start_slurmctld
start_slurmd "$HOST"
verify
log "SLURM cluster '$CLUSTER' is up: partition debug on node $HOST (logs in $LOG_DIR)"
