#!/usr/bin/env bash
# ceph_down.sh - stop the cluster scripts/ceph_up.sh started (by its saved PIDs only) and remove
# its state. Safe to run when nothing is running.
#
# radosgw goes first (stopped after the OSD it hangs on exit), then the OSD, then the monitor;
# anything still alive after 10 s gets SIGKILL. `--kill` sends SIGKILL at once.
set -uo pipefail
dir=${BERTH_CEPH_DIR:-${TMPDIR:-/tmp}/berth-ceph}
signal=TERM
[ "${1:-}" = --kill ] && signal=KILL

running() { local s; s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]; }
stop() {
  local file="$dir/run/$1.pid" pid i
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if running "$pid"; then
    kill "-$signal" "$pid" 2>/dev/null
    for i in $(seq 1 100); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then
      echo "ceph_down: $1 (pid $pid) ignored SIG$signal for 10 s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -f "$file"
}
stop rgw.a
stop osd.0
stop mon.a
[ -d "$dir" ] && rm -rf "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" "$dir/rgw" "$dir/crash" \
  "$dir/monmap" "$dir/ceph.conf"
exit 0
