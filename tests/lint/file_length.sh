#!/usr/bin/env bash
# file_length.sh ROOT MAX: fails, naming each one, if a .c or .h file below ROOT's source
# folders (src io mpi jobs tests) has more than MAX lines.
set -euo pipefail
root=$1 max=$2
find "$root/src" "$root/io" "$root/mpi" "$root/jobs" "$root/tests" -name '*.[ch]' -print0 | xargs -0 wc -l |
  awk -v max="$max" -v root="$root/" '
    $2 == "total" { next }
    { n++; if ($1 > max) { sub(root, "", $2); printf "%s: %d lines, more than %d: split it along its seams (one job per file)\n", $2, $1, max; bad = 1 } }
    END { if (n == 0) { print "no C files found"; exit 1 } if (!bad) printf "%d C files, none longer than %d lines\n", n, max; exit bad }'
