#!/bin/bash
# Starts a real one-node Slurm (munged, slurmctld, slurmd) on localhost without systemd,
# for CI and for trying the slurm/ scripts on a workstation. Debian 12, run as root.
# Idempotent: installs only missing packages, reuses running daemons, rewrites only its own
# slurm.conf. PIDs go to $PEP_SLURM_STATE (default /run/peprime-slurm); .ci/slurm-down.sh
# stops exactly those processes.
#
# Environment: PEP_SLURM_STATE   state dir with the PID files
#              PEP_SLURM_CPUS    CPUs the node advertises (default 4; more than the cores
#                                is fine for tests, Slurm only counts them)
#              PEP_SLURM_MAXTIME partition MaxTime (default 2-00:00:00)
#              PEP_SLURM_TIMEOUT seconds to wait for the node to become idle (default 60)
#              PEP_SLURM_CRED_EXPIRE seconds before a requeued job may start again
#                                (Slurm's default 120; 10 here so preemption tests are quick)
set -euo pipefail

STATE=${PEP_SLURM_STATE:-/run/peprime-slurm}
CPUS=${PEP_SLURM_CPUS:-4}
MAXTIME=${PEP_SLURM_MAXTIME:-2-00:00:00}
TIMEOUT=${PEP_SLURM_TIMEOUT:-60}
CONF=/etc/slurm/slurm.conf
MARK="# written by peprime .ci/slurm-up.sh"
t0=$(date +%s.%N)

say() { printf 'slurm-up: %s\n' "$*"; }
die() { printf 'slurm-up: ERROR: %s\n' "$*" >&2; exit 1; }
alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
pid_of() { if [[ -s "$1" ]]; then cat "$1"; fi; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"
mkdir -p "$STATE"

# 1. packages, only those missing
missing=()
for p in slurmctld slurmd slurm-client munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >"$STATE/apt.log" 2>&1 ||
        { apt-get update -q >>"$STATE/apt.log" 2>&1 &&
          apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$STATE/apt.log" 2>&1; } ||
        die "apt-get install ${missing[*]} failed; see $STATE/apt.log"
fi

# 2. munge: runtime dir, key, daemon running as the munge user
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge /etc/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
        runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
pid=$(pid_of "$STATE/munged.pid")
if alive "$pid"; then
    say "munged already running (pid $pid)"
else
    runuser -u munge -- /usr/sbin/munged --force --pid-file=/run/munge/munged.pid ||
        die "munged did not start; see /var/log/munge/munged.log"
    for _ in $(seq 50); do [[ -s /run/munge/munged.pid ]] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$STATE/munged.pid" 2>/dev/null ||
        die "munged wrote no PID file; see /var/log/munge/munged.log"
    say "munged started (pid $(cat "$STATE/munged.pid"))"
fi
munge -n | unmunge >/dev/null 2>&1 ||
    die "munge credential round trip failed (munge -n | unmunge); see /var/log/munge/munged.log"

# 3. slurm.conf (only ours is ever overwritten)
host=$(hostname -s)
mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
[[ -n "$mem" ]] || die "'slurmd -C' printed no RealMemory"
mem=$((mem > 2048 ? mem - 1024 : mem * 3 / 4))   # leave room for the OS
if [[ -e "$CONF" ]] && ! head -1 "$CONF" | grep -qF "$MARK"; then
    die "$CONF exists and was not written by this script; move it away or run Slurm yourself"
fi
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
new=$(cat <<EOF
$MARK
ClusterName=peprime-ci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job may restart after cred_expire seconds (default 120): short for CI
AuthInfo=cred_expire=${PEP_SLURM_CRED_EXPIRE:-10}
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
EnforcePartLimits=ALL
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=${MAXTIME} State=UP
EOF
)
changed=0
if [[ ! -e "$CONF" ]] || [[ "$(cat "$CONF")" != "$new" ]]; then
    printf '%s\n' "$new" >"$CONF"
    changed=1
    say "wrote $CONF (node $host, $CPUS CPUs, ${mem} MB, partition debug MaxTime=$MAXTIME)"
fi

# 4. daemons (both daemonize themselves and write their PID files into $STATE)
start_daemon() { # name
    local name=$1 pid
    pid=$(pid_of "$STATE/$name.pid")
    if alive "$pid"; then
        say "$name already running (pid $pid)"
        return 0
    fi
    rm -f "$STATE/$name.pid"
    "/usr/sbin/$name" || die "$name did not start; see /var/log/slurm/$name.log"
    for _ in $(seq 100); do [[ -s "$STATE/$name.pid" ]] && break; sleep 0.1; done
    pid=$(pid_of "$STATE/$name.pid")
    alive "$pid" || die "$name exited right after start; last log lines:
$(tail -n 15 "/var/log/slurm/$name.log" 2>/dev/null)"
    say "$name started (pid $pid)"
}
start_daemon slurmctld
start_daemon slurmd
if ((changed)); then
    scontrol reconfigure >/dev/null 2>&1 || true
fi

# 5. wait (bounded) until the node is idle
deadline=$(($(date +%s) + TIMEOUT))
state=""
while :; do
    state=$(sinfo -h -n "$host" -o '%t' 2>/dev/null | head -1 || true)
    case "$state" in
        idle | mix | alloc) break ;;
        down* | drain* | drng*)
            scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    if (($(date +%s) >= deadline)); then
        die "node $host not idle after ${TIMEOUT}s (sinfo state '${state:-none}'); see /var/log/slurm/slurmctld.log and slurmd.log"
    fi
    sleep 0.5
done
say "ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s: node $host is $state (pids in $STATE)"
