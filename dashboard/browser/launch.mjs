// launch starts Debian's chromium ($CHROMIUM, or /usr/bin/chromium) headless
// through playwright-core, with the flags this machine's closed network
// needs (no background networking, no component updates, no sync).
import { chromium } from 'playwright-core';

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}
