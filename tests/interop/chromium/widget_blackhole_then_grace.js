#!/usr/bin/env node
// Issue 14, acceptances 0 (the widget never lies) and 3 (the grace runs out), with real Chromium
// and the real widget, connected to a SIPp agent that echoes RTP:
//  - the widget's socket path goes silent (iptables DROP: no FIN, no RST): the widget shows
//    "reconnecting" within 10 s;
//  - the path stays down longer than the gateway's grace (widget.resume_grace_secs = 8 here):
//    the call ends at the gateway (the harness checks the agent's BYE and the record);
//  - the path comes back: the widget shows the call ended (connection lost) within 2 s.
// The page is loaded from 127.0.0.3 so only the widget's socket is cut; the REST API is read on
// 127.0.0.1. Prints a JSON report; exit 0 = pass.
'use strict';
const { execSync } = require('child_process');
const { launch } = require('./launch');
const { api, waitFor, sleep, openWidget } = require('./widget_page');

const WAV = process.argv[2];
const RULE = 'INPUT -p tcp -d 127.0.0.3 --dport 8080 -j DROP';

(async () => {
  const { page, close } = await launch(WAV, { viewport: { width: 1000, height: 700 } });
  const report = {};
  try {
    const w = await openWidget(page, '127.0.0.3:8080');
    report.connected = await w.callSupport(10000) !== null;
    await sleep(1000);
    execSync(`iptables -A ${RULE}`);
    const cut = Date.now();
    report.reconnectingAfterMs = await waitFor(async () => (await w.host()).link === 'reconnecting', 12000);
    report.reconnectingText = (await w.host()).status;
    // The gateway notices the silent socket (10-15 s), waits its grace (8 s), ends the call.
    const endedAfter = await waitFor(async () => (await api('/api/calls')).length === 0, 40000);
    report.callEndedAtGatewayAfterMs = endedAfter === null ? null : Date.now() - cut;
    report.widgetWhileCut = await w.host();
    execSync(`iptables -D ${RULE}`);
    report.endedShownAfterMs = await waitFor(async () => (await w.host()).state === 'ended', 5000);
    report.endText = (await w.host()).status;
    report.states = await w.states();
  } catch (e) {
    report.error = String(e);
  }
  await close();
  report.pass = !report.error && report.connected && report.reconnectingAfterMs !== null
    && report.reconnectingAfterMs <= 10000 && report.callEndedAtGatewayAfterMs !== null
    && report.widgetWhileCut.state !== 'ended' && report.widgetWhileCut.link === 'reconnecting'
    && report.endedShownAfterMs !== null && report.endedShownAfterMs <= 2000;
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
