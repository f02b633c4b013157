# Interop tests of supervisors, consult calls and attended transfer (issue 16), sourced by
# run.sh: the helpers are run.sh's.

test_chromium_desk_phone_consults_then_transfers_with_replaces() {
  # Issue 16, acceptance 3 (attended transfer): a Chromium customer (440 Hz) reaches desk phone
  # 1001 (SIPp, registered, 1000 Hz). The phone holds, calls 1002 (SIPp, 700 Hz) through the
  # gateway with its digest credentials, talks, and REFERs the customer's dialog with Replaces
  # naming the consult dialog, as Yealink phones do. The customer hears 1001, then music, then
  # 1002; the widget shows on_hold, transferring, connected; 1001 gets the final NOTIFY and a BYE
  # on both dialogs; 1002 gets BYE when the customer hangs up; one record lists all three.
  need_widget_peers || return 1
  { sed 's|^uri = "sip:1001@127.0.0.1:5090"$|password = "pw1001"|' "$HERE/gateway-resilience.toml"
    printf '\n[[agents]]\nid = "1002"\nuri = "sip:1002@127.0.0.1:5092"\nqueues = ["sales"]\n'; } >"$T/gateway.toml"
  grep -q 'password = "pw1001"' "$T/gateway.toml" || { echo "config edit failed"; return 1; }
  python3 "$HERE/tools/tone_pcap.py" 1000 30 "$T/tone1000.pcap"
  mkdir -p "$T/b" && python3 "$HERE/tools/tone_pcap.py" 700 30 "$T/b/tone1000.pcap"
  start_gateway "$T/gateway.toml" || return 1
  sipp_run register -sf "$HERE/sipp/register_only.xml" -i 127.0.0.1 -p 5090 -s 1001 -au 1001 -ap pw1001 127.0.0.1:5060 || return 1
  (cd "$T" && sipp -sf "$HERE/sipp/desk_phone_attended_transfer.xml" -i 127.0.0.1 -p 5090 -mp 6000 -m 1 \
      -timeout 60s -timeout_error -nostdin -trace_err -trace_msg 127.0.0.1:5060 >"$T/desk.out" 2>&1; echo $? >"$T/desk.rc") &
  local desk=$!
  (cd "$T/b" && sipp -sf "$HERE/sipp/agent_tone.xml" -i 127.0.0.1 -p 5092 -mp 6200 -m 1 \
      -timeout 60s -timeout_error -nostdin -trace_err >"$T/b.out" 2>&1; echo $? >"$T/b.rc") &
  local target=$!
  widget_script widget_attended_transfer.js; local code=$?
  wait "$desk"; wait "$target"
  echo "desk phone sipp exit $(cat "$T/desk.rc"), target sipp exit $(cat "$T/b.rc")"
  cat "$T/desk_phone.txt" 2>/dev/null
  [ "$(cat "$T/desk.rc")" = 0 ] || { echo "the desk phone's transfer went wrong"; tail -n 30 "$T"/desk_phone_attended_transfer_*_errors.log 2>/dev/null; code=1; }
  [ "$(cat "$T/b.rc")" = 0 ] || { echo "the target's call went wrong"; tail -n 20 "$T"/b/*_errors.log 2>/dev/null; code=1; }
  gw_log_has 'attended transfer \(REFER with Replaces\)' || code=1
  stop_gateway || code=1
  cdrs_complete 1 customer_hangup || code=1
  python3 - "$T/records.db" <<'PY' || code=1
import json, sqlite3, sys
parties = json.loads(sqlite3.connect(sys.argv[1]).execute("SELECT parties FROM cdrs").fetchone()[0])
names = [p["party"] for p in parties]
print("parties:", [(p["party"], p["role"], p["left_ms"] is not None) for p in parties])
assert names == ["customer", "1001", "1002"], "the record does not list the three parties"
PY
  return $code
}

test_baresip_supervisor_dials_the_feature_code_and_switches_modes_by_dtmf() {
  # Issue 16, acceptances 2 and 3 (supervisor): a trunk caller (SIPp, 440 Hz) talks to agent 1001
  # (SIPp, 1000 Hz) in a recorded queue. Supervisor 9001 is baresip (registered, 700 Hz): it dials
  # *55 + 1001, listens (monitor), presses 5 (whisper) and 6 (barge) as RFC 4733 DTMF, hangs up.
  # What baresip heard holds the customer and the agent; the record lists 9001 as a supervisor
  # with modes monitor, whisper, barge; the call's WAV has no 700 Hz while whispering and has it
  # on the agents' channel only while barging.
  command -v baresip >/dev/null || { echo "baresip not installed"; return 1; }
  { sed 's/^name = "support"$/name = "support"\nrecord = "always"/' "$HERE/gateway-inbound.toml"
    printf '\n[api]\nkey = "interop"\n\n[recording]\ndirectory = "%s"\n' "$T/recordings"
    printf '\n[[supervisors]]\nid = "9001"\npassword = "pw9001"\nqueues = ["support"]\n'; } >"$T/gateway.toml"
  python3 "$HERE/tools/tone_pcap.py" 440 20 "$T/tone440.pcap"
  python3 "$HERE/tools/tone_pcap.py" 1000 20 "$T/tone1000.pcap"
  tone8k_wav "$T/tone700_8k.wav" 700 30
  local rec; rec=$(mktemp -d /tmp/c2c-sup.XXXXXX)
  mkdir -p "$T/baresip"
  sed "s|@T@/tone1000_8k.wav|$T/tone700_8k.wav|; s|@T@|$T|g; s|@REC@|$rec|g" "$HERE/baresip_agent/config" >"$T/baresip/config"
  printf '<sip:9001@127.0.0.1:5060;transport=udp>;auth_pass=pw9001;regint=600;answermode=manual;audio_codecs=PCMU\n' >"$T/baresip/accounts"
  sipp_agent agent_tone.xml -m 1 -timeout 40s
  start_gateway "$T/gateway.toml" || return 1
  baresip -f "$T/baresip" >"$T/baresip.log" 2>&1 &
  local phone=$!
  for _ in $(seq 1 50); do grep -q '"message":"agent online".*"agent":"9001"' "$T/gateway.log" && break; sleep 0.1; done
  sed 's/<pause milliseconds="9000"\/>/<pause milliseconds="14000"\/>/' "$HERE/sipp/trunk_caller.xml" >"$T/trunk_caller.xml"
  (cd "$T" && $SIPP -sf "$T/trunk_caller.xml" -i 127.0.0.2 -p 5062 -mp 6100 -timeout 40s 127.0.0.1:5060 \
      >"$T/trunk.out" 2>&1; echo $? >"$T/trunk.rc") &
  local trunk=$!
  local api=(-fsS -H "Authorization: Bearer interop") ctl="$HERE/tools/baresip_cmd.py 127.0.0.1:4444"
  for _ in $(seq 1 100); do
    curl "${api[@]}" http://127.0.0.1:8080/api/calls 2>/dev/null | grep -q '"agent":"1001"' && break
    sleep 0.1
  done
  sleep 1
  local code=0
  $ctl dial 'sip:*551001@127.0.0.1:5060' || code=1
  sleep 3; $ctl sndcode 5 || code=1
  sleep 3; $ctl sndcode 6 || code=1
  sleep 3; $ctl hangup || code=1
  wait "$trunk"
  sipp_agent_passed || code=1
  echo "trunk sipp exit $(cat "$T/trunk.rc")"
  [ "$(cat "$T/trunk.rc")" = 0 ] || { echo "the trunk caller failed"; code=1; }
  kill -TERM "$phone" 2>/dev/null; wait "$phone" 2>/dev/null
  mv "$rec" "$T/rec"
  stop_gateway || code=1
  cdrs_complete 1 customer_hangup || code=1
  python3 - "$T/records.db" "$T/rec" <<'PY' || code=1
import glob, json, math, sqlite3, struct, sys, wave
parties, recs = sqlite3.connect(sys.argv[1]).execute("SELECT parties, recordings FROM cdrs").fetchone()
sup = [p for p in json.loads(parties) if p["party"] == "9001"]
assert sup and sup[0]["role"] == "supervisor", "no supervisor in the record"
modes = [m[0] for m in sup[0]["modes"]]
print("supervisor modes:", sup[0]["modes"])
assert modes == ["monitor", "whisper", "barge"], "the DTMF did not switch the modes"
def level(x, rate, hz):
    re = sum(v * math.cos(2 * math.pi * hz * i / rate) for i, v in enumerate(x))
    im = sum(v * math.sin(2 * math.pi * hz * i / rate) for i, v in enumerate(x))
    return math.sqrt(re * re + im * im) / len(x)
heard = sorted(glob.glob(sys.argv[2] + "/*-dec.wav"))
assert heard, "baresip recorded nothing"
w = wave.open(heard[-1]); rate = w.getframerate()
x = struct.unpack("<%dh" % w.getnframes(), w.readframes(w.getnframes()))[rate // 2: rate // 2 + rate // 2]
l440, l1000 = level(x, rate, 440), level(x, rate, 1000)
print("the supervisor heard 440 Hz at %.0f and 1000 Hz at %.0f" % (l440, l1000))
assert l440 > 300 and l1000 > 300, "the supervisor did not hear customer and agent"
rec = json.loads(recs)[0]
w = wave.open(rec["file"]); n = w.getnframes()
s = struct.unpack("<%dh" % (2 * n), w.readframes(n))
since = lambda i: sup[0]["modes"][i][1] - rec["started_ms"]
def span(ch, a, b):
    return s[ch::2][(a + 500) * 8 // 1: (b - 200) * 8 // 1][:8000]
whisper, barge, end = since(1), since(2), sup[0]["left_ms"] - rec["started_ms"]
lw = [level(span(c, whisper, barge), 8000, 700) for c in (0, 1)]
lb = [level(span(c, barge, end), 8000, 700) for c in (0, 1)]
print("700 Hz while whispering: left %.0f right %.0f; while barging: left %.0f right %.0f" % (lw[0], lw[1], lb[0], lb[1]))
assert max(lw) < 60, "a whisper is in the recording"
assert lb[1] > 300 and lb[0] < 60, "the barge is not on the agents' channel only"
PY
  return $code
}
