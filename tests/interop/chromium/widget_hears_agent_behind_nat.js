#!/usr/bin/env node
// Issue 14, acceptance 0 (latching), with real Chromium and the real widget: the agent (SIPp) is
// behind NAT, its SDP names 127.0.0.4 while its RTP comes from 127.0.0.1. The customer must hear
// the agent's 1000 Hz from its first packet: the audio the browser plays is cut into 20 ms frames
// and, from the first frame of the agent's tone, no gap over 100 ms may follow. A stranger
// (STRANGER=cmd, started once the agent answered) sends a 3000 Hz tone to the same gateway port:
// the browser must never hear it. Prints a JSON report; exit 0 = pass.
'use strict';
const { spawn } = require('child_process');
const { launch } = require('./launch');
const { waitFor, sleep, openWidget } = require('./widget_page');

const WAV = process.argv[2];

(async () => {
  const { page, close } = await launch(WAV, { viewport: { width: 1000, height: 700 } });
  const report = {};
  try {
    const w = await openWidget(page, '127.0.0.1:8080');
    // Every 20 ms of what the browser plays: the 1000 Hz and 3000 Hz power and the level.
    await page.evaluate(() => {
      window.__frames = []; window.__connectedAt = null;
      ClickToCall.on('state', s => { if (s.state === 'connected' && !window.__connectedAt) window.__connectedAt = performance.now(); });
      window.record = () => {
        const track = ClickToCall.debug().pc.getReceivers()[0].track;
        const ctx = new AudioContext({ sampleRate: 48000 });
        const src = ctx.createMediaStreamSource(new MediaStream([track]));
        const proc = ctx.createScriptProcessor(1024, 1, 1);
        let buf = [];
        const goertzel = (x, hz) => {
          const k = 2 * Math.cos(2 * Math.PI * hz / 48000); let s1 = 0, s2 = 0;
          for (const v of x) { const s0 = v + k * s1 - s2; s2 = s1; s1 = s0; }
          return (s1 * s1 + s2 * s2 - k * s1 * s2) / (x.length * x.length);
        };
        proc.onaudioprocess = (e) => {
          buf.push(...e.inputBuffer.getChannelData(0));
          while (buf.length >= 960) {
            const x = buf.slice(0, 960); buf = buf.slice(960);
            const rms = Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);
            window.__frames.push({ t: performance.now(), rms, p1000: goertzel(x, 1000), p3000: goertzel(x, 3000) });
          }
        };
        src.connect(proc); proc.connect(ctx.destination);
      };
    });
    await page.click('#clicktocall-widget >> text=Call us');
    await page.click('#clicktocall-widget >> text=Call now in the browser');
    await waitFor(() => page.evaluate(() =>
      document.querySelector('#clicktocall-widget').shadowRoot.querySelectorAll('.menu button').length >= 2), 6000);
    await page.evaluate(() => record());
    await sleep(1500);
    await page.click('#clicktocall-widget .menu >> text=Support');
    report.connected = await waitFor(() => page.evaluate(() => !!window.__connectedAt), 10000) !== null;
    const stranger = process.env.STRANGER ? spawn('sh', ['-c', process.env.STRANGER], { stdio: 'ignore' }) : null;
    await sleep(4000);
    if (stranger) stranger.kill();
    Object.assign(report, await page.evaluate(() => {
      const tone = (f, p) => f.rms > 0.01 && f[p] > 0.25 * f.rms * f.rms;
      const after = __frames.filter(f => f.t >= __connectedAt);
      const first = after.findIndex(f => tone(f, 'p1000'));
      const out = { frames: after.length, firstToneAfterConnectMs: first < 0 ? null : Math.round(after[first].t - __connectedAt) };
      let gap = 0, longest = 0;
      for (const f of after.slice(first, first + 150)) { gap = tone(f, 'p1000') ? 0 : gap + 1; longest = Math.max(longest, gap); }
      out.longestGapMs = first < 0 ? null : longest * 20;
      out.toneFrames = after.filter(f => tone(f, 'p1000')).length;
      out.strangerFrames = __frames.filter(f => tone(f, 'p3000')).length;
      return out;
    }));
    await page.click('#clicktocall-widget >> text=Hang up');
    report.ended = await waitFor(async () => (await w.host()).state === 'ended', 4000) !== null;
  } catch (e) {
    report.error = String(e);
  }
  await close();
  report.pass = !report.error && report.connected && report.firstToneAfterConnectMs !== null
    && report.firstToneAfterConnectMs <= 1000 && report.longestGapMs <= 100 && report.toneFrames >= 100
    && report.strangerFrames === 0 && report.ended;
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
