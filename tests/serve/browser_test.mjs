// The web app in a real browser: Debian's chromium, driven by playwright-core, with a fake camera
// playing a .y4m made here from a fixture image. Checks that the page shows the label
// /v1/classify gives for the same picture (camera frames and dropped-in images), that editing the
// class list changes the labels, and keeps a screenshot.
//
// usage: node browser_test.mjs MCLIP TEST_MODELS_DIR FIXTURES_DIR ARTIFACTS_DIR
// Exit 77 (skip) when chromium, playwright-core, ffmpeg or the fixtures are missing; under
// CI=true those fail instead.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';

const [mclip, modelsArg, fixturesArg, artifacts] = process.argv.slice(2);
const models = process.env.MCLIP_TEST_MODELS || modelsArg;
const fixtures = process.env.MCLIP_FIXTURES || fixturesArg;
const CHROMIUM = '/usr/bin/chromium';
const LIMIT_MS = 110_000;

function skip(reason) {
  if ((process.env.CI || '').toLowerCase() === 'true') {
    console.log(`FAIL: ${reason} (required under CI)`);
    process.exit(1);
  }
  console.log(`SKIP: ${reason}`);
  process.exit(77);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const model = join(models, 'mobileclip_s0.gguf');
if (!existsSync(join(fixtures, 'images'))) skip(`reference fixtures not found in ${fixtures}`);
if (!existsSync(model)) skip(`fixture model ${model} not found`);
if (!existsSync(CHROMIUM)) skip(`${CHROMIUM} not found (apt install chromium; scripts/install-deps.sh)`);
if (spawnSync('ffmpeg', ['-version']).status !== 0) skip('ffmpeg not found');
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  skip('npm playwright-core not installed in tests/serve (scripts/install-deps.sh)');
}

const work = mkdtempSync(join(tmpdir(), 'mclip-browser-'));
mkdirSync(artifacts, { recursive: true });
let server;
let browser;
const watchdog = setTimeout(() => {
  console.log(`FAIL: the browser test ran over ${LIMIT_MS / 1000} s`);
  if (server) server.kill('SIGKILL');
  process.exit(1);
}, LIMIT_MS);

function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(mclip, ['serve', '--model', model, '--precision', 'f32', '--threads', '2', '--port', '0', '--no-cache'],
                   { stdio: ['ignore', 'pipe', 'inherit'] });
    server.on('exit', (code) => reject(new Error(`mclip serve exited (${code}) before listening`)));
    createInterface({ input: server.stdout }).on('line', (line) => {
      const match = line.match(/listening on (\S+)/);
      if (match) resolve(match[1].replace(/\/$/, ''));
    });
  });
}

async function classify(url, bytes, settings) {
  const response = await fetch(`${url}/v1/classify`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ image: `data:image/jpeg;base64,${Buffer.from(bytes).toString('base64')}`, ...settings }),
  });
  const answer = await response.json();
  check(response.ok, `/v1/classify: ${JSON.stringify(answer)}`);
  return answer;
}

// The page's settings as the API takes them.
const pageSettings = (page) => page.evaluate(() => {
  const labels = document.getElementById('labels').value.split('\n').map((s) => s.trim()).filter(Boolean);
  return {
    labels,
    prefix: document.getElementById('prefix').value,
    suffix: document.getElementById('suffix').value,
    threshold: Number(document.getElementById('threshold').value),
    top_k: labels.length,
  };
});

// Waits for `count` more answers, then returns the newest: its label as shown, and the picture.
async function nextAnswer(page, count = 1) {
  const before = await page.evaluate(() => window.mclip.results);
  await page.waitForFunction((n) => window.mclip.results >= n, before + count, { timeout: 30_000 });
  return page.evaluate(async () => {
    const { blob, result } = window.mclip.last;
    const bytes = Array.from(new Uint8Array(await blob.arrayBuffer()));
    return { shown: document.getElementById('current-label').textContent, result, bytes };
  });
}

async function setRange(page, id, value) {
  await page.evaluate(([id, value]) => {
    const input = document.getElementById(id);
    input.value = value;
    input.dispatchEvent(new Event('input'));
  }, [id, String(value)]);
}

try {
  const images = ['chelsea.png', 'coffee.png', 'rocket.jpg'];
  const video = join(work, 'camera.y4m');
  const made = spawnSync('ffmpeg', ['-v', 'error', '-loop', '1', '-i', join(fixtures, 'images', 'rocket.jpg'),
                                    '-vf', 'scale=640:480,format=yuv420p', '-r', '10', '-t', '2', '-y', video]);
  check(made.status === 0, `ffmpeg: ${made.stderr}`);

  const url = await startServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--use-fake-device-for-media-stream',
           '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${video}`],
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url + '/');
  await page.waitForFunction(() => document.getElementById('model').textContent.includes('mobileclip_s0'));
  await page.waitForFunction(() => document.getElementById('labels').value.length > 0);
  await page.fill('#labels', 'rocket\ncat\ncup\ncoffee');
  await setRange(page, 'threshold', 0);

  // Dropped-in images: the page shows exactly what /v1/classify says.
  for (const name of images) {
    const answered = nextAnswer(page);
    await page.setInputFiles('#file', join(fixtures, 'images', name));
    const { shown, result } = await answered;
    const direct = await classify(url, readFileSync(join(fixtures, 'images', name)), await pageSettings(page));
    check(shown === direct.label, `${name}: the page shows "${shown}", /v1/classify says "${direct.label}"`);
    check(Math.abs(result.confidence - direct.confidence) <= 1e-4, `${name}: confidence ${result.confidence} vs ${direct.confidence}`);
    console.log(`image ${name}: ${shown} ${(100 * direct.confidence).toFixed(1)}%`);
  }

  // The fake camera: each answer is about the frame the page sent.
  await page.click('#start');
  await nextAnswer(page, 2);
  const live = await nextAnswer(page);
  const direct = await classify(url, new Uint8Array(live.bytes), await pageSettings(page));
  check(live.shown === direct.label, `camera: the page shows "${live.shown}", /v1/classify says "${direct.label}"`);
  check(Math.abs(live.result.confidence - direct.confidence) <= 1e-4, `camera: confidence ${live.result.confidence} vs ${direct.confidence}`);
  check(live.result.fps > 0 && live.result.latency_ms > 0, `camera: fps and latency missing: ${JSON.stringify(live.result)}`);
  console.log(`camera: ${live.shown} ${(100 * live.result.confidence).toFixed(1)}%, ${live.result.fps.toFixed(1)} fps`);

  // Editing the class list changes what is shown.
  const edited = ['alpha particle', 'banana', 'grand piano'];
  await page.fill('#labels', edited.join('\n'));
  await page.waitForFunction((labels) => {
    const last = window.mclip.last;
    return last && last.result.top_k.every((s) => labels.includes(s.label));
  }, edited, { timeout: 30_000 });
  const after = await nextAnswer(page);
  check(edited.includes(after.shown), `after editing the classes the page shows "${after.shown}"`);
  const rows = await page.$$eval('#results tbody tr', (trs) => trs.map((tr) => tr.firstChild.textContent));
  check(rows.length === edited.length && rows.every((r) => edited.includes(r)), `results table: ${rows}`);
  const preview = await page.textContent('#preview');
  check(preview === 'a photo of a alpha particle.', `prompt preview: "${preview}"`);
  console.log(`edited classes: ${after.shown}`);

  const shot = join(artifacts, 'serve_web_app.png');
  await page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);
  check(pageErrors.length === 0, `page errors: ${pageErrors.join('; ')}`);
  console.log('PASS');
} catch (e) {
  console.log(`FAIL: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  if (browser) await browser.close();
  if (server) {
    server.removeAllListeners('exit');
    server.kill('SIGTERM');
  }
  rmSync(work, { recursive: true, force: true });
}
console.log(basename(process.argv[1]) + ' done');
