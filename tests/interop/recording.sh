# Interop tests of call recording (issue 15), sourced by run.sh: the helpers are run.sh's.

test_recording_on_a_full_disk_never_touches_the_call() {
  # Issue 15, acceptance 4: the recordings directory is a 64 KiB tmpfs (in a mount namespace of the
  # gateway's own), full two seconds into the call. The call keeps its audio both ways for 6 s
  # (chromium/widget_call_keeps_audio.js, SIPp echo agent), nothing panics, and the record says
  # why the recording stopped.
  need_widget_peers || return 1
  mkdir -p "$T/full"
  { sed 's/^name = "support"$/name = "support"\nrecord = "always"/' "$HERE/gateway-resilience.toml"
    printf '\n[recording]\ndirectory = "%s"\n' "$T/full"; } >"$T/gateway.toml"
  grep -q 'record = "always"' "$T/gateway.toml" || { echo "config edit failed"; return 1; }
  sipp_agent agent_echo.xml -rtp_echo -m 1 -timeout 60s
  start_gateway "$T/gateway.toml" "mount -t tmpfs -o size=64k tmpfs '$T/full'" || return 1
  SECS=6 widget_script widget_call_keeps_audio.js; local code=$?
  sipp_agent_passed || code=1
  stop_gateway || code=1
  cdrs_complete 1 customer_hangup || code=1
  python3 - "$T/records.db" <<'PY' || code=1
import json, sqlite3, sys
talk, recs = sqlite3.connect(sys.argv[1]).execute("SELECT talk_secs, recordings FROM cdrs").fetchone()
rec = json.loads(recs)[0]
print("talk %.1f s; recording: %s" % (talk, rec))
assert rec["error"] and "space" in rec["error"].lower(), "the record does not say the disk was full"
assert rec["duration_secs"] > 0, "what was written before the disk filled is not counted"
PY
  gw_log_has 'recording failed' || code=1
  return $code
}

test_sipp_siprec_recorder_gets_both_streams_pause_and_bye_after_a_refusal() {
  # Issue 15, acceptance 3: a trunk caller (SIPp, 440 Hz) reaches an agent (SIPp, 1000 Hz) in a
  # queue that records to two SIPREC recorders. The first (SIPp) answers 503; the second (SIPp)
  # checks Require: siprec and the multipart body, answers two recvonly streams whose RTP a
  # listener captures, then gets a re-INVITE with a=inactive for a pause over REST, one with
  # a=sendonly for the resume, and the BYE. The INVITE's Contact, metadata and labels are read
  # from the recorder's message log; the record names the recorder and the refusal.
  { sed 's/^name = "support"$/name = "support"\nrecord = "always"\nsiprec = ["sip:srs@127.0.0.1:5072;transport=udp", "sip:srs@127.0.0.1:5070;transport=udp"]/' "$HERE/gateway-inbound.toml"
    printf '\n[api]\nkey = "interop"\n\n[recording]\ndirectory = "%s"\n' "$T/recordings"; } >"$T/gateway.toml"
  grep -q '^siprec = ' "$T/gateway.toml" || { echo "config edit failed"; return 1; }
  python3 "$HERE/tools/tone_pcap.py" 440 20 "$T/tone440.pcap"
  python3 "$HERE/tools/tone_pcap.py" 1000 20 "$T/tone1000.pcap"
  python3 "$HERE/tools/rtp_streams.py" "$T/streams.json" 7000 7002 >"$T/streams.out" 2>&1 &
  local streams_job=$!
  (cd "$T" && $SIPP -sf "$HERE/sipp/siprec_refuser.xml" -i 127.0.0.1 -p 5072 -mp 6200 -timeout 40s \
      >"$T/refuser.out" 2>&1; echo $? >"$T/refuser.rc") &
  local refuser_job=$!
  (cd "$T" && $SIPP -sf "$HERE/sipp/siprec_recorder.xml" -i 127.0.0.1 -p 5070 -mp 6300 -timeout 40s \
      >"$T/recorder.out" 2>&1; echo $? >"$T/recorder.rc") &
  local recorder_job=$!
  sipp_agent agent_tone.xml -m 1 -timeout 40s
  start_gateway "$T/gateway.toml" || return 1
  sed 's/<pause milliseconds="9000"\/>/<pause milliseconds="12000"\/>/' "$HERE/sipp/trunk_caller.xml" >"$T/trunk_caller.xml"
  (cd "$T" && $SIPP -sf "$T/trunk_caller.xml" -i 127.0.0.2 -p 5062 -mp 6100 -timeout 40s 127.0.0.1:5060 \
      >"$T/trunk.out" 2>&1; echo $? >"$T/trunk.rc") &
  local trunk_job=$!
  local api=(-fsS -H "Authorization: Bearer interop")
  local id=""
  for _ in $(seq 1 100); do
    id=$(curl "${api[@]}" http://127.0.0.1:8080/api/calls 2>/dev/null \
      | python3 -c 'import json,sys; c=[c for c in json.load(sys.stdin) if c.get("state")=="connected"]; print(c[0]["id"] if c else "")')
    [ -n "$id" ] && break
    sleep 0.1
  done
  [ -n "$id" ] || { echo "the call never connected"; return 1; }
  sleep 3
  date +%s%3N >"$T/pause_ms"
  curl "${api[@]}" -X POST -d '{"action":"pause"}' "http://127.0.0.1:8080/api/calls/$id/recording" || return 1
  sleep 2
  date +%s%3N >"$T/resume_ms"
  curl "${api[@]}" -X POST -d '{"action":"resume"}' "http://127.0.0.1:8080/api/calls/$id/recording" || return 1
  echo
  wait "$trunk_job"; wait "$recorder_job"; wait "$refuser_job"
  local code=0
  echo "trunk $(cat "$T/trunk.rc"), recorder $(cat "$T/recorder.rc"), refuser $(cat "$T/refuser.rc")"
  cat "$T/refuser_checks.txt" "$T/recorder_checks.txt" 2>/dev/null
  for who in trunk recorder refuser; do
    [ "$(cat "$T/$who.rc")" = 0 ] || { echo "$who failed"; tail -n 20 "$T/$who.out"; cat "$T"/*_errors.log 2>/dev/null | head -20; code=1; }
  done
  sipp_agent_passed || code=1
  kill -TERM "$streams_job"; wait "$streams_job"
  stop_gateway || code=1
  cdrs_complete 1 customer_hangup || code=1
  python3 - "$T" <<'PY' || code=1
import glob, json, re, sqlite3, sys
t = sys.argv[1]
log = open(glob.glob(t + "/siprec_recorder_*_messages.log")[0]).read()
invite = log[log.index("INVITE sip:srs@"):]
invite = invite[:invite.index("SIP/2.0 200 OK")]
contact = re.search(r"^Contact:(.*)$", invite, re.M).group(1)
print("recorder's INVITE Contact:", contact.strip())
assert "+sip.src" in contact, "no +sip.src on the Contact"
assert "Content-Type: application/rs-metadata+xml" in invite, "no metadata part"
for want in ("Gus Grey", "+15557654321", "<label>1</label>", "<label>2</label>", "sip:1001@"):
    assert want in invite, "the metadata lacks %r" % want
assert invite.count("m=audio ") == 2 and "a=label:1" in invite and "a=label:2" in invite
s = json.load(open(t + "/streams.json"))
print("streams:", s)
pause, resume = int(open(t + "/pause_ms").read()), int(open(t + "/resume_ms").read())
for port, hz in (("7000", 440), ("7002", 1000)):
    st = s[port]
    assert st["packets"] > 300, "stream %s: too few packets" % port
    assert st["first_hz"] == hz and st["last_hz"] == hz, "stream %s: not %d Hz" % (port, hz)
    assert st["first_rms"] > 1000 and st["last_rms"] > 1000, "stream %s is quiet" % port
    # The pause: no media from about the pause to about the resume (the recording runs 300 ms
    # behind the call), and the RTP timestamps jump by as long.
    assert 1500 <= st["max_ts_step"] / 8 <= 3000, "stream %s: no pause in its timestamps" % port
    assert st["gap_from_ms"] <= pause + 600 and st["gap_to_ms"] >= resume, "stream %s: media while paused" % port
rec = json.loads(sqlite3.connect(t + "/records.db").execute("SELECT recordings FROM cdrs").fetchone()[0])[0]
print("recording:", rec)
assert rec["recorder"] == "sip:srs@127.0.0.1:5070;transport=udp", "the record does not name the recorder"
assert "5072" in rec["recorder_error"] and "503" in rec["recorder_error"], "the refusal is not recorded"
PY
  return $code
}
