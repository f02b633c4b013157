#!/usr/bin/env bash
# The media-plane benchmark, clicktocall's engine and rtpengine side by side (see BENCHMARKS.md):
#
#   tools/bench-side-by-side.sh CALLS SECS [KIND]      # KIND: webrtc (default) or sip
#
# Builds nothing: expects target/release/clicktocall-bench (cargo build --release --bin
# clicktocall-bench). Runs the gateway pinned to core 0 and the load on core 1, then rtpengine
# (userspace forwarding, no kernel module) pinned to core 0 and the same load against it, and
# prints both summary rows. Everything listens on 127.0.0.1 only. Set SKIP_RTPENGINE=1 to measure
# the gateway alone.
set -euo pipefail

calls=${1:?usage: $0 CALLS SECS [webrtc|sip]}
secs=${2:?usage: $0 CALLS SECS [webrtc|sip]}
kind=${3:-webrtc}
cd "$(dirname "$0")/.."
bench=target/release/clicktocall-bench
control=127.0.0.1:7399
ng=127.0.0.1:2299
[ -x "$bench" ] || { echo "no $bench: cargo build --release --bin clicktocall-bench" >&2; exit 1; }
if [ -z "${SKIP_RTPENGINE:-}" ] && ! command -v rtpengine >/dev/null; then
    echo "rtpengine is not installed: apt-get install -y rtpengine-daemon (Debian; as root), or SKIP_RTPENGINE=1" >&2
    exit 1
fi
gw_core=0 load_core=1
if [ "$(nproc)" -lt 2 ]; then gw_core=none load_core=none; fi
log=$(mktemp -d /tmp/bench-side-by-side.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== clicktocall gateway ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), $calls calls, $kind, ${secs} s; logs in $log"
"$bench" gateway --control "$control" --cpu "$gw_core" >"$log/gateway.log" 2>&1 &
pids+=($!)
sleep 1
"$bench" load --control "$control" --calls "$calls" --secs "$secs" --kind "$kind" --cpu "$load_core" \
    2>"$log/load-gateway.err" | tee "$log/load-gateway.out"
kill "${pids[0]}" 2>/dev/null || true
wait "${pids[0]}" 2>/dev/null || true

if [ -z "${SKIP_RTPENGINE:-}" ]; then
    echo "== rtpengine $(rtpengine --version 2>&1 | awk '{print $2}'), userspace, $calls calls, $kind, ${secs} s"
    # --config-file=none: ignore the packaged /etc config (kernel table 0, other ports).
    # Ports 10000-19999: below the kernel's ephemeral range, clear of the gateway's 20000-29998.
    taskset -c "${gw_core/none/0-$(($(nproc) - 1))}" rtpengine --config-file=none --table=-1 \
        --interface=127.0.0.1 --listen-ng="$ng" --foreground --log-stderr --log-level=5 \
        --port-min=10000 --port-max=19999 --timeout=600 >"$log/rtpengine.log" 2>&1 &
    rpid=$!
    pids+=($rpid)
    sleep 1
    "$bench" load --rtpengine "$ng" --rtpengine-pid "$rpid" --calls "$calls" --secs "$secs" \
        --kind "$kind" --cpu "$load_core" 2>"$log/load-rtpengine.err" | tee "$log/load-rtpengine.out"
fi

echo "== rows"
grep -h '^| calls' "$log"/load-*.out | head -1
grep -h '^ROW' "$log"/load-*.out
grep -h '^WARNING' "$log"/load-*.out || true
