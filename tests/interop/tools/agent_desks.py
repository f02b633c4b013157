#!/usr/bin/env python3
"""Many agents' phones on one SIP address (IP:5090), as the race test of several nodes needs:
each agent is the user part of the Request-URI (its registered contact). A phone that is already
ringing or in a call answers a second INVITE 486 Busy Here and counts it (the gateway should have
known); otherwise it answers 200 with SDP (keeping the proxy's Record-Route) and echoes RTP from a
port of its own. The agent hangs up TALK seconds after answering (a BYE along the Record-Route);
a BYE or CANCEL from the gateway frees the phone too. Runs SECONDS, then writes a JSON report:
INVITEs, answered, busy (486s sent, with the agent and when), per agent the calls taken.
usage: agent_desks.py IP SECONDS TALK report.json"""
import json, re, select, socket, sys, time

ip, seconds, talk, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sip.bind((ip, 5090))
start = time.time()
busy = {}            # agent -> Call-ID of its call
calls = {}           # Call-ID -> (agent, rtp socket)
dialogs = {}         # Call-ID -> (when the agent hangs up, the INVITE, its source)
answered = {}        # Call-ID -> the 200 we sent (resent on a retransmitted INVITE)
report = {"invites": 0, "answered": 0, "busy": [], "taken": {}}


def headers(msg, name):
    return [l.split(":", 1)[1].strip() for l in msg.split("\r\n")[1:]
            if l.split(":", 1)[0].strip().lower() == name.lower()]


def reply(msg, code, reason, src, extra="", body=""):
    keep = []
    for l in msg.split("\r\n")[1:]:
        k = l.split(":", 1)[0].strip().lower()
        if k in ("via", "v", "from", "f", "call-id", "i", "cseq", "record-route"):
            keep.append(l)
        elif k in ("to", "t"):
            keep.append(l if ";tag=" in l or code < 200 else l + ";tag=desk%d" % (hash(src) & 0xFFFF))
    text = "SIP/2.0 %d %s\r\n%s\r\n%sContent-Length: %d\r\n\r\n%s" % (
        code, reason, "\r\n".join(keep), extra, len(body), body)
    sip.sendto(text.encode(), src)
    return text


def on_invite(msg, src):
    call_id = headers(msg, "Call-ID")[0]
    if call_id in answered:                      # a retransmission
        sip.sendto(answered[call_id].encode(), src)
        return
    report["invites"] += 1
    agent = re.match(r"INVITE sip:([^@;>]+)@", msg).group(1)
    if agent in busy:
        report["busy"].append({"agent": agent, "at": round(time.time() - start, 3)})
        reply(msg, 486, "Busy Here", src)
        return
    m = re.search(r"c=IN IP4 (\S+).*?m=audio (\d+)", msg, re.S)
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind((ip, 0))
    rtp.setblocking(False)
    rtp.connect((m.group(1), int(m.group(2))))
    busy[agent] = call_id
    calls[call_id] = (agent, rtp)
    port = rtp.getsockname()[1]
    sdp = ("v=0\r\no=desk 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
           "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n") % (ip, ip, port)
    contact = "Contact: <sip:%s@%s:5090>\r\nContent-Type: application/sdp\r\n" % (agent, ip)
    answered[call_id] = reply(msg, 200, "OK", src, contact, sdp)
    dialogs[call_id] = (time.time() + talk, msg, src)
    report["answered"] += 1
    report["taken"].setdefault(agent, []).append(headers(msg, "X-Call-Id")[:1])


def hang_up(call_id):
    """The agent's BYE: to the gateway's Contact, along the Record-Route (as received: a UAS
    uses the route set in order), From and To swapped."""
    _, invite, src = dialogs.pop(call_id)
    contact = re.search(r"<([^>]+)>", headers(invite, "Contact")[0]).group(1)
    routes = [r for h in headers(invite, "Record-Route") for r in h.split(",")]
    to = headers(invite, "To")[0] + ";tag=desk%d" % (hash(src) & 0xFFFF)
    lines = ["BYE %s SIP/2.0" % contact,
             "Via: SIP/2.0/UDP %s:5090;branch=z9hG4bKdesk%d;rport" % (ip, int(time.time() * 1e6)),
             "From: %s" % to, "To: %s" % headers(invite, "From")[0], "Call-ID: %s" % call_id,
             "CSeq: 1 BYE", "Max-Forwards: 70"] + ["Route: %s" % r.strip() for r in routes]
    first = re.search(r"<sip:([^;>]+)", routes[0]).group(1) if routes else contact[4:].split(";")[0]
    host, port = (first.split("@")[-1].split(":") + ["5060"])[:2]
    sip.sendto(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(), (host, int(port)))
    free(call_id)


def free(call_id):
    dialogs.pop(call_id, None)
    if call_id in calls:
        agent, rtp = calls.pop(call_id)
        rtp.close()
        if busy.get(agent) == call_id:
            del busy[agent]


def on_end(msg, src, method):
    call_id = headers(msg, "Call-ID")[0]
    reply(msg, 200, "OK", src)
    free(call_id)


while time.time() - start < seconds:
    for call_id in [c for c, d in dialogs.items() if d[0] <= time.time()]:
        hang_up(call_id)
    socks = [sip] + [r for _, r in calls.values()]
    ready, _, _ = select.select(socks, [], [], 0.05)
    for s in ready:
        if s is sip:
            data, src = sip.recvfrom(65535)
            msg = data.decode(errors="replace")
            method = msg.split(" ", 1)[0]
            if method == "INVITE":
                on_invite(msg, src)
            elif method in ("BYE", "CANCEL"):
                on_end(msg, src, method)
            elif method == "OPTIONS":
                reply(msg, 200, "OK", src)
            # (responses to our BYEs need nothing)
        else:
            try:
                s.send(s.recv(2048))             # echo
            except OSError:
                pass

report["taken"] = {a: len(v) for a, v in report["taken"].items()}
json.dump(report, open(out, "w"))
print(json.dumps({k: report[k] for k in ("invites", "answered")}), "busy:", len(report["busy"]))
