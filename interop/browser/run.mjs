// Drives echo.html in headless chromium for TestBrowserCompress
// (go test ./interop/ -run TestBrowserCompress):
//
//   node run.mjs BASE_URL VARIANT...
//
// For each variant it opens BASE_URL/?variant=VARIANT in a page of its own (all at
// once), waits for the page's window.deflateResult and prints it as one line,
// "RESULT {json}", with the page's errors and console errors added under
// pageErrors. Then it prints "DONE" and exits 0, or exits 1 with the reason on
// stderr.
//
// Debian's chromium ($CHROMIUM or /usr/bin/chromium) runs through playwright-core,
// installed in dashboard/browser/node_modules (make deps), or in $PLAYWRIGHT_BASE;
// playwright gives it a fresh, empty profile (--user-data-dir) of its own.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [base, ...variants] = process.argv.slice(2);
if (!base || variants.length === 0) {
  console.error('usage: node run.mjs BASE_URL VARIANT...');
  process.exit(2);
}
const pwBase = process.env.PLAYWRIGHT_BASE || fileURLToPath(new URL('../../dashboard/browser/', import.meta.url));
const { chromium } = createRequire(join(pwBase, 'package.json'))('playwright-core');
const t0 = Date.now();
const log = (...a) => console.error(`[browser +${Date.now() - t0} ms]`, ...a);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
log('chromium launched');
let code = 0;
try {
  // The variants run side by side, one page each: the server tells their
  // connections apart by the variant in the URL.
  const context = await browser.newContext();
  await Promise.all(variants.map(async (variant) => {
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
    const url = `${base}/?variant=${encodeURIComponent(variant)}`;
    log('opening', url);
    await page.goto(url);
    await page.waitForFunction(() => window.deflateResult !== undefined, null, { timeout: 30000 });
    const result = await page.evaluate(() => window.deflateResult);
    result.pageErrors = problems;
    log(variant, result.ok ? 'ok' : 'FAILED');
    console.log('RESULT ' + JSON.stringify(result));
    await page.close();
  }));
  console.log('DONE');
} catch (err) {
  log('FAIL:', err.message);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
