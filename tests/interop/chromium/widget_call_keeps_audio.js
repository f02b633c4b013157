#!/usr/bin/env node
// A widget call to "Support" (a SIPp agent that echoes RTP) that must keep its audio for SECS
// seconds whatever else goes wrong (the recording's disk filling up, in the test that uses it):
// the browser's own 440 Hz comes back at the start and at the end, packets keep arriving, then the
// page hangs up. Prints a JSON report; exit 0 = pass.
'use strict';
const { launch } = require('./launch');
const { waitFor, sleep, near440, openWidget } = require('./widget_page');

const WAV = process.argv[2];
const SECS = Number(process.env.SECS || 6);

(async () => {
  const { page, close } = await launch(WAV, { viewport: { width: 1000, height: 700 } });
  const report = {};
  try {
    const w = await openWidget(page, '127.0.0.1:8080');
    report.connected = await w.callSupport(10000) !== null;
    await page.evaluate(() => listen());
    report.echoFirstMs = await waitFor(async () => near440(await page.evaluate(() => peak())), 5000);
    const p0 = await page.evaluate(() => inbound());
    await sleep(SECS * 1000);
    report.packets = (await page.evaluate(() => inbound())) - p0;
    report.stillConnected = (await w.host()).state === 'connected';
    await page.click('#clicktocall-widget >> text=Hang up');
    report.ended = await waitFor(async () => (await w.host()).state === 'ended', 4000) !== null;
  } catch (e) {
    report.error = String(e);
  }
  await close();
  report.pass = !report.error && report.connected && report.echoFirstMs !== null
    && report.packets >= SECS * 45 && report.stillConnected && report.ended;
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
