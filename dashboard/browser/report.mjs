// The report behind Tether, on the dashboard of `tether serve`: run by
// TestReportAgainstServe in cmd/tether while one python-websockets process
// holds three connections to /echo whose pings come every 2 s, 0.5 s and
// 0.5 s.
//
//   node report.mjs URL SCREENSHOT
//
// It drives Debian's chromium through playwright-core and checks that the
// page shows each lane's peer cadence beside its own (label and table) and
// the interval-mismatch finding in the header, naming the three lanes; then
// it takes the screenshot. It prints "PASS" and exits 0, or exits 1 with
// the reason.
import { launch } from './launch.mjs';

const [url, shot] = process.argv.slice(2);
if (!url || !shot) {
  console.error('usage: node report.mjs URL SCREENSHOT');
  process.exit(2);
}

async function waitUntil(what, fn, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn().catch(() => null);
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const browser = await launch();
let code = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  await page.goto(url);
  await page.waitForSelector('#status.live', { timeout: 10000 });

  // Three lanes, each labelled with both cadences: peers at 0.5 s, 0.5 s, 2 s.
  const lanes = await waitUntil('three lanes with their peers\' cadences', async () => {
    const ls = await page.$$eval('#timeline g.lane[data-id]:not(.ghost)', (gs) => gs.map((g) => ({
      id: g.dataset.id,
      peer: g.dataset.peerInterval === '' ? null : +g.dataset.peerInterval,
      label: g.querySelector('.label-cadence').textContent,
      marks: g.querySelectorAll('.mark.peer').length + g.querySelectorAll('.peer-band').length,
    })));
    if (ls.length !== 3 || ls.some((l) => l.peer == null || l.marks === 0)) return null;
    ls.sort((a, b) => a.peer - b.peer);
    const near = (v, want) => Math.abs(v - want) < want * 0.2;
    return near(ls[0].peer, 0.5) && near(ls[1].peer, 0.5) && near(ls[2].peer, 2) ? ls : null;
  });
  // Labels and cells give both cadences ("own 20 s · peer 0.5 s"); the
  // peers' are measured, so 2 s may read 2.01 s.
  const near = (v, want) => Math.abs(v - want) < want * 0.2;
  const want = [0.5, 0.5, 2];
  lanes.forEach((l, i) => {
    const m = /^own 20 s · peer ([\d.]+) s$/.exec(l.label);
    if (!m || !near(+m[1], want[i])) throw new Error(`lane ${l.id}: label "${l.label}", want own 20 s and peer about ${want[i]} s`);
  });
  const cells = await page.$$eval('#conns tbody tr[data-id] [data-field=peer]', (cs) => cs.map((c) => c.textContent));
  const secs = cells.map((c) => parseFloat(c)).sort((a, b) => a - b);
  if (secs.length !== 3 || !secs.every((v, i) => near(v, want[i]))) throw new Error(`table's peer cells ${cells}`);

  const finding = await waitUntil('the interval-mismatch finding', () => page.$eval(
    '#findings li.finding.warning[data-kind="interval-mismatch"]', (li) => ({ text: li.textContent, conns: li.dataset.conns.split(' ') })));
  if (!/3 connections from 127\.0\.0\.1 \(Python\/[\d.]+ websockets\/[\d.]+\) to \/echo/.test(finding.text)) {
    throw new Error(`finding "${finding.text}"`);
  }
  for (const l of lanes) if (!finding.conns.includes(l.id)) throw new Error(`the finding does not name ${l.id}`);

  // For the picture: a one-minute window, and time for the lanes to fill
  // (REPORT_HOLD_MS, for the README's screenshot; a moment otherwise).
  await page.selectOption('#window', '60').catch(() => {});
  await new Promise((r) => setTimeout(r, +(process.env.REPORT_HOLD_MS || 1500)));
  await page.screenshot({ path: shot, fullPage: false });
  if (problems.length) throw new Error(problems.join('; '));
  console.log('PASS');
} catch (e) {
  console.error('FAIL:', e.message);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
