#!/usr/bin/env bash
# ceph_up.sh - a throwaway single-node Ceph (one monitor, one memstore OSD, one radosgw) with an S3
# endpoint on 127.0.0.1, for berth's S3 tests and benchmarks. Idempotent: when the cluster under
# $BERTH_CEPH_DIR already answers, it only prints the endpoint again.
#
# stdout: shell assignments to `eval` (BERTH_TEST_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY, _REGION);
# progress goes to stderr. Stop with scripts/ceph_down.sh.
#
# Environment: BERTH_CEPH_DIR (state, default $TMPDIR/berth-ceph), BERTH_CEPH_RGW_PORT (7480),
# BERTH_CEPH_MON_PORT (v2 port, 3300; v1 is the next one), BERTH_CEPH_ACCESS_KEY /
# BERTH_CEPH_SECRET_KEY (the S3 user's keys), BERTH_CEPH_MEMSTORE_BYTES (OSD RAM cap, 8 GiB).
set -euo pipefail

dir=${BERTH_CEPH_DIR:-${TMPDIR:-/tmp}/berth-ceph}
rgw_port=${BERTH_CEPH_RGW_PORT:-7480}
mon_v2=${BERTH_CEPH_MON_PORT:-3300}
mon_v1=$((mon_v2 + 1))
access=${BERTH_CEPH_ACCESS_KEY:-berthtestaccess}
secret=${BERTH_CEPH_SECRET_KEY:-berthtestsecret}
memstore_bytes=${BERTH_CEPH_MEMSTORE_BYTES:-8589934592}
endpoint="http://127.0.0.1:$rgw_port"
export CEPH_CONF="$dir/ceph.conf"
here="$(cd "$(dirname "$0")" && pwd)"
started=$(date +%s%N)

say() { echo "ceph_up: +$((($(date +%s%N) - started) / 1000000))ms $*" >&2; }
print_endpoint() {
  echo "BERTH_TEST_S3_ENDPOINT=$endpoint"
  echo "BERTH_TEST_S3_ACCESS_KEY=$access"
  echo "BERTH_TEST_S3_SECRET_KEY=$secret"
  echo "BERTH_TEST_S3_REGION=us-east-1"
}
fail() {
  echo "ceph_up: $*" >&2
  for f in "$dir"/log/*.out; do
    [ -e "$f" ] && { echo "== $f" >&2; tail -n 5 "$f" >&2; }
  done
  BERTH_CEPH_DIR="$dir" "$here/ceph_down.sh" >&2 || true
  exit 1
}
# running <pid>: alive and not a zombie
running() { local s; s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]; }
daemon_running() { [ -f "$dir/run/$1.pid" ] && running "$(cat "$dir/run/$1.pid")"; }
rgw_answers() { curl -sf --max-time 2 "$endpoint/" | grep -q ListAllMyBucketsResult; }
# await <seconds> <daemon> <command...>: poll until the command succeeds; fail when the daemon dies
await() {
  local limit=$(($(date +%s) + $1)) name=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    daemon_running "$name" || fail "$name exited (logs in $dir/log/)"
    [ "$(date +%s)" -lt "$limit" ] || fail "$name not ready after $1 s"
    sleep 0.2
  done
}

# Already up: print the endpoint and stop here.
if daemon_running mon.a && daemon_running osd.0 && daemon_running rgw.a && rgw_answers; then
  say "already running in $dir"
  grep -qz '^MALLOC_MMAP_THRESHOLD_=' "/proc/$(cat "$dir/run/rgw.a.pid")/environ" 2>/dev/null ||
    say "note: this radosgw was started without the malloc settings below (reads swing 2-4x); restart it for steady reads: scripts/ceph_down.sh; scripts/ceph_up.sh"
  grep -q 'tcp_nodelay=1' "$dir/ceph.conf" ||
    say "note: this radosgw was started without tcp_nodelay (every small GET on a reused connection waits 40 ms); restart it: scripts/ceph_down.sh; scripts/ceph_up.sh"
  print_endpoint
  exit 0
fi
# Half up (a daemon died): start over.
BERTH_CEPH_DIR="$dir" "$here/ceph_down.sh" >&2 || true

need=()
for p in ceph-mon ceph-osd radosgw ceph-common curl; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  say "installing ${need[*]}"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

trap 'fail "command failed at line $LINENO"' ERR
mkdir -p "$dir"
rm -rf "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" "$dir/rgw" "$dir/crash" "$dir/monmap"
mkdir -p "$dir/mon/a" "$dir/osd/0" "$dir/run" "$dir/log" "$dir/rgw" "$dir/crash"
fsid=$(cat /proc/sys/kernel/random/uuid)
osd_uuid=$(cat /proc/sys/kernel/random/uuid)

# auth none: every daemon listens on 127.0.0.1 only. radosgw's default monitor client mode is
# `secure`, which cannot work without cephx, hence `crc secure` for it.
# tcp_nodelay: beast writes a response's head and body separately; with Nagle on, the body waits
# for the client's delayed ACK of the head (40 ms) on every reused connection: a small GET took
# 44 ms instead of 1.5 (curl or fetch, any client).
cat >"$CEPH_CONF" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
public network = 127.0.0.1/32
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon warn on insecure global id reclaim allowed = false
keyring = /dev/null
run dir = $dir/run
log file = $dir/log/\$cluster-\$name.log
mon cluster log file = $dir/log/\$cluster.log
crash dir = $dir/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd objectstore = memstore
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
[mon]
admin socket = $dir/run/\$cluster-\$name.asok
mon data = $dir/mon/\$id
mon initial members = a
paxos propose interval = 0.05
[osd]
admin socket = $dir/run/\$cluster-\$name.asok
osd data = $dir/osd/\$id
memstore device bytes = $memstore_bytes
osd memory target = 1073741824
[client.rgw.a]
admin socket = $dir/run/\$cluster-\$name.asok
ms mon client mode = crc secure
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw data = $dir/rgw
rgw thread pool size = 64
rgw gc obj min wait = 30
rgw gc processor period = 30
EOF

monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]" \
  "$dir/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$dir/monmap" >"$dir/log/mkfs-mon.out" 2>&1 || fail "ceph-mon --mkfs"
setsid ceph-mon -f -i a >"$dir/log/mon.a.out" 2>&1 </dev/null &
echo $! >"$dir/run/mon.a.pid"
await 60 mon.a ceph --connect-timeout 3 mon stat
say "monitor up"

osd_id=$(ceph osd new "$osd_uuid")
[ "$osd_id" = 0 ] || fail "unexpected OSD id $osd_id"
ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" >"$dir/log/mkfs-osd.out" 2>&1 || fail "ceph-osd --mkfs"
setsid ceph-osd -f -i 0 >"$dir/log/osd.0.out" 2>&1 </dev/null &
echo $! >"$dir/run/osd.0.pid"
osd_up() { ceph osd dump 2>/dev/null | grep -q '^osd.0 up'; }
await 120 osd.0 osd_up
say "OSD up"

# radosgw allocates with glibc's malloc, and a GET reads the object in 4 MiB pieces: with glibc's
# sliding mmap threshold those buffers were at times fresh mmaps (a page fault per 4 KiB, zeroed,
# then unmapped), at times reused heap, so the same 1 GiB read took 1.2 s in one minute and 4.5 s
# in the next, its messenger thread spending ~5 CPU s per GiB on faults and copies. A fixed
# threshold above the piece size and a high trim threshold keep them in the heap: ~0.7 CPU s/GiB.
MALLOC_MMAP_THRESHOLD_=16777216 MALLOC_TRIM_THRESHOLD_=268435456 \
  setsid radosgw -f -n client.rgw.a >"$dir/log/rgw.a.out" 2>&1 </dev/null &
echo $! >"$dir/run/rgw.a.pid"
await 120 rgw.a rgw_answers
say "radosgw up on $endpoint"

radosgw-admin user create --uid=berth --display-name=berth --access-key="$access" \
  --secret-key="$secret" >"$dir/log/user.json" 2>"$dir/log/user.err" || fail "user create: $(cat "$dir/log/user.err")"

# The first bucket, object and multipart upload create RGW's pools: do it now, not in a test.
# (`?uploads=`, not `?uploads`: curl 7.88 signs the bare form wrongly.)
s3=(curl -sS -f --max-time 60 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access:$secret"
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
warm="$endpoint/berth-warmup-$$"
"${s3[@]}" -X PUT "$warm" -o /dev/null
"${s3[@]}" -X PUT --data-binary warm "$warm/object" -o /dev/null
[ "$("${s3[@]}" "$warm/object")" = warm ] || fail "warm-up read back the wrong bytes"
"${s3[@]}" -X DELETE "$warm/object" -o /dev/null
upload=$("${s3[@]}" -X POST "$warm/multipart?uploads=" | sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p')
[ -n "$upload" ] || fail "warm-up multipart upload was not created"
"${s3[@]}" -X DELETE "$warm/multipart?uploadId=$upload" -o /dev/null
"${s3[@]}" -X DELETE "$warm" -o /dev/null
trap - ERR
say "ready: $endpoint (path-style, region us-east-1); state in $dir"
print_endpoint
