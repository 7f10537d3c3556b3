// Browser test of the Tether dashboard, run by TestBrowser in dashboard/
// (go test ./dashboard/ -run TestBrowser).
//
//   node test.mjs URL SCREENSHOT_DIR FAILED_ID SERVER_ID=PEER_MS...
//
// FAILED_ID is a connection that failed a keepalive ping before the page
// opened; each SERVER_ID=PEER_MS is a live server connection (own pings
// every second) whose peer pings every PEER_MS. It drives Debian's chromium
// through playwright-core and checks, in order:
//   1. the page, opened after the timeout, shows the failed connection: a
//      red lane with its timeout and a closed row with code 1011;
//   2. one lane and one row per live connection, each lane with both ends:
//      its own pings and pongs, its peer's pings, and a label and a table
//      cell with both cadences; the header's interval-mismatch finding
//      names the three, and pointing at it highlights their lanes;
//   3. "READY": it reads the ID of a connection the Go test killed, whose
//      row and lane must go, and which must show among the closed;
//   4. "SILENT": it reads the ID of a connection whose peer never answers
//      pings: its lane must turn red while the page is open;
//   5. "STALL": it reads the ID of a connection whose application stopped
//      reading: "not reading" in the table, an amber span in its lane;
//   6. a second page, whose feed is refused, falls back to polling and
//      still shows the table, the lanes and the closed connections.
// It prints "PASS" and exits 0, or exits 1 with the reason.
import { launch } from './launch.mjs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const [url, shots, failedID, ...pairs] = process.argv.slice(2);
if (!url || !shots || !failedID || pairs.length !== 3) {
  console.error('usage: node test.mjs URL SCREENSHOT_DIR FAILED_ID SERVER_ID=PEER_MS (three)');
  process.exit(2);
}
const peerMs = new Map(pairs.map((p) => { const [id, v] = p.split('='); return [id, +v]; }));
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
const gaps = (ts) => ts.slice(1).map((t, i) => t - ts[i]);
// The page's cadence format, for the labels: "0.6 s", "0.25 s", "1 s".
const cadence = (s) => (s == null ? '–' : s < 0.1 ? Math.round(s * 1000) + ' ms' : +s.toFixed(s < 10 ? 2 : 1) + ' s');

// readLanes reads, per timeline lane, its attributes, label and marks.
const readLanes = (page) => page.$$eval('#timeline g.lane[data-id]', (gs) => gs.map((g) => ({
  id: g.dataset.id,
  ghost: g.classList.contains('ghost'),
  hl: g.classList.contains('hl'),
  dim: g.classList.contains('dim'),
  code: g.dataset.code,
  interval: +g.dataset.interval,
  peerInterval: g.dataset.peerInterval === '' ? null : +g.dataset.peerInterval,
  cadence: g.querySelector('.label-cadence').textContent,
  sub: g.querySelector('.label-sub').textContent,
  pings: [...g.querySelectorAll('.mark.ping')].map((m) => +m.dataset.t),
  pongs: [...g.querySelectorAll('.mark.pong')].map((m) => +m.dataset.t),
  peer: [...g.querySelectorAll('.mark.peer')].map((m) => +m.dataset.t),
  missed: g.querySelectorAll('.mark.ping.missed').length,
  timeouts: g.querySelectorAll('.mark.timeout').length,
  stalls: g.querySelectorAll('.mark.stall').length,
})));
const liveLanes = async (page) => (await readLanes(page)).filter((l) => !l.ghost);
const readRows = (page) => page.$$eval('#conns tbody tr[data-id]', (rs) => rs.map((r) => ({
  id: r.dataset.id,
  state: r.querySelector('[data-field=state]').textContent,
  stateWarn: r.querySelector('[data-field=state]').classList.contains('warn'),
  peer: r.querySelector('[data-field=peer]').textContent,
})));
const readClosed = (page) => page.$$eval('#closed tbody tr[data-id]', (rs) => rs.map((r) => ({
  id: r.dataset.id, code: r.querySelector('[data-field=code]').textContent, failed: r.classList.contains('failed'),
})));

// failedShown checks a timed-out connection: a red lane with its code and
// its timeout, and a red closed row with 1011.
async function failedShown(page, id) {
  const lane = (await readLanes(page)).find((l) => l.id === id);
  const row = (await readClosed(page)).find((r) => r.id === id);
  return lane && lane.ghost && lane.code === '1011' && lane.timeouts === 1 && lane.missed > 0 &&
    /closed 1011 keepalive ping timeout/.test(lane.sub) && row && row.code === '1011' && row.failed;
}

const browser = await launch();
let code = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1100 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });

  log('opening', url);
  await page.goto(url);
  await page.waitForSelector('#status.live', { timeout: 10000 });

  // 1. Opened after the timeout, the page shows it, from the hello alone.
  await waitUntil(`the connection that timed out before the page opened (${failedID})`, () => failedShown(page, failedID), 5000);
  const failedLane = (await readLanes(page)).find((l) => l.id === failedID);
  if (failedLane.cadence !== 'own 0.3 s · peer –') fail(`failed lane's cadence "${failedLane.cadence}", want "own 0.3 s · peer –"`);

  // 2. Both ends of each live connection.
  const lanes = await waitUntil('three live lanes with 5 own pings and 3 of the peer\'s each', async () => {
    const ls = await liveLanes(page);
    return ls.length === 3 && ls.every((l) => l.pings.length >= 5 && l.peer.length >= 3 && l.peerInterval != null) ? ls : null;
  });
  const rows = await readRows(page);
  if (rows.length !== 3) fail(`table has ${rows.length} rows, want 3`);
  for (const l of lanes) {
    const want = peerMs.get(l.id);
    if (want == null) fail(`lane ${l.id} is not one of the server connections`);
    const own = median(gaps(l.pings));
    const peer = median(gaps(l.peer));
    log(`lane ${l.id}: own every ${own} ms (${l.interval} s), peer every ${peer} ms (${l.peerInterval} s, client set ${want} ms)`);
    if (Math.abs(own / 1000 - l.interval) > l.interval * 0.2) fail(`lane ${l.id}: pings every ${own} ms, interval ${l.interval} s`);
    if (Math.abs(peer / 1000 - l.peerInterval) > l.peerInterval * 0.3) fail(`lane ${l.id}: peer marks every ${peer} ms, peer interval ${l.peerInterval} s`);
    if (l.missed) fail(`lane ${l.id}: ${l.missed} pings marked missed on loopback`);
    if (l.pongs.length < l.pings.length - 1) fail(`lane ${l.id}: ${l.pings.length} pings but ${l.pongs.length} pongs`);
    const label = `own ${cadence(l.interval)} · peer ${cadence(l.peerInterval)}`;
    if (l.cadence !== label) fail(`lane ${l.id}: label "${l.cadence}", want "${label}"`);
    const row = rows.find((r) => r.id === l.id);
    if (!row || row.peer !== cadence(l.peerInterval)) fail(`row ${l.id}: peer cell "${row && row.peer}", want "${cadence(l.peerInterval)}"`);
  }
  // The lane whose client pings slowest shows the slowest peer cadence.
  const bySetting = [...lanes].sort((a, b) => peerMs.get(a.id) - peerMs.get(b.id));
  if (!(bySetting[2].peerInterval > 1.5 * bySetting[1].peerInterval && bySetting[2].peerInterval > 1.5 * bySetting[0].peerInterval)) {
    fail('peer cadences do not follow the clients\': ' + JSON.stringify(bySetting.map((l) => [peerMs.get(l.id), l.peerInterval])));
  }
  const summary = await page.textContent('#summary');
  if (!/3 live connections/.test(summary) || !/peers ping at 2 different intervals/.test(summary)) fail(`summary "${summary}"`);

  const finding = await waitUntil('the interval-mismatch finding', () => page.$eval('#findings li.finding.warning[data-kind="interval-mismatch"]',
    (li) => ({ text: li.textContent, conns: li.dataset.conns.split(' ') })).catch(() => null));
  if (!/3 connections from 127\.0\.0\.1 \(tether\) to \/echo/.test(finding.text)) fail(`finding "${finding.text}"`);
  for (const l of lanes) if (!finding.conns.includes(l.id)) fail(`finding does not name ${l.id}: ${finding.conns}`);
  await page.hover('#findings li.finding[data-kind="interval-mismatch"]');
  await waitUntil('the finding\'s lanes highlighted', async () => {
    const ls = await readLanes(page);
    return ls.filter((l) => l.hl).length === 3 && ls.find((l) => l.id === failedID).dim;
  }, 3000);
  await page.mouse.move(5, 1000);
  await waitUntil('the highlight to go', async () => (await readLanes(page)).every((l) => !l.hl && !l.dim), 3000);
  await page.screenshot({ path: join(shots, 'dashboard.png'), fullPage: true });
  log('screenshot', join(shots, 'dashboard.png'));

  // 3. The Go test kills one connection: it leaves the live ones and shows
  // among the closed.
  console.log('READY');
  const killed = (await nextLine()).trim();
  await waitUntil(`connection ${killed} to leave the live ones`, async () => {
    const [ls, rs, cs] = [await liveLanes(page), await readRows(page), await readClosed(page)];
    return !rs.some((r) => r.id === killed) && !ls.some((l) => l.id === killed) && rs.length === 2 && ls.length === 2 &&
      cs.some((c) => c.id === killed && !c.failed);
  }, 5000);
  if ((await readLanes(page)).some((l) => l.id === killed)) fail('a closed connection that did not time out kept its lane');
  await page.screenshot({ path: join(shots, 'after-kill.png'), fullPage: true });

  // 4. A timeout while the page is open.
  console.log('SILENT');
  const silent = (await nextLine()).trim();
  await waitUntil(`a red lane for ${silent}`, () => failedShown(page, silent), 8000);
  await waitUntil('the timed-out row to go', async () => !(await readRows(page)).some((r) => r.id === silent));
  await page.screenshot({ path: join(shots, 'timeout.png'), fullPage: true });

  // 5. An application that stopped reading.
  console.log('STALL');
  const stalled = (await nextLine()).trim();
  await waitUntil(`${stalled} not reading, in the table and its lane`, async () => {
    const row = (await readRows(page)).find((r) => r.id === stalled);
    const lane = (await readLanes(page)).find((l) => l.id === stalled);
    return row && row.state === 'not reading' && row.stateWarn && lane && lane.stalls > 0;
  });
  await waitUntil('the not-reading finding', () => page.$('#findings li.finding.warning[data-kind="not-reading"]'));
  await page.screenshot({ path: join(shots, 'stall.png'), fullPage: true });

  // 6. With the feed refused, a page falls back to polling and still shows
  // the table, the lanes and the closed connections.
  const polled = await context.newPage();
  await polled.routeWebSocket(/\/api\/feed/, (ws) => ws.close({ code: 1011, reason: 'test refuses the feed' }));
  await polled.goto(url);
  await polled.waitForSelector('#status.polling', { timeout: 10000 });
  await waitUntil('three rows while polling', async () => (await readRows(polled)).length === 3);
  await waitUntil('lanes with marks while polling', async () => {
    const ls = await liveLanes(polled);
    return ls.length === 3 && ls.filter((l) => l.pings.length >= 2).length >= 2;
  });
  await waitUntil('both timeouts while polling', async () => (await failedShown(polled, failedID)) && failedShown(polled, silent));
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
