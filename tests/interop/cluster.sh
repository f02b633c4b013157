# Interop tests of several gateway nodes (issue 19), sourced by run.sh: the helpers are run.sh's.
# Three nodes (127.0.0.11-13, node ids 1-3) share a real Redis (127.0.0.1:6379) behind a real
# Kamailio (127.0.0.10:5060, tests/interop/cluster/kamailio.cfg); SIPp agents (127.0.0.2x) register
# through Kamailio, SIPp trunk callers (127.0.0.30) call through it.

need_cluster_peers() {
  command -v redis-server >/dev/null || { echo "redis-server not installed"; return 1; }
  command -v kamailio >/dev/null || { echo "kamailio not installed"; return 1; }
  for n in 10 11 12 13 21 22 23 30; do ip addr add "127.0.0.$n/8" dev lo 2>/dev/null; done
  return 0
}

start_redis() {
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no >"$T/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis did not come up"; cat "$T/redis.log"; return 1
}

start_kamailio() {
  printf '1 sip:127.0.0.11:5060\n1 sip:127.0.0.12:5060\n1 sip:127.0.0.13:5060\n' >"$T/dispatcher.list"
  sed "s|DISPATCHER_LIST|$T/dispatcher.list|" "$HERE/cluster/kamailio.cfg" >"$T/kamailio.cfg"
  kamailio -f "$T/kamailio.cfg" -DD -E -P "$T/kamailio.pid" -Y "$T" >"$T/kamailio.log" 2>&1 &
  KAM_PID=$!
  sleep 1
  kill -0 "$KAM_PID" 2>/dev/null || { echo "kamailio did not start"; tail -20 "$T/kamailio.log"; return 1; }
}

kam_node_config() {  # kam_node_config N: node N's configuration on stdout
  cat <<TOML
[http]
listen = "127.0.0.1$1:8080"
[sip]
listen_udp = "127.0.0.1$1:5060"
listen_tcp = "127.0.0.1$1:5060"
[registrar]
keepalive_interval_secs = 0
[media]
bind_ip = "127.0.0.1$1"
port_min = 20000
port_max = 20999
[records]
database = "$T/records$1.db"
[cluster]
node_id = $1
redis = "redis://127.0.0.1:6379"
[[trunks]]
name = "proxy"
proxy = "sip:127.0.0.10:5060"
sources = ["127.0.0.10/32"]
numbers = ["+15550100"]
pass_through_headers = ["X-Account-Id"]
queue = "support"
[[queues]]
name = "support"
[shutdown]
grace_secs = 2
TOML
  for a in 1001 1002 1003; do printf '[[agents]]\nid = "%s"\npassword = "pw%s"\nqueues = ["support"]\n' $a $a; done
}

start_kam_node() {  # start_kam_node N: sets NODE_PID[N]; waits for /healthz
  kam_node_config "$1" >"$T/node$1.toml"
  env -u CLICKTOCALL_RECORDS_DATABASE "$BIN" serve --config "$T/node$1.toml" --log-format json \
    >"$T/node$1.log" 2>&1 &
  NODE_PID[$1]=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1$1:8080/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node $1 did not come up"; tail -20 "$T/node$1.log"; return 1
}

stop_kam_node() {
  kill -TERM "${NODE_PID[$1]}" 2>/dev/null; wait "${NODE_PID[$1]}" 2>/dev/null
  if grep -q 'panicked' "$T/node$1.log"; then echo "node $1 panicked"; return 1; fi
}

kam_node_records() {  # kam_node_records: every node's records, one line per call (node, reason, agent, media)
  python3 - "$T" <<'PY'
import json, sqlite3, sys
total = 0
for n in (1, 2, 3):
    rows = sqlite3.connect("%s/records%d.db" % (sys.argv[1], n)).execute(
        "SELECT end_reason, agent, customer_quality, agent_quality FROM cdrs").fetchall()
    for reason, agent, cq, aq in rows:
        cq, aq = json.loads(cq or "{}"), json.loads(aq or "{}")
        print("node %d: %s, agent %s, from the caller %s/%s packets lost, from the agent %s/%s" % (
            n, reason, agent, cq.get("lost"), cq.get("expected"), aq.get("lost"), aq.get("expected")))
        total += 1
print("records:", total)
PY
}

test_cluster_agents_through_kamailio_take_trunk_calls_of_every_node() {
  # Issue 19, acceptance 1 (SIPp peers): three agents register through Kamailio (Path added, the
  # REGISTERs dispatched by Call-ID: the three share one, as the phones of one desk could, so they
  # land on one node); three trunk calls through Kamailio land on the three nodes in turn (round
  # robin), so at least two reach an agent registered through another node (the INVITE goes through the agent's Path, carries the pass-through header and the
  # queue, never the caller's address); media flows both ways through the node that holds the
  # call (the caller's 440 Hz and the agent's echo, counted in that node's record); the callers'
  # BYEs follow Kamailio's Record-Route to the right node.
  need_cluster_peers || return 1
  start_redis || return 1
  start_kamailio || return 1
  for n in 1 2 3; do start_kam_node $n || return 1; done
  sleep 2   # Kamailio's probes mark the nodes up
  local code=0 i
  for i in 1 2 3; do
    sipp_run "register100$i" -sf "$HERE/sipp/register_only.xml" -i "127.0.0.2$i" -p 5090 \
      -s "100$i" -au "100$i" -ap "pw100$i" -cid_str "agents-of-one-desk@c2c" 127.0.0.10:5060 || code=1
  done
  local agents=()
  for i in 1 2 3; do
    mkdir -p "$T/a$i"
    (cd "$T/a$i" && sipp -sf "$HERE/sipp/agent_proxied.xml" -i "127.0.0.2$i" -p 5090 -mp 6000 -rtp_echo \
      -m 1 -timeout 60s -timeout_error -nostdin -trace_err -trace_msg >"$T/a$i.out" 2>&1; echo $? >"$T/a$i.rc") &
    agents+=($!)
  done
  echo "registrations: $(for n in 1 2 3; do grep -c 'agent online' "$T/node$n.log" | sed "s/^/node $n: /"; done | tr '\n' ' ')"
  python3 "$HERE/tools/tone_pcap.py" 440 12 "$T/tone440.pcap"
  (cd "$T" && sipp -sf "$HERE/sipp/trunk_caller_proxied.xml" -i 127.0.0.30 -p 5062 -mp 6100 \
      -m 3 -r 1 -l 3 -timeout 60s -timeout_error -nostdin -trace_err -trace_msg 127.0.0.10:5060 \
      >"$T/trunk.out" 2>&1; echo $? >"$T/trunk.rc")
  wait "${agents[@]}"
  echo "trunk sipp exit $(cat "$T/trunk.rc"); agents $(cat "$T"/a?.rc | tr '\n' ' ')"
  [ "$(cat "$T/trunk.rc")" = 0 ] || { echo "a trunk call failed"; tail -n 20 "$T"/trunk_caller_proxied_*_errors.log 2>/dev/null; code=1; }
  for i in 1 2 3; do
    [ "$(cat "$T/a$i.rc")" = 0 ] || { echo "agent 100$i: no call, or headers wrong"; tail -n 20 "$T"/a$i/*_errors.log 2>/dev/null; code=1; }
  done
  for n in 1 2 3; do
    local answered; answered=$(grep -c 'inbound call answered' "$T/node$n.log")
    echo "node $n answered $answered trunk call(s)"
    [ "$answered" = 1 ] || code=1
  done
  for n in 1 2 3; do stop_kam_node $n || code=1; done
  kam_node_records | tee "$T/records.txt"
  grep -q '^records: 3$' "$T/records.txt" || { echo "not one record per call"; code=1; }
  python3 - "$T" <<'PY' || code=1
import json, sqlite3, sys
for n in (1, 2, 3):
    for reason, agent, cq, aq in sqlite3.connect("%s/records%d.db" % (sys.argv[1], n)).execute(
            "SELECT end_reason, agent, customer_quality, agent_quality FROM cdrs"):
        assert reason == "customer_hangup" and agent, "node %d: %s with agent %s" % (n, reason, agent)
        for q in (json.loads(cq), json.loads(aq)):
            assert q["expected"] >= 150, "node %d: too little media %r" % (n, q)
            assert q["lost"] <= q["expected"] // 100, "node %d: media lost %r" % (n, q)
PY
  # Where each agent registered (the node that logged it online) against the node of its call.
  python3 - "$T" <<'PY' || code=1
import json, sqlite3, sys
home = {}
for n in (1, 2, 3):
    for line in open("%s/node%d.log" % (sys.argv[1], n)):
        if '"agent online"' in line:
            home[json.loads(line)["agent"]] = n
crossed = 0
for n in (1, 2, 3):
    for (agent,) in sqlite3.connect("%s/records%d.db" % (sys.argv[1], n)).execute("SELECT agent FROM cdrs"):
        print("call on node %d answered by agent %s, registered through node %s" % (n, agent, home.get(agent)))
        crossed += home.get(agent) != n
print("calls answered by an agent of another node:", crossed)
assert crossed >= 2, "the calls did not cross nodes"
PY
  kill "$KAM_PID" "$REDIS_PID" 2>/dev/null
  return $code
}
