#!/bin/bash
# Stops the localhost Slurm started by .ci/slurm-up.sh: the slurmd of each node, slurmctld, then munged,
# each by the PID recorded in $PEP_SLURM_STATE (default /run/peprime-slurm), waiting
# (bounded) for each to exit. Idempotent: a missing or stale PID file is not an error.
set -uo pipefail

STATE=${PEP_SLURM_STATE:-/run/peprime-slurm}
WAIT=${PEP_SLURM_STOP_WAIT:-20}   # seconds per daemon before SIGKILL

say() { printf 'slurm-down: %s\n' "$*"; }

status=0
shopt -s nullglob
daemons=()
for f in "$STATE"/slurmd*.pid; do daemons+=("$(basename "$f" .pid)"); done
daemons+=(slurmctld)
[[ "${PEP_SLURM_KEEP_MUNGE:-0}" == 1 ]] || daemons+=(munged)
for name in "${daemons[@]}"; do
    f="$STATE/$name.pid"
    pid=$( [[ -s "$f" ]] && cat "$f" )
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
        say "$name not running"
        rm -f "$f"
        continue
    fi
    # a recycled PID would belong to another program: check the name first
    comm=$(cat "/proc/$pid/comm" 2>/dev/null)
    if [[ "$comm" != "${name%%-*}" ]]; then
        say "PID $pid in $f is '$comm', not $name: leaving it alone"
        rm -f "$f"
        continue
    fi
    kill -TERM "$pid"
    for ((i = 0; i < WAIT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name (pid $pid) still running after ${WAIT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.5
        kill -0 "$pid" 2>/dev/null && { say "ERROR: $name (pid $pid) survived SIGKILL"; status=1; continue; }
    fi
    say "$name (pid $pid) stopped after $(awk "BEGIN{print $i/10}") s"
    rm -f "$f"
done
# the second node's network namespace (PEP_SLURM_NODES=2); its veth pair goes with it
if ip netns list 2>/dev/null | grep -qw peprime-n2; then
    ip netns delete peprime-n2 && say "network namespace peprime-n2 removed"
fi
exit $status
