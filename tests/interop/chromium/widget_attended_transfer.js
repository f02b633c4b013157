#!/usr/bin/env node
// The customer of an attended transfer (issue 16): a widget call to "Support" reaches the desk
// phone 1001 (1000 Hz), which holds, consults 1002 (700 Hz) and transfers with REFER/Replaces.
// The widget must go on_hold, then transferring, then connected, and the customer must end up
// hearing 1002's 700 Hz; then the page hangs up. Prints a JSON report; exit 0 = pass.
'use strict';
const { launch } = require('./launch');
const { waitFor, sleep, openWidget } = require('./widget_page');

const WAV = process.argv[2];
const near = (p, hz) => !!p && Math.abs(p.hz - hz) <= 25 && p.db > -70;

(async () => {
  const { page, close } = await launch(WAV, { viewport: { width: 1000, height: 700 } });
  const report = {};
  try {
    const w = await openWidget(page, '127.0.0.1:8080');
    report.connected = await w.callSupport(10000) !== null;
    await page.evaluate(() => listen());
    const peakNear = (hz) => async () => near(await page.evaluate(() => peak()), hz);
    report.heardAgentMs = await waitFor(peakNear(1000), 5000);
    report.transferringMs = await waitFor(async () => (await w.states()).includes('transferring'), 20000);
    report.heardTargetMs = await waitFor(peakNear(700), 8000);
    await sleep(1000);
    report.stillTarget = near(await page.evaluate(() => peak()), 700);
    report.states = await w.states();
    await page.click('#clicktocall-widget >> text=Hang up');
    report.ended = await waitFor(async () => (await w.host()).state === 'ended', 4000) !== null;
  } catch (e) {
    report.error = String(e);
  }
  await close();
  const s = report.states || [];
  const order = s.indexOf('on_hold') >= 0 && s.indexOf('on_hold') < s.lastIndexOf('transferring')
    && s.lastIndexOf('transferring') < s.lastIndexOf('connected');
  report.pass = !report.error && report.connected && report.heardAgentMs !== null
    && report.transferringMs !== null && report.heardTargetMs !== null && report.stillTarget
    && order && report.ended;
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.pass ? 0 : 1);
})();
