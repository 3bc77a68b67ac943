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
#              PEP_SLURM_NODES   1 (default) or 2: a second node <host>-2 whose slurmd runs in
#                                its own network and UTS namespace (netns peprime-n2, veth
#                                10.213.0.1 <-> 10.213.0.2), so multi-node jobs, per-node
#                                steps and requeues onto another node count really happen.
#                                Both nodes share this machine's CPUs and file system.
set -euo pipefail

STATE=${PEP_SLURM_STATE:-/run/peprime-slurm}
CPUS=${PEP_SLURM_CPUS:-4}
MAXTIME=${PEP_SLURM_MAXTIME:-2-00:00:00}
TIMEOUT=${PEP_SLURM_TIMEOUT:-60}
NODES=${PEP_SLURM_NODES:-1}
NETNS=peprime-n2
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

[[ "$NODES" == 1 || "$NODES" == 2 ]] || die "PEP_SLURM_NODES=$NODES (choices: 1, 2)"

# 3. slurm.conf (only ours is ever overwritten)
host=$(hostname -s)
ctl_addr=127.0.0.1 node_addr=127.0.0.1 nodes=$host
if ((NODES == 2)); then
    # the second node's network: a veth pair into namespace $NETNS; the controller and the
    # first node listen on the host side so that the second can reach them
    # where namespaces or veth pairs are not allowed (a container without CAP_NET_ADMIN), one
    # node: the two-node tests then report themselves skipped
    if ! ip netns list 2>/dev/null | grep -qw "$NETNS"; then
        if ! { ip netns add "$NETNS" &&
               ip link add pep-n1 type veth peer name pep-n2 netns "$NETNS" &&
               ip addr add 10.213.0.1/24 dev pep-n1 && ip link set pep-n1 up &&
               ip netns exec "$NETNS" ip addr add 10.213.0.2/24 dev pep-n2 &&
               ip netns exec "$NETNS" ip link set pep-n2 up &&
               ip netns exec "$NETNS" ip link set lo up; } 2>"$STATE/netns.log"; then
            say "WARNING: cannot make the second node's network ($(head -1 "$STATE/netns.log")): one node only"
            ip netns delete "$NETNS" 2>/dev/null || true
            NODES=1
        fi
    fi
fi
if ((NODES == 2)); then
    ctl_addr=10.213.0.1 node_addr=10.213.0.1 nodes=$host,$host-2
    mkdir -p "/var/spool/slurmd/$host-2"
    grep -q "^10.213.0.2 $host-2\$" /etc/hosts || echo "10.213.0.2 $host-2" >>/etc/hosts
fi
mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
[[ -n "$mem" ]] || die "'slurmd -C' printed no RealMemory"
mem=$((mem > 2048 ? mem - 1024 : mem * 3 / 4))   # leave room for the OS
if [[ -e "$CONF" ]] && ! head -1 "$CONF" | grep -qF "$MARK"; then
    die "$CONF exists and was not written by this script; move it away or run Slurm yourself"
fi
mkdir -p /etc/slurm /var/spool/slurmctld "/var/spool/slurmd/$host" /var/log/slurm
new=$(cat <<EOF
$MARK
ClusterName=peprime-ci
SlurmctldHost=${host}(${ctl_addr})
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
SlurmdSpoolDir=/var/spool/slurmd/%n
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd-%n.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=${host} NodeAddr=${node_addr} CPUs=${CPUS} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${nodes} Default=YES MaxTime=${MAXTIME} State=UP
EOF
)
((NODES == 2)) && new=${new/PartitionName=/NodeName=${host}-2 NodeAddr=10.213.0.2 CPUs=${CPUS} RealMemory=${mem} State=UNKNOWN
PartitionName=}
changed=0
if [[ ! -e "$CONF" ]] || [[ "$(cat "$CONF")" != "$new" ]]; then
    printf '%s\n' "$new" >"$CONF"
    changed=1
    say "wrote $CONF (node $host, $CPUS CPUs, ${mem} MB, partition debug MaxTime=$MAXTIME)"
fi

# 4. daemons (each daemonizes itself and writes its PID file into $STATE). A new slurm.conf
# with daemons running restarts them: slurmctld learns nodes only at start.
if ((changed)) && [[ -n "$(ls "$STATE"/slurm*.pid 2>/dev/null)" ]]; then
    say "slurm.conf changed: restarting the Slurm daemons"
    PEP_SLURM_KEEP_MUNGE=1 "$(dirname "$0")/slurm-down.sh" >/dev/null || die "stopping the old daemons failed"
fi
start_daemon() { # pidname logname command...
    local name=$1 log=$2 pid
    shift 2
    pid=$(pid_of "$STATE/$name.pid")
    if alive "$pid"; then
        say "$name already running (pid $pid)"
        return 0
    fi
    rm -f "$STATE/$name.pid"
    "$@" || die "$name did not start; see /var/log/slurm/$log.log"
    for _ in $(seq 100); do [[ -s "$STATE/$name.pid" ]] && break; sleep 0.1; done
    pid=$(pid_of "$STATE/$name.pid")
    alive "$pid" || die "$name exited right after start; last log lines:
$(tail -n 15 "/var/log/slurm/$log.log" 2>/dev/null)"
    say "$name started (pid $pid)"
}
start_daemon slurmctld slurmctld /usr/sbin/slurmctld
start_daemon "slurmd-$host" "slurmd-$host" /usr/sbin/slurmd -N "$host"
if ((NODES == 2)); then
    # its own hostname, so that MPI and PMIx see two hosts, and its own /tmp, as a node's
    # local disk (PMIx keeps per-step directories there); nsenter, not `ip netns exec`,
    # which remounts /sys and hides the cgroup file system slurmd needs
    install -d -m 1777 /var/tmp/peprime-n2-tmp
    start_daemon "slurmd-$host-2" "slurmd-$host-2" nsenter --net="/run/netns/$NETNS" \
        unshare --uts --mount --propagation private /bin/sh -c \
        "hostname $host-2 && mount --bind /var/tmp/peprime-n2-tmp /tmp && exec /usr/sbin/slurmd -N $host-2"
fi

# 5. wait (bounded) until the node is idle
deadline=$(($(date +%s) + TIMEOUT))
state=""
while :; do
    state=$(sinfo -h -N -n "$nodes" -o '%t' 2>/dev/null | sort -u | paste -sd, - || true)
    case "$state" in
        idle | mix | alloc) break ;;
        *down* | *drain* | *drng*)
            scontrol update NodeName="$nodes" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    if (($(date +%s) >= deadline)); then
        die "nodes $nodes not idle after ${TIMEOUT}s (sinfo states '${state:-none}'); see /var/log/slurm/slurmctld.log and slurmd-*.log"
    fi
    sleep 0.5
done
say "ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s: node(s) $nodes $state (pids in $STATE)"
