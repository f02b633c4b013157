# Interop tests of the hardening issue (17): flood defence. Sourced by run.sh: the helpers are
# run.sh's.

test_flood_from_one_source_is_banned_while_agents_and_a_trunk_call_go_on() {
  # Issue 17, acceptance 2: 127.0.0.9 sends 5,000 INVITEs and 5,000 REGISTERs with wrong passwords
  # (a real nonce, a wrong digest) in 10 s. It is banned within its burst (almost nothing of it is
  # answered; the rest is dropped unanswered); meanwhile agent 1002 refreshes its registration
  # (200), a SIPp trunk call from 127.0.0.2 goes through the IVR to registered agent 1001 (SIPp,
  # 1000 Hz) and is connected; both agents stay registered. After the ban time 127.0.0.9 is
  # answered again.
  { sed 's|^uri = "sip:1001@127.0.0.1:5090"$|password = "pw1001"|' "$HERE/gateway-inbound.toml"
    printf '\n[[agents]]\nid = "1002"\npassword = "pw1002"\nqueues = ["sales"]\n'
    printf '\n[api]\nkey = "interop"\n\n[sip.flood]\nban_secs = 6\n'; } >"$T/gateway.toml"
  grep -q 'password = "pw1001"' "$T/gateway.toml" || { echo "config edit failed"; return 1; }
  python3 "$HERE/tools/tone_pcap.py" 440 12 "$T/tone440.pcap"
  python3 "$HERE/tools/tone_pcap.py" 1000 15 "$T/tone1000.pcap"
  start_gateway "$T/gateway.toml" || return 1
  local reg=(-sf "$HERE/sipp/register_only.xml" -i 127.0.0.1 127.0.0.1:5060)
  sipp_run register1001 "${reg[@]}" -p 5090 -s 1001 -au 1001 -ap pw1001 || return 1
  sipp_run register1002 "${reg[@]}" -p 5094 -s 1002 -au 1002 -ap pw1002 || return 1
  sipp_agent agent_tone.xml -m 1 -timeout 40s
  python3 "$HERE/tools/sip_flood.py" flood 127.0.0.9 127.0.0.1:5060 5000 10 >"$T/flood.json" &
  local flood=$! code=0
  sleep 2
  sipp_run reregister1002 "${reg[@]}" -p 5094 -s 1002 -au 1002 -ap pw1002 || { echo "re-registration during the flood failed"; code=1; }
  (cd "$T" && $SIPP -sf "$HERE/sipp/trunk_caller.xml" -i 127.0.0.2 -p 5062 -mp 6100 -timeout 40s \
      127.0.0.1:5060 >"$T/trunk.out" 2>&1)
  local trunk_rc=$?
  wait "$flood"
  echo "flood: $(cat "$T/flood.json")"
  python3 - "$T/flood.json" <<'PY' || code=1
import json, sys
f = json.load(open(sys.argv[1]))
assert f["sent"] == 10000, "the flood did not send 10,000 messages"
assert f["secs"] <= 12, "the flood took %s s" % f["secs"]
assert f["answered"] <= 400, "more than the burst was answered: %d" % f["answered"]
PY
  [ "$trunk_rc" = 0 ] || { echo "the trunk call failed during the flood"; tail -n 20 "$T"/trunk_caller_*_errors.log 2>/dev/null; code=1; }
  local api=(-fsS -H "Authorization: Bearer interop")
  local bans; bans=$(curl "${api[@]}" http://127.0.0.1:8080/api/bans)
  echo "bans: $bans"
  echo "$bans" | grep -q '"ip":"127.0.0.9"' || { echo "127.0.0.9 is not banned"; code=1; }
  local agents; agents=$(curl "${api[@]}" http://127.0.0.1:8080/api/agents)
  echo "agents: $agents"
  echo "$agents" | grep -q '"state":"offline"' && { echo "an agent lost its registration"; code=1; }
  local m; m=$(curl -fsS http://127.0.0.1:8080/metrics)
  echo "$m" | grep -E '^clicktocall_sip_(banned_sources|flood_dropped_total|bans_total) '
  echo "$m" | awk '/^clicktocall_sip_flood_dropped_total / { ok = ($2 >= 9000) } END { exit !ok }' \
    || { echo "fewer than 9,000 messages dropped"; code=1; }
  gw_log_has 'SIP source banned' || code=1
  # After the ban time: served again.
  for _ in $(seq 1 40); do
    curl "${api[@]}" http://127.0.0.1:8080/api/bans | grep -q '127.0.0.9' || break
    sleep 0.25
  done
  python3 "$HERE/tools/sip_flood.py" probe 127.0.0.9 127.0.0.1:5060 || { echo "not served after the ban"; code=1; }
  sipp_agent_passed || code=1
  stop_gateway || code=1
  cdrs_complete 1 customer_hangup || code=1
  return $code
}
