#!/usr/bin/env node
// Issue 6 scenarios 1, 2 and 4 with real peers: headless Chromium (fake microphone, 440 Hz) on the
// gateway's demo page, and baresip as agent 1002's desk phone (registered, sends 1000 Hz, records
// what it hears), driven over its ctrl_tcp socket.
//   1. The page sets context; Call us → Call now in the browser; no inbound audio energy before ICE
//      connects, the IVR prompt's energy after; keypad 2 → queued (the agent is away, set over REST)
//      → the agent becomes available → ringing → baresip accepts → connected.
//   2. The browser's analyser finds the agent's 1000 Hz (run.sh checks baresip's recording for 440 Hz).
//   4. The agent holds (widget: on hold), resumes (connected), hangs up: the widget shows ended with
//      "The agent ended the call."
// Saves a screenshot of the widget in each state to OUT. Prints a JSON report; exit 0 = pass.
'use strict';
const http = require('http');
const net = require('net');
const path = require('path');
const { launch } = require('./launch');

const GATEWAY = process.env.GATEWAY || '127.0.0.1:8080';
const API_KEY = process.env.API_KEY || 'interop-key';
const CTRL = (process.env.BARESIP_CTRL || '127.0.0.1:4444').split(':');
const OUT = process.env.OUT || '.';
const WAV = process.argv[2];
const sleep = (ms) => new Promise(r => setTimeout(r, ms));

// One baresip ctrl_tcp command (netstring-framed JSON); resolves with its response.
function baresip(command, params = '') {
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(CTRL[1]), CTRL[0]);
    const body = JSON.stringify({ command, params, token: 't' });
    sock.on('connect', () => sock.write(`${Buffer.byteLength(body)}:${body},`));
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`baresip ${command}: no response`)); }, 3000);
    sock.on('data', (d) => {
      buf += d;
      // Events and the response may share a chunk: take every complete netstring.
      for (let m; (m = /^(\d+):/.exec(buf)) && buf.length > m[0].length + Number(m[1]);) {
        const msg = JSON.parse(buf.slice(m[0].length, m[0].length + Number(m[1])));
        buf = buf.slice(m[0].length + Number(m[1]) + 1);
        if (msg.response) { clearTimeout(timer); sock.end(); resolve(msg); }
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function agentState(state) {
  return new Promise((resolve, reject) => {
    const [host, port] = GATEWAY.split(':');
    const body = JSON.stringify({ state });
    const req = http.request({ host, port, method: 'PUT', path: '/api/agents/1002/state',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' } }, (res) => {
      res.resume(); res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
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
      // Inbound audio over time, with the ICE state it was read in.
      window.__samples = [];
      setInterval(async () => {
        const pc = window.__pcs[0];
        if (!pc) return;
        let energy = 0, level = 0;
        (await pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'audio') { energy = r.totalAudioEnergy || 0; level = r.audioLevel || 0; } });
        window.__samples.push({ ice: pc.iceConnectionState, energy, level });
      }, 100);
      // The analyser on what the browser plays (the widget's remote track).
      window.__peak = () => {
        const pc = window.__pcs[0];
        if (!window.__an) {
          const track = pc.getReceivers().map(r => r.track).find(t => t && t.kind === 'audio');
          window.__ctx = new AudioContext();
          window.__an = window.__ctx.createAnalyser(); window.__an.fftSize = 8192; window.__an.smoothingTimeConstant = 0;
          window.__ctx.createMediaStreamSource(new MediaStream([track])).connect(window.__an);
          return null;
        }
        const bins = new Float32Array(window.__an.frequencyBinCount); window.__an.getFloatFrequencyData(bins);
        let best = 1; for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
        return { hz: Math.round(best * window.__ctx.sampleRate / window.__an.fftSize), db: bins[best] };
      };
    });
    await page.goto(`http://${GATEWAY}/`);
    await page.waitForFunction(() => window.ClickToCall && window.ClickToCall.__loaded);
    await page.evaluate(() => {
      ClickToCall.setContext({ page: '/checkout', cart: '3 items' });
      window.__states = []; ClickToCall.on('state', s => window.__states.push(s));
    });
    const shot = async (name) => {
      const f = path.join(OUT, `widget-${name}.png`);
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
    const statusText = () => page.evaluate(() => document.querySelector('#clicktocall-widget').shadowRoot.querySelector('.status').textContent);
    const peak = async () => { await page.evaluate(() => window.__peak()); await sleep(300); return page.evaluate(() => window.__peak()); };

    report.away = await agentState('away');
    await page.click('#clicktocall-widget >> text=Call us');
    await page.click('#clicktocall-widget >> text=Call now in the browser');
    await shot('connecting');
    report.ivr = !!await waitState('ivr', 5000);
    await sleep(2500);
    await shot('ivr');
    const samples = await page.evaluate(() => window.__samples);
    const before = samples.filter(s => s.ice !== 'connected' && s.ice !== 'completed');
    const after = samples.filter(s => s.ice === 'connected' || s.ice === 'completed');
    report.energyBeforeConnect = Math.max(0, ...before.map(s => s.energy));
    report.energyAfterConnect = after.length ? after[after.length - 1].energy : 0;
    report.promptLevel = Math.max(0, ...after.map(s => s.level));

    await page.click('#clicktocall-widget .keys >> text="2"');
    await waitState('queued', 5000);
    await sleep(500);
    // The latest queued update (the first may come before the position is known).
    report.queued = (await page.evaluate(() => window.__states)).filter(s => s.state === 'queued').pop();
    await shot('queued');
    report.queuedText = await statusText();

    let n = await count();
    report.available = await agentState('available');
    report.ringing = !!await waitState('ringing', 5000, n);
    await sleep(800);
    await shot('ringing');
    report.accept = (await baresip('accept')).ok;
    report.connected = !!await waitState('connected', 5000, n);
    await sleep(2500);
    report.peakConnected = await peak();
    await shot('connected');

    n = await count();
    report.hold = (await baresip('hold')).ok;
    report.onHold = !!await waitState('on_hold', 5000, n);
    await sleep(1500);
    report.peakOnHold = await peak();
    await shot('on_hold');
    n = await count();
    report.resume = (await baresip('resume')).ok;
    report.resumed = !!await waitState('connected', 5000, n);
    await sleep(1500);

    n = await count();
    report.agentHangup = (await baresip('hangup')).ok;
    const ended = await waitState('ended', 5000, n);
    report.endReason = ended && ended.reason;
    await sleep(300);
    report.endText = await statusText();
    await shot('ended');
    report.states = (await page.evaluate(() => window.__states)).map(s => s.state);
  } catch (e) {
    report.error = String(e && e.stack || e);
  }
  await close();
  const near = (p, hz) => p && Math.abs(p.hz - hz) <= 15;
  report.pass = !report.error && report.away === 200 && report.available === 200 && report.ivr
    && report.energyBeforeConnect === 0 && report.energyAfterConnect > 0 && report.promptLevel > 0.01
    && !!report.queued && report.queued.position === 1 && report.ringing && report.connected
    && near(report.peakConnected, 1000) && report.onHold && !near(report.peakOnHold, 1000) && report.resumed
    && report.endReason === 'agent_hangup' && /The agent ended the call/.test(report.endText || '');
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
