// Shared by the interop scripts: headless Debian Chromium with a fake microphone playing WAV.
// `fakeUi: false` leaves the microphone permission prompt in place, which headless Chromium denies.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

async function launch(wav, { fakeUi = true, viewport } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'c2c-chromium-'));
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${path.resolve(wav)}`,
    '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns'];
  if (fakeUi) args.push('--use-fake-ui-for-media-stream');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    ignoreDefaultArgs: ['--mute-audio'],
    viewport,
    args,
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('pageerror', e => console.error('PAGEERROR', String(e)));
  // Closes the browser and removes its profile.
  const close = async () => {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, close };
}

module.exports = { launch };
