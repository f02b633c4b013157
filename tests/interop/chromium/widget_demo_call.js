#!/usr/bin/env node
// The demo page as a visitor uses it: real headless Chromium (fake microphone, 440 Hz) opens the
// gateway's own demo page (embedded default config, built-in demo agent), clicks "Call us" and
// "Call now in the browser", hears the IVR, presses 2 on the widget's keypad, is connected to the
// demo agent, hears its own tone echoed back, and hangs up from the widget. Saves a screenshot of the
// widget in each state to OUT. Prints a JSON report; exit 0 = pass.
// RELAY=1: the browser may use only TURN relay candidates (the ICE servers come from the gateway's
// hello); the call must connect through the relay.
'use strict';
const path = require('path');
const { launch } = require('./launch');

const GATEWAY = process.env.GATEWAY || '127.0.0.1:8080';
const OUT = process.env.OUT || '.';
const WAV = process.argv[2];
const RELAY = process.env.RELAY === '1';
const sleep = (ms) => new Promise(r => setTimeout(r, ms));

(async () => {
  const { page, close } = await launch(WAV, { viewport: { width: 1000, height: 700 } });
  const report = { states: [], shots: [] };
  try {
    // Record every state the widget reports, and the RTCPeerConnection it makes (for audio stats).
    await page.addInitScript((RELAY) => {
      const Orig = window.RTCPeerConnection;
      window.__pcs = [];
      const relay = RELAY;
      window.RTCPeerConnection = function (cfg, ...rest) {
        window.__iceServers = (cfg && cfg.iceServers) || [];
        if (relay) cfg = Object.assign({}, cfg, { iceTransportPolicy: 'relay' });
        const pc = new Orig(cfg, ...rest); window.__pcs.push(pc); return pc;
      };
      window.RTCPeerConnection.prototype = Orig.prototype;
    }, RELAY);
    await page.goto(`http://${GATEWAY}/`);
    await page.waitForFunction(() => window.ClickToCall && window.ClickToCall.__loaded);
    await page.evaluate(() => { window.__states = []; ClickToCall.on('state', s => window.__states.push(s.state)); });
    const shot = async (name) => {
      const f = path.join(OUT, `widget-${name}.png`);
      await page.screenshot({ path: f });
      report.shots.push(f);
    };
    const waitState = async (want, ms) => {
      for (let t = 0; t < ms; t += 100) {
        if ((await page.evaluate(() => window.__states)).includes(want)) return true;
        await sleep(100);
      }
      return false;
    };
    await shot('closed');
    await page.click('#clicktocall-widget >> text=Call us');
    await shot('open');
    await page.click('#clicktocall-widget >> text=Call now in the browser');
    report.ivr = await waitState('ivr', 5000);
    await sleep(2000);
    await shot('ivr');
    report.promptLevel = await page.evaluate(async () => {
      let level = 0;
      for (const pc of window.__pcs) (await pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'audio') level = r.audioLevel || 0; });
      return level;
    });
    await page.click('#clicktocall-widget .keys >> text="2"');
    report.queued = await waitState('queued', 5000);
    report.connected = await waitState('connected', 8000);
    await sleep(1500);
    await shot('connected');
    report.statusText = await page.evaluate(() => document.querySelector('#clicktocall-widget').shadowRoot.querySelector('.status').textContent);
    // The candidate pair the call's media uses.
    report.pair = await page.evaluate(async () => {
      const stats = await window.__pcs[0].getStats();
      let pair = null; const c = {};
      stats.forEach(r => {
        if (r.type === 'local-candidate' || r.type === 'remote-candidate') c[r.id] = r;
        if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
      });
      return pair && { local: c[pair.localCandidateId].candidateType, remote: c[pair.remoteCandidateId].candidateType };
    });
    report.iceServers = await page.evaluate(() => window.__iceServers.map(s => ({ urls: s.urls, username: s.username })));
    await page.click('#clicktocall-widget >> text=Hang up');
    report.ended = await waitState('ended', 4000);
    await sleep(300);
    await shot('ended');
    report.states = await page.evaluate(() => window.__states);
    report.endText = await page.evaluate(() => document.querySelector('#clicktocall-widget').shadowRoot.querySelector('.status').textContent);
  } catch (e) {
    report.error = String(e);
  }
  await close();
  report.pass = !report.error && report.ivr && report.promptLevel > 0.01 && report.queued
    && report.connected && report.ended && !!report.pair && (!RELAY || report.pair.local === 'relay');
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
