// Browser test of the Tether dashboard, run by TestBrowser in dashboard/
// (go test ./dashboard/ -run TestBrowser), which starts a server with three
// connections: two pinging every second, one every 300 ms.
//
//   node test.mjs URL SCREENSHOT_DIR
//
// It drives Debian's chromium through playwright-core and checks that the
// table shows three rows and the timeline three lanes with the expected
// cadence. Then it prints "READY" and reads a connection ID on stdin: the Go
// test has killed that connection, and its row and lane must go within two
// seconds. It prints "SILENT" and reads the ID of a connection whose peer
// never answers pings: its lane must show the missed pong in red and the
// timeout. Last, a second page whose feed is refused must fall back to
// polling. It prints "PASS" and exits 0, or exits 1 with the reason.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const [url, shots] = process.argv.slice(2);
if (!url || !shots) {
  console.error('usage: node test.mjs URL SCREENSHOT_DIR');
  process.exit(2);
}
const log = (...a) => console.error('[browser]', ...a);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));

function fail(msg) {
  throw new Error(msg);
}

async function waitUntil(what, fn, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

// lanes reads, per timeline lane, its ID, interval and the times of its marks.
const readLanes = (page) => page.$$eval('#timeline g.lane[data-id]', (gs) => gs.map((g) => ({
  id: g.dataset.id,
  interval: +g.dataset.interval,
  pings: [...g.querySelectorAll('.mark.ping')].map((m) => +m.dataset.t),
  pongs: [...g.querySelectorAll('.mark.pong')].map((m) => +m.dataset.t),
  missed: g.querySelectorAll('.mark.ping.missed').length,
})));
const readRows = (page) => page.$$eval('#conns tbody tr[data-id]', (rs) => rs.map((r) => r.dataset.id));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let code = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 980 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });

  log('opening', url);
  await page.goto(url);
  await page.waitForSelector('#status.live', { timeout: 10000 });

  // Three rows and three lanes, each lane with enough pings to show its cadence.
  const lanes = await waitUntil('three lanes with 5 pings each', async () => {
    const ls = await readLanes(page);
    return ls.length === 3 && ls.every((l) => l.pings.length >= 5) ? ls : null;
  });
  const rows = await readRows(page);
  if (rows.length !== 3) fail(`table has ${rows.length} rows, want 3`);
  for (const l of lanes) if (!rows.includes(l.id)) fail(`lane ${l.id} has no table row`);

  const cadence = lanes.map((l) => {
    const gaps = l.pings.slice(1).map((t, i) => t - l.pings[i]);
    return { id: l.id, interval: l.interval, median: median(gaps), pings: l.pings.length, pongs: l.pongs.length, missed: l.missed };
  });
  log('cadence', JSON.stringify(cadence));
  const slow = cadence.filter((c) => Math.abs(c.median - 1000) < 150);
  const fast = cadence.filter((c) => Math.abs(c.median - 300) < 60);
  if (slow.length !== 2 || fast.length !== 1) fail('cadence is not two lanes at 1 s and one at 300 ms: ' + JSON.stringify(cadence));
  for (const c of cadence) {
    if (Math.abs(c.median / 1000 - c.interval) > c.interval * 0.2) fail(`lane ${c.id}: pings every ${c.median} ms, interval ${c.interval} s`);
    if (c.missed) fail(`lane ${c.id}: ${c.missed} pings marked missed on loopback`);
    if (c.pongs < c.pings - 1) fail(`lane ${c.id}: ${c.pings} pings but ${c.pongs} pongs`);
  }
  const summary = await page.textContent('#summary');
  if (!/3 live connections/.test(summary) || !/2 different ping intervals/.test(summary)) fail(`summary "${summary}"`);
  await page.screenshot({ path: join(shots, 'dashboard.png'), fullPage: true });
  log('screenshot', join(shots, 'dashboard.png'));

  // The Go test kills one connection; its row and lane must go quickly.
  console.log('READY');
  const killed = (await nextLine()).trim();
  const t0 = Date.now();
  await waitUntil(`connection ${killed} to leave the page`, async () => {
    const [ls, rs] = [await readLanes(page), await readRows(page)];
    return !rs.includes(killed) && !ls.some((l) => l.id === killed) && rs.length === 2 && ls.length === 2;
  }, 5000);
  const gone = Date.now() - t0;
  log(`killed connection left the page after ${gone} ms`);
  if (gone > 2000) fail(`killed connection took ${gone} ms to disappear, want under 2 s`);
  await page.screenshot({ path: join(shots, 'after-kill.png'), fullPage: true });

  // A connection whose peer never answers pings: its lane shows the
  // unanswered ping in red and the timeout, and stays a while after the
  // connection has closed, while its row goes.
  console.log('SILENT');
  const silent = (await nextLine()).trim();
  await waitUntil(`a red lane for ${silent}`, async () => page.$eval(`#timeline g.lane.ghost[data-id="${silent}"]`,
    (g) => g.querySelectorAll('.mark.ping.missed').length > 0 && g.querySelectorAll('.mark.timeout').length === 1).catch(() => false), 8000);
  await waitUntil('the timed-out row to go', async () => !(await readRows(page)).includes(silent));
  await page.screenshot({ path: join(shots, 'timeout.png'), fullPage: true });

  // With the feed refused, a page falls back to polling and still shows the table.
  const polled = await context.newPage();
  await polled.routeWebSocket(/\/api\/feed/, (ws) => ws.close({ code: 1011, reason: 'test refuses the feed' }));
  await polled.goto(url);
  await polled.waitForSelector('#status.polling', { timeout: 10000 });
  await waitUntil('two rows while polling', async () => (await readRows(polled)).length === 2);
  await waitUntil('lanes with marks while polling', async () => {
    const ls = await readLanes(polled);
    return ls.length === 2 && ls.every((l) => l.pings.length >= 2);
  });
  await polled.screenshot({ path: join(shots, 'polling.png'), fullPage: true });

  if (problems.length) fail(problems.join('\n'));
  console.log('PASS');
} catch (err) {
  console.error('[browser] FAIL:', err.message);
  code = 1;
} finally {
  await browser.close();
  lines.close();
}
process.exit(code);
