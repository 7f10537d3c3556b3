// `tether serve --tls-cert` in Chromium: run by TestServeTLS in cmd/tether.
//
//   node tls.mjs HTTPS_URL
//
// The certificate is self-signed (tether cert), so the context ignores
// HTTPS errors. It checks that the dashboard loads over https and its feed
// goes live over wss, and that a page script's wss:// echo comes back. It
// prints "PASS" and exits 0, or exits 1 with the reason.
import { launch } from './launch.mjs';

const [url] = process.argv.slice(2);
if (!url) {
  console.error('usage: node tls.mjs HTTPS_URL');
  process.exit(2);
}

const browser = await launch();
let code = 0;
try {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  await page.goto(url);
  await page.waitForSelector('#status.live', { timeout: 10000 });
  const echoed = await page.evaluate(() => new Promise((resolve, reject) => {
    const ws = new WebSocket(new URL('/echo', location.href.replace(/^https/, 'wss')));
    ws.onopen = () => ws.send('over wss');
    ws.onmessage = (ev) => { resolve(ev.data); ws.close(1000); };
    ws.onerror = () => reject(new Error('wss echo failed'));
    setTimeout(() => reject(new Error('wss echo timed out')), 5000);
  }));
  if (echoed !== 'over wss') throw new Error(`echo "${echoed}"`);
  console.log('PASS');
} catch (e) {
  console.error('FAIL:', e.message);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
