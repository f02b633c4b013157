#!/usr/bin/env node
// Issue 13, acceptance 5 with real peers: headless Chromium (fake microphone, 440 Hz) on the demo
// page calls the conference queue "support", where two baresip desk phones answer (1002 sends
// 1000 Hz, 1003 sends 700 Hz). The browser's analyser must show both agents' peaks (and not its own
// 440 Hz); run.sh checks each phone's recording for the customer's 440 Hz. Then over REST: hold →
// the widget shows on_hold and the browser hears music, not the agents; unhold; transfer to the
// queue "sales" → the widget shows transferring, then connected with the SIPp phone there (an echo:
// the browser hears its own 440 Hz back); hangup → the widget shows ended (api_hangup).
// Prints a JSON report; exit 0 = pass.
'use strict';
const http = require('http');
const path = require('path');
const { launch } = require('./launch');

const GATEWAY = process.env.GATEWAY || '127.0.0.1:8080';
const API_KEY = process.env.API_KEY || 'interop-key';
const OUT = process.env.OUT || '.';
const WAV = process.argv[2];
const sleep = (ms) => new Promise(r => setTimeout(r, ms));

// One REST request; resolves with { status, body }.
function api(method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const [host, port] = GATEWAY.split(':');
    const req = http.request({ host, port, method, path: urlPath,
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.on('data', d => { data += d; });
      res.on('end', () => { let j = null; try { j = JSON.parse(data); } catch (_) {} resolve({ status: res.statusCode, body: j }); });
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : '');
  });
}

(async () => {
  const { page, close } = await launch(WAV, { viewport: { width: 1000, height: 700 } });
  const report = { shots: [] };
  try {
    await page.addInitScript(() => {
      const Orig = window.RTCPeerConnection;
      window.__pcs = [];
      window.RTCPeerConnection = function (...a) { const pc = new Orig(...a); window.__pcs.push(pc); return pc; };
      window.RTCPeerConnection.prototype = Orig.prototype;
      // Levels (dB) at the given frequencies, and the loudest bin, of what the browser plays.
      window.__levels = (freqs) => {
        const pc = window.__pcs[0];
        if (!window.__an) {
          const track = pc.getReceivers().map(r => r.track).find(t => t && t.kind === 'audio');
          window.__ctx = new AudioContext();
          window.__an = window.__ctx.createAnalyser(); window.__an.fftSize = 8192; window.__an.smoothingTimeConstant = 0;
          window.__ctx.createMediaStreamSource(new MediaStream([track])).connect(window.__an);
          return null;
        }
        const bins = new Float32Array(window.__an.frequencyBinCount); window.__an.getFloatFrequencyData(bins);
        const hzPerBin = window.__ctx.sampleRate / window.__an.fftSize;
        // The strongest bin within ±2 bins of each frequency (the tone may fall between bins).
        const at = (hz) => { const c = Math.round(hz / hzPerBin); let m = -Infinity; for (let i = c - 2; i <= c + 2; i++) m = Math.max(m, bins[i]); return Math.round(m); };
        let best = 1; for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
        const out = { peakHz: Math.round(best * hzPerBin), peakDb: Math.round(bins[best]) };
        for (const f of freqs) out[f] = at(f);
        return out;
      };
    });
    await page.goto(`http://${GATEWAY}/`);
    await page.waitForFunction(() => window.ClickToCall && window.ClickToCall.__loaded);
    await page.evaluate(() => { window.__states = []; ClickToCall.on('state', s => window.__states.push(s)); });
    const shot = async (name) => {
      const f = path.join(OUT, `conference-${name}.png`);
      await page.screenshot({ path: f, clip: { x: 650, y: 200, width: 350, height: 500 } });
      report.shots.push(path.basename(f));
    };
    const waitState = async (want, ms, after = 0) => {
      for (let t = 0; t < ms; t += 100) {
        const got = (await page.evaluate(() => window.__states)).slice(after).find(s => s.state === want);
        if (got) return got;
        await sleep(100);
      }
      return null;
    };
    const count = () => page.evaluate(() => window.__states.length);
    const levels = async () => {
      await page.evaluate(() => window.__levels([]));
      await sleep(300);
      // The median of five reads over a second, per frequency (a single FFT frame can dip).
      const reads = [];
      for (let i = 0; i < 5; i++) { reads.push(await page.evaluate(() => window.__levels([440, 700, 1000, 1500]))); await sleep(200); }
      const med = (k) => reads.map(r => r[k]).sort((a, b) => a - b)[2];
      return { 440: med(440), 700: med(700), 1000: med(1000), 1500: med(1500), peakHz: reads[2].peakHz, peakDb: med('peakDb') };
    };

    await page.click('#clicktocall-widget >> text=Call us');
    await page.click('#clicktocall-widget >> text=Call now in the browser');
    report.ivr = !!await waitState('ivr', 5000);
    await sleep(2500);
    let n = await count();
    await page.click('#clicktocall-widget .keys >> text="2"');
    report.connected = !!await waitState('connected', 10000, n);
    const calls = await api('GET', '/api/calls');
    report.callId = calls.body && calls.body[0] && calls.body[0].id;
    // Both phones answer on their own; wait until the second joined.
    for (let t = 0; t < 50; t++) {
      const c = await api('GET', `/api/calls/${report.callId}`);
      report.parties = c.body && c.body.parties.filter(p => p.state === 'connected').map(p => p.party);
      if (report.parties && report.parties.length === 3) break;
      await sleep(200);
    }
    await sleep(2000);
    report.levelsConference = await levels();
    await shot('connected');

    n = await count();
    report.hold = (await api('POST', `/api/calls/${report.callId}/hold`)).status;
    report.onHold = !!await waitState('on_hold', 5000, n);
    await sleep(1500);
    report.levelsOnHold = await levels();
    await shot('on_hold');
    n = await count();
    report.unhold = (await api('POST', `/api/calls/${report.callId}/unhold`)).status;
    report.resumed = !!await waitState('connected', 5000, n);
    await sleep(1000);

    n = await count();
    report.transfer = (await api('POST', `/api/calls/${report.callId}/transfer`, { queue: 'sales' })).status;
    report.transferring = !!await waitState('transferring', 5000, n);
    report.connectedAgain = !!await waitState('connected', 10000, n);
    const after = await api('GET', `/api/calls/${report.callId}`);
    report.agentAfterTransfer = after.body && after.body.agent;
    await sleep(2500);
    report.levelsTransferred = await levels();
    await shot('transferred');

    n = await count();
    report.hangup = (await api('POST', `/api/calls/${report.callId}/hangup`)).status;
    const ended = await waitState('ended', 5000, n);
    report.endReason = ended && ended.reason;
    report.states = (await page.evaluate(() => window.__states)).map(s => s.state);
  } catch (e) {
    report.error = String(e && e.stack || e);
  }
  await close();
  const c = report.levelsConference || {}, h = report.levelsOnHold || {}, x = report.levelsTransferred || {};
  // Both agents loud against a quiet bin; the customer's own tone not echoed back by the mix.
  report.bothAgentsHeard = c[700] > c[1500] + 20 && c[1000] > c[1500] + 20 && c[440] < Math.min(c[700], c[1000]) - 20;
  report.musicNotAgents = h.peakDb > -70 && h[700] < c[700] - 20 && h[1000] < c[1000] - 20;
  report.echoAfterTransfer = x[440] > x[1500] + 20 && x[1000] < x[440] - 20;
  report.pass = !report.error && report.ivr && report.connected && report.parties && report.parties.length === 3
    && report.bothAgentsHeard && report.hold === 200 && report.onHold && report.musicNotAgents
    && report.unhold === 200 && report.resumed && report.transfer === 200 && report.transferring
    && report.connectedAgain && report.agentAfterTransfer === '1004' && report.echoAfterTransfer
    && report.hangup === 200 && report.endReason === 'api_hangup';
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
