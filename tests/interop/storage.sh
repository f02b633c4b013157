# Interop tests of several gateway nodes sharing PostgreSQL (issue 19), sourced by run.sh: the
# helpers are run.sh's. PostgreSQL runs as a private cluster in a temp dir, owned by the postgres
# user (it refuses to run as root), on 127.0.0.1 inside the test's network namespace, trust auth.

start_postgres() {  # start_postgres: initdb + start on 127.0.0.1:5432; sets PG_URL, PG_BIN, PG_DIR
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL not installed (apt-get install postgresql)"; return 1; }
  id postgres >/dev/null 2>&1 || { echo "no postgres user"; return 1; }
  PG_DIR=$(mktemp -d /tmp/c2c-pg.XXXXXX)
  chown postgres "$PG_DIR"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U c2c >"$T/initdb.log" 2>&1 \
    || { echo "initdb failed"; tail -n 20 "$T/initdb.log"; return 1; }
  PG_URL="postgres://c2c@127.0.0.1:5432/postgres"
  pg_up
}

pg_up() {  # (re)starts the cluster, waits until it answers
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p 5432 -k $PG_DIR -c fsync=off" start >/dev/null \
    || { echo "postgres did not start"; tail -n 20 "$PG_DIR/postgres.log"; return 1; }
}

pg_down() {  # stops the cluster (fast: open connections are cut)
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
}

pg_cleanup() {
  pg_down 2>/dev/null
  cp "$PG_DIR/postgres.log" "$T/postgres.log" 2>/dev/null
  rm -rf "$PG_DIR"
}

psql_c2c() {  # psql_c2c SQL: one query's rows, unaligned
  runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p 5432 -U c2c -d postgres -At -c "$1"
}

node_config() {  # node_config BASE N: BASE's config as node N (HTTP 8079+N, SIP 5059+N, media
  # ports of its own), call records in PostgreSQL, an API key
  local n=$2
  sed -e "s/127.0.0.1:8080/127.0.0.1:$((8079 + n))/" \
      -e "s/listen_udp = \"127.0.0.1:5060\"/listen_udp = \"127.0.0.1:$((5059 + n))\"/" \
      -e "s/listen_tcp = \"127.0.0.1:5060\"/listen_tcp = \"127.0.0.1:$((5059 + n))\"/" \
      -e "s/^port_min = 20000/port_min = $((20000 + 200 * n))/" \
      -e "s/^port_max = 20199/port_max = $((20199 + 200 * n))/" "$1"
  printf '\n[cluster]\nnode_id = %d\n\n[api]\nkey = "interop-key"\n' "$n"
}

start_node() {  # start_node N CONFIG: gateway node N in the background (log $T/node<N>.log); sets NODE_PID
  CLICKTOCALL_RECORDS_DATABASE="$PG_URL" "$BIN" serve --config "$2" --log-format json >"$T/node$1.log" 2>&1 &
  NODE_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$((8079 + $1))/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$NODE_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "node $1 did not come up"; tail -n 20 "$T/node$1.log"; return 1
}

stop_node() {  # stop_node PID N: SIGTERM, wait; a panic fails
  kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null
  if grep -q 'panicked' "$T/node$2.log"; then echo "node $2 panicked"; return 1; fi
}

trunk_call_via() {  # trunk_call_via N NAME: a SIPp trunk caller through node N's IVR to the SIPp agent
  (cd "$T" && $SIPP -sf "$HERE/sipp/agent_passthrough.xml" -i 127.0.0.1 -p 5090 -mp 6000 -rtp_echo \
      -timeout 40s >"$T/$2-agent.out" 2>&1; echo $? >"$T/$2-agent.rc") &
  local agent=$!
  (cd "$T" && $SIPP -sf "$HERE/sipp/trunk_caller.xml" -i 127.0.0.2 -p 5062 -mp 6100 -rtp_echo \
      -timeout 40s "127.0.0.1:$((5059 + $1))" >"$T/$2-trunk.out" 2>&1)
  local rc=$?
  wait "$agent"
  echo "$2: trunk caller exit $rc, agent exit $(cat "$T/$2-agent.rc")"
  [ "$rc" = 0 ] && [ "$(cat "$T/$2-agent.rc")" = 0 ]
}

records_via() {  # records_via N: GET /api/cdrs on node N
  curl -fsS -H 'authorization: Bearer interop-key' "http://127.0.0.1:$((8079 + $1))/api/cdrs"
}

test_two_nodes_share_call_records_in_postgresql() {
  # Issue 19: two nodes (node ids 1 and 2) on one PostgreSQL; a trunk call through each (IVR,
  # queue, SIPp agent); either node's /api/cdrs lists both calls, ended, each from its node.
  start_postgres || return 1
  trap 'pg_cleanup; kill -KILL $(jobs -p) 2>/dev/null' EXIT
  python3 "$HERE/tools/tone_pcap.py" 440 12 "$T/tone440.pcap"
  node_config "$HERE/gateway-inbound.toml" 1 >"$T/node1.toml"
  node_config "$HERE/gateway-inbound.toml" 2 >"$T/node2.toml"
  start_node 1 "$T/node1.toml" || return 1; local n1=$NODE_PID
  start_node 2 "$T/node2.toml" || return 1; local n2=$NODE_PID
  local code=0
  trunk_call_via 1 first || code=1
  trunk_call_via 2 second || code=1
  sleep 0.5
  records_via 1 >"$T/cdrs1.json" || code=1
  records_via 2 >"$T/cdrs2.json" || code=1
  python3 - "$T/cdrs1.json" "$T/cdrs2.json" <<'PY' || code=1
import json, sys
one, two = (json.load(open(p)) for p in sys.argv[1:3])
print("node 1 lists", [(r["call"] >> 43, r["end_reason"]) for r in one])
assert one == two, "the nodes list different records"
assert sorted(r["call"] >> 43 for r in one) == [1, 2], "not one call from each node"
assert all(r["end_reason"] == "customer_hangup" and r["agent"] == "1001" for r in one), one
assert all(r["queue"] == "support" and r["offers"][0]["outcome"] == "answered" for r in one)
PY
  stop_node "$n1" 1 || code=1
  stop_node "$n2" 2 || code=1
  [ "$(psql_c2c 'SELECT version FROM schema_version WHERE store = $$records$$')" = 1 ] \
    || { echo "schema_version not written"; code=1; }
  return $code
}

test_callback_of_a_killed_node_is_dialled_once_by_the_other() {
  # Issue 19: a callback requested on node 1, due 6 s later; node 1 is SIGKILLed 1 s after the
  # request. Node 2 dials it at its time, exactly once (the carrier, SIPp, counts INVITEs: busy,
  # no retries), and the callback ends failed/busy after one attempt.
  start_postgres || return 1
  trap 'pg_cleanup; kill -KILL $(jobs -p) 2>/dev/null' EXIT
  local base="$T/callback-base.toml"
  sed -e 's/^database = "callbacks.db"$/database = "'"${PG_URL//\//\\/}"'"/' \
      -e 's/^username = "acme"$//' -e 's/^password = "trunkpw"$//' "$HERE/gateway-callback.toml" >"$base"
  grep -q "database = \"$PG_URL\"" "$base" || { echo "config edit failed"; return 1; }
  node_config "$base" 1 >"$T/node1.toml"
  node_config "$base" 2 >"$T/node2.toml"
  (cd "$T" && sipp -sf "$HERE/sipp/trunk_busy.xml" -i 127.0.0.1 -p 5070 -nostdin -trace_msg \
      -message_file "$T/carrier.msg" >"$T/carrier.out" 2>&1) &
  local carrier=$!
  start_node 1 "$T/node1.toml" || return 1; local n1=$NODE_PID
  start_node 2 "$T/node2.toml" || return 1; local n2=$NODE_PID
  local at=$(( $(date +%s) + 6 ))
  local cb
  cb=$(curl -fsS -H 'authorization: Bearer interop-key' -H 'content-type: application/json' \
    -d "{\"number\": \"+15550107000\", \"not_before\": $at}" http://127.0.0.1:8080/api/callbacks) \
    || { echo "callback request refused"; return 1; }
  local id; id=$(echo "$cb" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  echo "callback $id due at $at"
  sleep 1
  kill -KILL "$n1"; wait "$n1" 2>/dev/null
  echo "node 1 killed at $(date +%s)"
  local state=""
  for _ in $(seq 1 150); do
    state=$(curl -fsS -H 'authorization: Bearer interop-key' "http://127.0.0.1:8081/api/callbacks/$id")
    echo "$state" | grep -q '"state":"failed"' && break
    sleep 0.1
  done
  sleep 3   # time for a second (wrong) INVITE to show up
  kill -TERM "$carrier" 2>/dev/null; wait "$carrier" 2>/dev/null
  local code=0
  echo "callback on node 2: $state"
  echo "$state" | python3 -c '
import json, sys
cb = json.load(sys.stdin)
assert (cb["state"], cb["reason"], cb["attempts"]) == ("failed", "busy", 1), cb' || code=1
  local invites; invites=$(grep -c '^INVITE sip:' "$T/carrier.msg" 2>/dev/null || echo 0)
  echo "INVITEs at the carrier: $invites"
  [ "$invites" = 1 ] || code=1
  grep -q '"message":"dialling callback"' "$T/node2.log" || { echo "node 2 did not dial"; code=1; }
  if grep -q '"message":"dialling callback"' "$T/node1.log"; then echo "node 1 dialled"; code=1; fi
  local dialled_at; dialled_at=$(grep -m1 '"message":"dialling callback"' "$T/node2.log" | python3 -c '
import json, sys, datetime
t = json.loads(sys.stdin.readline())["timestamp"]
print(int(datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()))' 2>/dev/null)
  echo "dialled at ${dialled_at:-?} (due $at)"
  [ -n "$dialled_at" ] && [ "$dialled_at" -ge "$at" ] || { echo "dialled before its time"; code=1; }
  stop_node "$n2" 2 || code=1
  return $code
}

test_calls_go_on_while_postgresql_is_down_and_records_follow() {
  # Issue 19: PostgreSQL stops while a trunk call is in progress: the call goes on (SIPp caller and
  # agent succeed), the node logs the outage once, and once PostgreSQL is back the call's record
  # is written, complete.
  start_postgres || return 1
  trap 'pg_cleanup; kill -KILL $(jobs -p) 2>/dev/null' EXIT
  python3 "$HERE/tools/tone_pcap.py" 440 12 "$T/tone440.pcap"
  node_config "$HERE/gateway-inbound.toml" 1 >"$T/node1.toml"
  start_node 1 "$T/node1.toml" || return 1; local n1=$NODE_PID
  local code=0
  (sleep 2; pg_down; echo "postgres stopped at $(date +%s)") &
  local stopper=$!
  trunk_call_via 1 during || code=1
  wait "$stopper"
  # Reading records while it is down: 503 with a stable code (the held records are not lost).
  local status; status=$(curl -s -o "$T/cdrs-down.json" -w '%{http_code}' \
    -H 'authorization: Bearer interop-key' http://127.0.0.1:8080/api/cdrs)
  echo "GET /api/cdrs while down: $status $(cat "$T/cdrs-down.json")"
  [ "$status" = 503 ] && grep -q '"store_unavailable"' "$T/cdrs-down.json" || code=1
  grep -q 'records database unreachable' "$T/node1.log" || { echo "no outage logged"; code=1; }
  [ "$(grep -c 'records database unreachable' "$T/node1.log")" -le 1 ] || { echo "outage logged more than once"; code=1; }
  pg_up || return 1
  echo "postgres back at $(date +%s)"
  for _ in $(seq 1 50); do grep -q 'records database back' "$T/node1.log" && break; sleep 0.2; done
  grep 'records database back' "$T/node1.log" || { echo "backlog not written"; code=1; }
  records_via 1 >"$T/cdrs.json" || code=1
  python3 - "$T/cdrs.json" <<'PY' || code=1
import json, sys
rows = json.load(open(sys.argv[1]))
print("records after the outage:", [(r["end_reason"], r["agent"], r["talk_secs"]) for r in rows])
assert len(rows) == 1 and rows[0]["end_reason"] == "customer_hangup" and rows[0]["agent"] == "1001", rows
assert rows[0]["talk_secs"] and rows[0]["talk_secs"] > 1, rows
PY
  stop_node "$n1" 1 || code=1
  return $code
}

test_callback_of_a_node_killed_mid_attempt_is_retried_by_the_other_after_its_lease() {
  # Issue 19: a callback due at once is dialled by one node (the customer's phone rings: SIPp
  # never answers); that node is SIGKILLed while it rings. Its lease (3 s) runs out, the other node
  # takes the attempt over (reason interrupted, scheduled after retry_delay_secs = 1 s) and dials
  # again: two INVITEs in all, the second only after the dead node's lease. Ring timeout 2 s, one
  # retry: the callback ends failed/no_answer after two attempts.
  start_postgres || return 1
  trap 'pg_cleanup; kill -KILL $(jobs -p) 2>/dev/null' EXIT
  local base="$T/callback-base.toml"
  sed -e 's/^database = "callbacks.db"$/database = "'"${PG_URL//\//\\/}"'"/' \
      -e 's/^username = "acme"$//' -e 's/^password = "trunkpw"$//' \
      -e 's/^retries = 0$/retries = 1\nretry_delay_secs = 1\nlease_secs = 3\nring_timeout_secs = 2/' \
      "$HERE/gateway-callback.toml" >"$base"
  grep -q '^lease_secs = 3' "$base" || { echo "config edit failed"; return 1; }
  node_config "$base" 1 >"$T/node1.toml"
  node_config "$base" 2 >"$T/node2.toml"
  (cd "$T" && sipp -sf "$HERE/sipp/trunk_rings.xml" -i 127.0.0.1 -p 5070 -nostdin -trace_msg \
      -message_file "$T/carrier.msg" >"$T/carrier.out" 2>&1) &
  local carrier=$!
  start_node 1 "$T/node1.toml" || return 1; local n1=$NODE_PID
  start_node 2 "$T/node2.toml" || return 1; local n2=$NODE_PID
  local cb id
  cb=$(curl -fsS -H 'authorization: Bearer interop-key' -H 'content-type: application/json' \
    -d '{"number": "+15550107001"}' http://127.0.0.1:8080/api/callbacks) || { echo "callback request refused"; return 1; }
  id=$(echo "$cb" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  local dialler="" survivor="" dead_pid=""
  for _ in $(seq 1 50); do
    if grep -q '"message":"dialling callback"' "$T/node1.log"; then dialler=1; survivor=2; dead_pid=$n1; break; fi
    if grep -q '"message":"dialling callback"' "$T/node2.log"; then dialler=2; survivor=1; dead_pid=$n2; break; fi
    sleep 0.1
  done
  [ -n "$dialler" ] || { echo "nobody dialled"; return 1; }
  sleep 1   # ringing
  kill -KILL "$dead_pid"; wait "$dead_pid" 2>/dev/null
  local killed_at; killed_at=$(date +%s.%N)
  echo "callback $id dialled by node $dialler, killed while ringing at $killed_at"
  local state=""
  for _ in $(seq 1 200); do
    state=$(curl -fsS -H 'authorization: Bearer interop-key' "http://127.0.0.1:$((8079 + survivor))/api/callbacks/$id")
    echo "$state" | grep -q '"state":"failed"' && break
    sleep 0.1
  done
  sleep 2   # time for a wrong third INVITE
  kill -TERM "$carrier" 2>/dev/null; wait "$carrier" 2>/dev/null
  local code=0
  echo "callback on node $survivor: $state"
  echo "$state" | python3 -c '
import json, sys
cb = json.load(sys.stdin)
assert (cb["state"], cb["reason"], cb["attempts"]) == ("failed", "no_answer", 2), cb' || code=1
  local invites; invites=$(grep -c '^INVITE sip:' "$T/carrier.msg" 2>/dev/null || echo 0)
  echo "INVITEs at the carrier: $invites"
  [ "$invites" = 2 ] || code=1
  grep -q '"message":"callback taken over' "$T/node$survivor.log" || { echo "node $survivor did not take it over"; code=1; }
  # The second INVITE came from the survivor, and only after the dead node's lease ran out.
  python3 - "$T/carrier.msg" "$killed_at" "$((5059 + survivor))" <<'PY' || code=1
import re, sys, datetime
text, killed, port = open(sys.argv[1]).read(), float(sys.argv[2]), sys.argv[3]
blocks = re.split(r"-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n", text)
invites = [(datetime.datetime.fromisoformat(blocks[i]).timestamp(), blocks[i + 1])
           for i in range(1, len(blocks) - 1, 2) if re.search(r"^INVITE sip:", blocks[i + 1], re.M)]
second_at, second = invites[1]
via = re.search(r"^Via: \S+ ([^;]+)", second, re.M).group(1)
print("second INVITE %.1f s after the kill, from %s" % (second_at - killed, via))
assert via == "127.0.0.1:" + port, "the second INVITE is not from the survivor"
# The lease (3 s, renewed each second, in whole seconds) ends 2 s after the kill at the
# earliest, and the retry waits 1 s more.
assert second_at - killed >= 2.0, "redialled before the lease ran out and the retry delay passed"
PY
  stop_node "$n2" 2 2>/dev/null; stop_node "$n1" 1 2>/dev/null
  return $code
}
