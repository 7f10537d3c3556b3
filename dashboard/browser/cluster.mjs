// Browser test of the dashboard in cluster mode, run by TestBrowserCluster
// in dashboard/, which serves node "n1" with one connection of its own and
// a Presence of two other nodes' connections.
//
//   node cluster.mjs URL SCREENSHOT_DIR LOCAL_ID REMOTE_ID...
//
// The table must show a node column and every connection, this node's
// first; the timeline a lane for the local connection only; the summary
// the number of nodes. It prints "PASS" and exits 0, or exits 1.
import { launch } from './launch.mjs';
import { join } from 'node:path';

const [url, shots, localID, ...remoteIDs] = process.argv.slice(2);
const log = (...a) => console.error('[browser]', ...a);
const fail = (msg) => { throw new Error(msg); };

async function waitUntil(what, fn, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const browser = await launch();
let code = 0;
try {
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 800 } })).newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
  await page.goto(url);
  await page.waitForSelector('#status.live', { timeout: 10000 });

  const want = [localID, ...remoteIDs];
  const rows = await waitUntil('every connection of the cluster in the table', async () => {
    const rs = await page.$$eval('#conns tbody tr[data-id]', (trs) => trs.map((r) => ({
      id: r.dataset.id, remote: r.classList.contains('remote'), node: r.querySelector('td.node')?.textContent,
    })));
    return rs.length === want.length ? rs : null;
  });
  log('rows', JSON.stringify(rows));
  if (rows.map((r) => r.id).join() !== want.join()) fail(`rows ${rows.map((r) => r.id)}, want ${want}`);
  if (rows[0].remote || rows[0].node !== 'n1') fail(`local row ${JSON.stringify(rows[0])}`);
  if (rows.slice(1).some((r) => !r.remote || !/^n[23]$/.test(r.node))) fail(`remote rows ${JSON.stringify(rows.slice(1))}`);
  if (await page.$eval('#col-node', (th) => th.hidden)) fail('node column hidden');
  const lanes = await page.$$eval('#timeline g.lane[data-id]', (gs) => gs.map((g) => g.dataset.id));
  if (lanes.join() !== localID) fail(`lanes ${lanes}, want only ${localID}`);
  const summary = await page.textContent('#summary');
  if (!/on 3 nodes/.test(summary)) fail(`summary "${summary}"`);
  await page.screenshot({ path: join(shots, 'cluster.png'), fullPage: true });
  if (problems.length) fail(problems.join('\n'));
  console.log('PASS');
} catch (err) {
  console.error('[browser] FAIL:', err.message);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
