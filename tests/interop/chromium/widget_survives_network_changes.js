#!/usr/bin/env node
// Issue 14 with real Chromium and the real widget (the gateway's demo page, loaded from 127.0.0.3
// so the test can cut the widget's socket alone; the REST API is read on 127.0.0.1):
//  4. the menu shows buttons (screenshot); clicking "Support" queues the call in support;
//  6. a resume with a forged token and one with an expired token each get their error; the call
//     is untouched;
//  1. mid-call the page's socket is closed and the path to the gateway cut (iptables DROP): the
//     agent is not hung up, the browser's inbound packets keep rising, the widget shows
//     reconnecting, then connected within 3 s of the path being allowed again; one call;
//  2. the browser loses its path (the address its media leaves from can no longer reach the
//     gateway) and the page restarts ICE through the widget: the selected candidate pair moves to
//     another of the browser's addresses (it has 127.0.0.1 and a veth pair's 10.9.0.1 and
//     10.9.0.2, made before Chromium started: Chromium does not see interfaces added later in a
//     network namespace) and packets and the echo (the browser's own 440 Hz, back from the SIPp
//     agent) come back. Measured, not assumed: pairChangedAfterMs (about 3.5 s: Chromium holds
//     on to a silent path for its 2.5 s receiving timeout, though the restart's new pairs answer
//     within 300 ms) and mediaBackAfterMs (about 3.9 s: the gateway's media follows the browser's
//     at once instead of waiting for Chromium's nomination, another 2.5 s, see media::follow);
//     the limits here are 5 s each.
// Writes OUT/restart_at (unix ms) for the agent-side capture. Prints a JSON report; exit 0 = pass.
'use strict';
const path = require('path');
const crypto = require('crypto');
const { execSync } = require('child_process');
const { launch } = require('./launch');
const { api, waitFor, sleep, near440, openWidget } = require('./widget_page');

const PAGE_HOST = '127.0.0.3:8080';
const OUT = process.env.OUT || '.';
const WAV = process.argv[2];
const sh = (cmd) => execSync(cmd, { stdio: 'pipe' }).toString();

// A token signed like the gateway's (widget.resume_secret in gateway-resilience.toml), expired.
function expiredToken(id) {
  const exp = Math.floor(Date.now() / 1000) - 600;
  const sig = crypto.createHmac('sha256', 'interop-resume').update(`r1|${id}|${exp}|`).digest().subarray(0, 16);
  return `r1.${id}.${exp}.${sig.toString('base64url')}`;
}

(async () => {
  const { page, close } = await launch(WAV, { viewport: { width: 1000, height: 700 } });
  const report = {};
  try {
    const { host } = await openWidget(page, PAGE_HOST);
    await page.click('#clicktocall-widget >> text=Call us');
    await page.click('#clicktocall-widget >> text=Call now in the browser');

    // 4. The visual menu.
    report.menuButtons = await waitFor(() => page.evaluate(() =>
      document.querySelector('#clicktocall-widget').shadowRoot.querySelectorAll('.menu button[data-digit]').length >= 2), 6000) !== null;
    report.menu = await page.evaluate(() => [...document.querySelector('#clicktocall-widget').shadowRoot
      .querySelectorAll('.menu button')].map(b => `${b.dataset.digit}=${b.textContent}`));
    await sleep(1500); // the prompt plays once media flows: a button pressed now is heard
    await page.screenshot({ path: path.join(OUT, 'widget-menu.png') });
    await page.click('#clicktocall-widget .menu >> text=Support');
    report.queued = await waitFor(() => page.evaluate(() => __states.includes('queued')), 5000) !== null;
    const calls = await api('/api/calls');
    report.queue = calls[0] && calls[0].queue;
    const id = calls[0] && calls[0].id;
    report.connected = await waitFor(() => page.evaluate(() => __states.includes('connected')), 8000) !== null;
    await page.evaluate(() => listen());
    report.echoBeforeMs = await waitFor(async () => near440(await page.evaluate(() => peak())), 6000);
    report.echoBefore = await page.evaluate(() => peak());

    // 6. Forged and expired tokens.
    const token = await page.evaluate(() => ClickToCall.debug().token);
    const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    report.forged = (await page.evaluate(([u, t]) => tryResume(u, t), [`ws://${PAGE_HOST}/ws`, forged])).code;
    report.expired = (await page.evaluate(([u, t]) => tryResume(u, t), [`ws://${PAGE_HOST}/ws`, expiredToken(id)])).code;
    const after6 = await api(`/api/calls/${id}`);
    report.untouched = after6.state === 'connected' && (await host()).link === 'ok';

    // 1. The socket closes and the path is cut.
    const p0 = await page.evaluate(() => inbound());
    sh('iptables -A INPUT -p tcp -d 127.0.0.3 --dport 8080 -j DROP');
    await page.evaluate(() => ClickToCall.debug().ws.close());
    report.reconnectingAfterMs = await waitFor(async () => (await host()).link === 'reconnecting', 10000);
    report.reconnectingText = (await host()).status;
    await sleep(4000);
    const during = await api('/api/calls');
    report.callsDuringOutage = during.length;
    report.agentStillIn = during[0] && during[0].parties.some(p => p.party === '1001' && p.state === 'connected');
    report.inboundRose = (await page.evaluate(() => inbound())) - p0;
    sh('iptables -D INPUT -p tcp -d 127.0.0.3 --dport 8080 -j DROP');
    report.backAfterMs = await waitFor(async () => { const h = await host(); return h.link === 'ok' && h.state === 'connected'; }, 8000);
    report.backText = (await host()).status;
    report.callsAfter = (await api('/api/calls')).length;

    // 2. A new network, the old path gone, an ICE restart.
    report.pairBefore = await page.evaluate(() => pair());
    // The network the browser's media leaves from goes away (its address is removed, as when a
    // laptop leaves a Wi-Fi); if that was loopback, its path to the gateway's media ports is cut
    // instead (the agent's RTP, from port 6000, still gets through).
    const oldIp = (report.pairBefore || '').split(':')[0];
    if (oldIp.startsWith('10.9.0.')) sh(`ip addr del ${oldIp}/24 dev ${oldIp === '10.9.0.1' ? 'c2c-v0' : 'c2c-v1'}`);
    else sh(`iptables -A INPUT -p udp -s ${oldIp} --dport 20000:20199 ! --sport 6000 -j DROP`);
    const restartAt = Date.now();
    require('fs').writeFileSync(path.join(OUT, 'restart_at'), String(restartAt));
    await page.evaluate(() => ClickToCall.restartIce());
    report.pairChangedAfterMs = await waitFor(async () => {
      const p = await page.evaluate(() => pair()); return p && p.split(':')[0] !== oldIp;
    }, 8000);
    report.pairAfter = await page.evaluate(() => pair());
    // Media is back: packets arrive again and the echo is the browser's own 440 Hz (its audio went
    // to the agent, and the agent's came back). Chromium leaves a path that stopped answering only
    // after its 2.5 s receiving timeout, even when the restart's new pairs answered at once.
    const seen = [];
    report.mediaBackAfterMs = null;
    while (Date.now() - restartAt < 8000) {
      seen.push([Date.now(), await page.evaluate(() => inbound())]);
      const old = seen.find(([t]) => t >= seen[seen.length - 1][0] - 300);
      const flowing = seen.length > 3 && seen[seen.length - 1][1] - old[1] >= 8; // 50 packets/s
      if (flowing && near440(await page.evaluate(() => peak()))) { report.mediaBackAfterMs = Date.now() - restartAt; break; }
      await sleep(50);
    }
    report.echoBack = await page.evaluate(() => peak());
    report.offerCandidates = await page.evaluate(() => ClickToCall.debug().pc.localDescription.sdp
      .split('\r\n').filter(l => l.startsWith('a=candidate:') && l.includes(' udp ')).map(l => l.split(' ')[4]));
    // Still flowing 3 s on (packets only: the widget's microphone has echo cancellation on, and
    // against an agent that echoes the browser's own tone it may fade that tone out).
    const p2 = await page.evaluate(() => inbound());
    await sleep(3000);
    report.echoLater = await page.evaluate(() => peak());
    report.inboundLater = (await page.evaluate(() => inbound())) - p2;
    report.pairLater = await page.evaluate(() => pair());

    await page.click('#clicktocall-widget >> text=Hang up');
    report.ended = await waitFor(() => page.evaluate(() => __states.includes('ended')), 4000) !== null;
    report.states = await page.evaluate(() => __states);
  } catch (e) {
    report.error = String(e);
  }
  await close();
  report.pass = !report.error && report.menuButtons && report.queued && report.queue === 'support'
    && report.connected && near440(report.echoBefore)
    && report.forged === 'resume_invalid' && report.expired === 'resume_expired' && report.untouched
    && report.reconnectingAfterMs !== null && report.callsDuringOutage === 1 && report.agentStillIn
    && report.inboundRose > 100 && report.backAfterMs !== null && report.backAfterMs <= 3000 && report.callsAfter === 1
    && report.pairChangedAfterMs !== null && report.pairChangedAfterMs <= 5000 && (report.pairAfter || '').split(':')[0] !== (report.pairBefore || '').split(':')[0]
    && report.mediaBackAfterMs !== null && report.mediaBackAfterMs <= 5000 && report.inboundLater >= 100 && report.ended;
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
