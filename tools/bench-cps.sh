#!/usr/bin/env bash
# Call setup rate (issue 18): SIPp trunk calls straight into a queue (`[[trunks]] queue`), answered
# at once by SIPp agents (static URIs, RTP echo), media anchored by the gateway. Steps the rate up
# and prints one row per rate: calls placed, SIPp failures, calls that reached an agent and ended
# by the caller's BYE (from the gateway's records), INVITE->200 p50/p99 as the caller saw it
# (SIPp -trace_rtt), the time from the INVITE to the agent's answer (records), and the gateway's
# CPU over the step.
#
#   tools/bench-cps.sh                       # RATES="100 200 300 500", 10 s per step, 2 s calls
#   RATES="300 400" SECS=20 tools/bench-cps.sh
#   PERF=400 tools/bench-cps.sh              # also `perf record -g` the gateway at 400 CPS
#
# Environment: BIN (default target/release/clicktocall), RATES, SECS (seconds of calls per step),
# CALL_MS (call length from the answer, 2000), MEDIA_MS (how long each caller plays RTP after its
# ACK: 200 by default, enough for the gateway to see media flow and queue the call; CALL_MS for
# media the whole call), AGENTS (default 3 x the highest rate), OUT (kept results; a temp dir by
# default), PERF (a rate at which to profile; PERF_ARGS, default "-F 999 -g": e.g.
# "-F 199 --call-graph dwarf" for call graphs without frame pointers). Needs sipp (sip-tester), python3, root for SIPp's
# pcap play. Wrap it in `flock /tmp/bench.lock` on a shared machine. Servers use loopback only:
# gateway 127.0.0.1:15060 (HTTP 127.0.0.1:18080), trunk SIPp 127.0.0.2, agents SIPp 127.0.0.3.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BIN=${BIN:-$ROOT/target/release/clicktocall}
RATES=${RATES:-100 200 300 500}
SECS=${SECS:-10}
CALL_MS=${CALL_MS:-2000}
MEDIA_MS=${MEDIA_MS:-200}
max_rate=0; for r in $RATES; do [ "$r" -gt "$max_rate" ] && max_rate=$r; done
AGENTS=${AGENTS:-$((3 * max_rate))}
OUT=${OUT:-$(mktemp -d /tmp/bench-cps.XXXXXX)}
PERF=${PERF:-}
mkdir -p "$OUT"
[ -x "$BIN" ] || { echo "no gateway binary at $BIN (cargo build --release --bin clicktocall)"; exit 2; }
command -v sipp >/dev/null || { echo "sipp not installed (apt-get install sip-tester)"; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

write_config() {  # write_config FILE
  {
    cat <<EOF
[http]
listen = "127.0.0.1:18080"
[sip]
listen_udp = "127.0.0.1:15060"
listen_tcp = ""
[media]
bind_ip = "127.0.0.1"
port_min = 20000
port_max = 59999
[records]
database = "$OUT/records.db"
[limits]
max_calls = 100000
[shutdown]
grace_secs = 1
[[trunks]]
name = "bench"
proxy = "sip:127.0.0.2:5060"
sources = ["127.0.0.2/32"]
numbers = ["+15550100"]
queue = "bench"
[[queues]]
name = "bench"
wrap_up_secs = 0
announce_position_secs = 0
EOF
    for i in $(seq 1 "$AGENTS"); do
      printf '[[agents]]\nid = "a%d"\nuri = "sip:a%d@127.0.0.3:5090"\nqueues = ["bench"]\n' "$i" "$i"
    done
  } >"$1"
}

cpu_ticks() {  # utime + stime of PID, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

machine_ticks() {  # busy:total clock ticks of the whole machine (all cores)
  awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6 ":" t }' /proc/stat
}

step() {  # step RATE: one run at RATE calls/s; appends a row to $OUT/rows.txt
  local rate=$1 total=$(($1 * SECS)) d="$OUT/r$1"
  rm -rf "$d"; mkdir -p "$d"
  rm -f "$OUT/records.db"*
  write_config "$d/gateway.toml"
  python3 "$ROOT/tests/interop/tools/tone_pcap.py" 440 "$(echo "$MEDIA_MS / 1000" | bc -l)" "$d/media.pcap"
  (cd "$d" && exec sipp -sf "$HERE/bench-cps/agent.xml" -i 127.0.0.3 -p 5090 -mp 6000 -rtp_echo \
      -nostdin -trace_err -trace_stat -fd 5 -max_socket 65000 >"$d/agent.out" 2>&1) &
  local agent_pid=$!
  "$BIN" serve --config "$d/gateway.toml" --log-format json >"$d/gateway.log" 2>&1 &
  local gw=$!
  for _ in $(seq 1 100); do
    curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1 && break
    sleep 0.1
  done
  local perf_pid=""
  if [ "$rate" = "$PERF" ] && command -v perf >/dev/null; then
    perf record ${PERF_ARGS:--F 999 -g} -p "$gw" -o "$d/perf.data" >"$d/perf.out" 2>&1 &
    perf_pid=$!
  fi
  local t0 c0 t1 c1 m0 m1
  t0=$(date +%s.%N); c0=$(cpu_ticks "$gw"); m0=$(machine_ticks)
  sed "s/<pause milliseconds=\"2000\"\/>/<pause milliseconds=\"$CALL_MS\"\/>/" "$HERE/bench-cps/caller.xml" >"$d/caller.xml"
  (cd "$d" && sipp -sf "$d/caller.xml" -i 127.0.0.2 -p 5062 -mp 7000 \
      -r "$rate" -m "$total" -l $((rate * 30)) -recv_timeout 30000 \
      -nostdin -trace_err -trace_stat -fd 1 -trace_rtt -rtt_freq 1 -max_socket 65000 \
      127.0.0.1:15060 >"$d/caller.out" 2>&1)
  t1=$(date +%s.%N); c1=$(cpu_ticks "$gw"); m1=$(machine_ticks)
  [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid"; }
  sleep 1
  kill -TERM "$gw"; wait "$gw" 2>/dev/null
  kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null
  grep -q 'panicked' "$d/gateway.log" && echo "rate $rate: the gateway panicked (see $d/gateway.log)"
  python3 - "$d" "$rate" "$total" "$t0" "$t1" "$c0" "$c1" "$(getconf CLK_TCK)" "$OUT/records.db" "$m0" "$m1" "$(nproc)" <<'PY' | tee -a "$OUT/rows.txt"
import csv, glob, sqlite3, sys
d, rate, total, t0, t1, c0, c1, hz, db, m0, m1, ncpu = sys.argv[1:]
(b0, a0), (b1, a1) = [map(int, m.split(":")) for m in (m0, m1)]
machine = 100.0 * (b1 - b0) / max(1, a1 - a0)
rate, total = int(rate), int(total)
wall = float(t1) - float(t0)
cpu = (int(c1) - int(c0)) / int(hz) / wall * 100

def last_stat(pattern):
    rows = []
    for f in glob.glob(pattern):
        rows += list(csv.DictReader(open(f), delimiter=";"))
    return rows[-1] if rows else {}

st = last_stat(d + "/caller_*_.csv")
failed_sipp = int(st.get("FailedCall(C)", 0) or 0)
ok_sipp = int(st.get("SuccessfulCall(C)", 0) or 0)
rtts = []
for f in glob.glob(d + "/caller_*_rtt.csv"):
    for row in csv.reader(open(f), delimiter=";"):
        try:
            rtts.append(float(row[1]))
        except (IndexError, ValueError):
            pass
rtts.sort()
pct = lambda xs, p: xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")
con = sqlite3.connect(db)
rows = con.execute("SELECT end_reason, agent, created_ms, agent_answered_ms FROM cdrs").fetchall()
good = [r for r in rows if r[0] == "customer_hangup" and r[1]]
to_agent = sorted(r[3] - r[2] for r in good if r[3] is not None)
failed = total - len(good)
print("rate %4d/s  placed %6d  sipp ok %6d failed %5d  records %6d  connected+hung up %6d  failed %5d (%.2f %%)  "
      "INVITE->200 p50 %.0f p99 %.0f ms (n=%d)  INVITE->agent answered p50 %d p99 %d ms  gateway CPU %.0f %% of a core over %.1f s, machine (%s cores) %.0f %% busy"
      % (rate, total, ok_sipp, failed_sipp, len(rows), len(good), failed, 100.0 * failed / total,
         pct(rtts, 0.5), pct(rtts, 0.99), len(rtts), pct(to_agent, 0.5), pct(to_agent, 0.99), cpu, wall, ncpu, machine))
PY
}

echo "results in $OUT (agents: $AGENTS, $SECS s per step, calls of $CALL_MS ms, RTP for $MEDIA_MS ms)"
for r in $RATES; do
  step "$r"
  sleep 3
done
