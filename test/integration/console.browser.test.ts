/**
 * The web console in a real browser (Chromium through playwright-core: test/support/browser.ts), against
 * `fleet serve --demo` on private stores: a host adds a vehicle, a customer searches and books it,
 * the host blocks it, the customer's page shows the conflict and its offers without reloading and
 * accepts one, the booking shows the new vehicle, and the operations page's counts and conflict
 * funnel change live. No console errors, no failed requests, no serious or critical axe-core
 * violations on any view; screenshots of each view go to docs/console/.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import ICAL from 'ical.js';
import type { Browser, BrowserContext, Page, WebSocketRoute } from 'playwright-core';
import { launchChromium, PAGE_OPTIONS } from '../support/browser.ts';
import { freePort } from '../support/redis.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const SHOTS = new URL('../../docs/console/', import.meta.url);
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
let stores: Stores;
let child: ChildProcess;
let browser: Browser;
let base = '';
let output = '';
const problems: string[] = [];

before(async () => {
  stores = await startStores({ redis: { external: 'never' } });
  const port = await freePort();
  child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--demo', '--vehicles-per-city', '30'],
    {
      env: {
        ...process.env,
        PORT: String(port),
        WEB_CONCURRENCY: '1',
        CITIES: 'blr,del',
        REDIS_URL: stores.server.url,
        DATABASE_URL: stores.db.url,
        LOG_LEVEL: 'warn',
        JWT_SECRET: 'console-test-secret-of-32-bytes-or-more',
        POST_VALIDATION_INTERVAL_MS: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const hear = (d: Buffer) => {
    output += d.toString();
  };
  child.stdout?.on('data', hear);
  child.stderr?.on('data', hear);
  const deadline = Date.now() + 90_000;
  while (!/ops: +\S+/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start:\n${output}`);
    await sleep(100);
  }
  base = `http://127.0.0.1:${port}`;
  browser = await launchChromium();
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await stores?.stop();
});

/** A page signed in as one demo identity, watched for console errors and failed requests. */
async function signedIn(
  who: 'Customer' | 'Host' | 'Operations' | 'Admin',
  width = 1280,
  locale = PAGE_OPTIONS.locale,
  prepare?: (context: BrowserContext) => Promise<void>,
): Promise<Page> {
  const context = await browser.newContext({ ...PAGE_OPTIONS, locale, viewport: { width, height: 900 } });
  await prepare?.(context);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${who} console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${who} page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A WebSocket closed with its page is not a failed request.
    if (!r.url().includes('/v1/live')) problems.push(`${who} request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${who} ${r.request().method()} ${r.url()} → ${r.status()}`);
  });
  await page.goto(`${base}/`);
  await page.getByRole('button', { name: new RegExp(`^${who}`) }).click();
  await page.getByRole('heading', { level: 2 }).first().waitFor();
  return page;
}

async function axe(page: Page, view: string): Promise<void> {
  await page.addScriptTag({ path: AXE });
  const violations = (await page.evaluate(async () => {
    const run = (globalThis as unknown as { axe: { run(): Promise<{ violations: unknown[] }> } }).axe.run;
    return (await run()).violations;
  })) as { id: string; impact: string; nodes: unknown[] }[];
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}, ${v.nodes.length} nodes)`),
    [],
    `${view}: serious or critical accessibility violations`,
  );
}

const outcome = (page: Page) => page.locator('.outcome');

test('a booking displaced by a host block turns into offers, live, across the three views', {
  timeout: 240_000,
}, async () => {
  const signin = await browser.newPage(PAGE_OPTIONS);
  await signin.goto(`${base}/`);
  await signin.getByRole('button', { name: /^Customer/ }).waitFor();
  await axe(signin, 'sign-in');
  await signin.screenshot({ path: new URL('signin.png', SHOTS).pathname });
  await signin.close();

  const ops = await signedIn('Operations');
  const blrVehicles = () => ops.locator('tr[data-city="blr"] td').first().textContent();
  await ops.locator('tr[data-city="blr"]').waitFor();
  const vehiclesBefore = Number(await blrVehicles());
  const funnelConflicts = () => ops.locator('[data-stage="conflicts"] dd').textContent();
  await ops.locator('[data-stage="conflicts"]').waitFor();
  const conflictsBefore = Number(await funnelConflicts());

  // The host adds the cheapest sedan of the city.
  const host = await signedIn('Host');
  await host.getByLabel('Category').selectOption('sedan');
  await host.getByLabel('Make').fill('Maruti');
  await host.getByLabel('Model').fill('Ciaz');
  await host.getByLabel('Price per hour').fill('1');
  await host.getByRole('button', { name: 'Add vehicle' }).click();
  await assertOutcome(host, /^Added Maruti Ciaz \((veh_\S+)\)/);
  const vehicleId = /\((veh_\S+)\)/.exec((await outcome(host).textContent()) ?? '')?.[1] ?? '';
  // Operations see the city's count move without reloading.
  await waitFor(async () => Number(await blrVehicles()) === vehiclesBefore + 1, 'the ops count of blr moved live');

  // A CSV through the batch API: a result per row, the bad row refused with the API's detail.
  await host.getByLabel('Bulk add from CSV').setInputFiles({
    name: 'fleet.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from(
      'city,category,seats,make,model,transmission,fuel,lat,lng,pricePerHour\n' +
        'blr,suv,7,Mahindra,XUV700,manual,diesel,12.95,77.6,55\n' +
        'blr,spaceship,7,Acme,Rocket,manual,diesel,12.95,77.6,55\n',
    ),
  });
  await assertOutcome(host, /^1 of 2 rows added\./);
  assert.match((await host.locator('.rows tr.error').textContent()) ?? '', /category/);

  // The customer searches sedans and books the cheapest: the host's new car.
  const customer = await signedIn('Customer');
  await customer.getByLabel('Category').selectOption('sedan');
  await customer.getByRole('button', { name: 'Search' }).click();
  await assertOutcome(customer, /vehicle\(s\) free/);
  const first = customer.locator('.hits li').first();
  assert.match((await first.textContent()) ?? '', /Maruti Ciaz/);
  await first.getByRole('button', { name: 'Hold' }).click();
  await assertOutcome(customer, /^Held Maruti Ciaz/);
  await customer.getByRole('button', { name: 'Book', exact: true }).click();
  await assertOutcome(customer, /^Booked: (bkg_\S+)\./);
  const bookingId = /(bkg_\S+)\./.exec((await outcome(customer).textContent()) ?? '')?.[1] ?? '';
  const row = customer.locator(`tr[data-booking="${bookingId}"]`);
  assert.equal(await row.locator('.vehicle').textContent(), vehicleId);

  // The host blocks that vehicle over the booked window (maintenance, from the next hour on).
  await host.locator('tr', { hasText: vehicleId }).getByRole('button').click();
  await host
    .locator('form', { has: host.getByRole('button', { name: 'Block' }) })
    .getByLabel('Reason')
    .selectOption('maintenance');
  await host.getByRole('button', { name: 'Block', exact: true }).click();
  await assertOutcome(host, /^Blocked \(maintenance\)/);
  await host.locator('.entries li[data-kind="block"]').first().waitFor();

  // The customer's page shows the conflict and its offers without reloading, and takes one.
  const notice = customer.getByRole('alert');
  await notice.waitFor({ timeout: 30_000 });
  assert.match((await notice.textContent()) ?? '', new RegExp(`${bookingId} was displaced \\(maintenance\\)`));
  const offer = notice.locator('.offers li').first();
  const offered = /^(veh_\S+)/.exec(((await offer.textContent()) ?? '').trim())?.[1] ?? '';
  assert.ok(offered && offered !== vehicleId, `an alternative is offered (${offered})`);
  await customer.screenshot({ path: new URL('customer.png', SHOTS).pathname, fullPage: true });
  await offer.getByRole('button', { name: 'Accept' }).click();
  await assertOutcome(customer, new RegExp(`^Moved to ${offered}\\.`));
  await waitFor(
    async () => (await row.locator('.vehicle').textContent()) === offered,
    'the booking shows the new vehicle',
  );
  assert.equal(await row.locator('.status').textContent(), 'confirmed');

  // Operations: the conflict funnel moves (PostgreSQL, through the sync), without reloading.
  await waitFor(async () => Number(await funnelConflicts()) > conflictsBefore, 'the ops funnel moved live', 60_000);
  await ops.locator('.map circle').first().waitFor();

  await axe(customer, 'customer');
  await axe(host, 'host');
  await axe(ops, 'operations');
  await host.screenshot({ path: new URL('host.png', SHOTS).pathname, fullPage: true });
  await ops.screenshot({ path: new URL('ops.png', SHOTS).pathname, fullPage: true });

  // A phone's width: the customer view still works and stays accessible.
  const phone = await signedIn('Customer', 390);
  await phone.locator(`tr[data-booking="${bookingId}"]`).waitFor();
  await axe(phone, 'customer (phone)');
  for (const who of ['Host', 'Operations'] as const) await axe(await signedIn(who, 390), `${who} (phone)`);
  await phone.screenshot({ path: new URL('customer-phone.png', SHOTS).pathname, fullPage: true });

  // A browser whose language Intl refuses (Chromium under LANG=C.UTF-8) still gets every view.
  const posix = await signedIn('Customer', 1280, 'en-US@posix');
  assert.equal(await posix.evaluate(() => navigator.language), 'en-US');
  await posix.locator(`tr[data-booking="${bookingId}"]`).waitFor();
  await (await signedIn('Operations', 1280, 'en-US@posix')).locator('tr[data-city="blr"]').waitFor();

  assert.deepEqual(problems, [], 'no console errors and no failed requests');
});

/** The demo identities' tokens, and the API called with one of them (the answer must be a success). */
async function demoApi() {
  const ids = (await (await fetch(`${base}/v1/demo/identities`)).json()) as Record<string, string>;
  const call = async (token: string | undefined, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.json()) as Record<string, unknown>;
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const addVehicle = async (model: string) =>
    String(
      (
        await call(ids.host, 'POST', '/v1/vehicles', {
          city: 'blr',
          category: 'sedan',
          seats: 5,
          make: 'Test',
          model,
          transmission: 'manual',
          fuel: 'petrol',
          location: { lat: 12.97, lng: 77.59 },
          pricePerHour: 5,
        })
      ).id,
    );
  return { ids, call, addVehicle };
}

const HOUR_MS = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

test('live: a dropped connection comes back after growing waits and resumes after the last event seen', {
  timeout: 60_000,
}, async () => {
  const { addVehicle } = await demoApi();
  // Operations, its WebSocket passed through a route the test can cut and refuse.
  const subscribes: { topic: string; after?: string }[] = [];
  let refuse = 0;
  let cut = () => {};
  const ops = await signedIn('Operations', 1280, PAGE_OPTIONS.locale, (context) =>
    context.routeWebSocket(/\/v1\/live/, (ws: WebSocketRoute) => {
      if (refuse > 0) {
        refuse--;
        return ws.close({ code: 1013, reason: 'refused by the test' });
      }
      const server = ws.connectToServer();
      ws.onMessage((m) => {
        const msg = JSON.parse(String(m)) as { type: string; topic: string; after?: string };
        if (msg.type === 'subscribe') subscribes.push({ topic: msg.topic, ...(msg.after ? { after: msg.after } : {}) });
        server.send(m);
      });
      cut = () => {
        void server.close();
        void ws.close({ code: 1006, reason: 'cut by the test' });
      };
    }),
  );
  const feed = () => ops.locator('.feed').textContent();
  await waitFor(async () => subscribes.some((s) => s.topic === 'city:blr'), 'ops subscribed to city:blr');
  const seen = await addVehicle('Seen');
  await waitFor(async () => ((await feed()) ?? '').includes(seen), 'the event heard live');
  const firstRound = subscribes.length;

  // Cut, and refuse the next two attempts (the waits grow); a vehicle is added meanwhile.
  refuse = 2;
  cut();
  await waitFor(
    async () => /connecting/.test((await ops.locator('main p.muted').first().textContent()) ?? ''),
    'shown as away',
  );
  const missed = await addVehicle('Missed');
  await waitFor(async () => ((await feed()) ?? '').includes(missed), 'the event of the gap, replayed', 20_000);
  assert.equal(refuse, 0, 'both refusals were met');
  const resumed = subscribes.slice(firstRound).find((s) => s.topic === 'city:blr');
  assert.match(resumed?.after ?? '', /^\d+-\d+$/, `resubscribed with after: ${JSON.stringify(subscribes)}`);
  assert.match((await ops.locator('main p.muted').first().textContent()) ?? '', /connected/);
  assert.deepEqual(problems, [], 'no console errors and no failed requests, the cut and refused connections included');
});

test("the audit trail: an admin sees a booking's history, who did what, in the operations view", {
  timeout: 60_000,
}, async () => {
  const { ids, call, addVehicle } = await demoApi();
  const vehicleId = await addVehicle('Audited');
  const from = Math.ceil((Date.now() + 5 * HOUR_MS) / HOUR_MS) * HOUR_MS;
  const booking = String(
    (await call(ids.customer, 'POST', '/v1/bookings', { vehicleId, from: iso(from), to: iso(from + HOUR_MS) })).id,
  );
  await call(ids.customer, 'POST', `/v1/bookings/${booking}/cancel`, { reason: 'plans changed' });
  const admin = await signedIn('Admin');
  await admin.getByLabel('Vehicle, hold, booking or block id').fill(booking);
  // The trail is PostgreSQL's: asked again until the sync has brought both changes.
  await waitFor(async () => {
    await admin.getByRole('button', { name: 'Show history' }).click();
    return (await admin.locator('table.history tbody tr').count()) >= 2;
  }, 'the booking and its cancellation in the history');
  const rows = await admin.locator('table.history tbody tr').allTextContents();
  assert.ok(
    rows.some((r) => r.includes('booking.cancelled') && r.includes('demo-customer')),
    rows.join('\n'),
  );
  assert.ok(
    rows.some((r) => r.includes('booking.confirmed') && r.includes('(customer)')),
    rows.join('\n'),
  );
  await axe(admin, 'Admin (history)');
  // Operations see the section, and are told the trail is for admins.
  const ops = await signedIn('Operations');
  await ops.getByText('The audit trail is for admins').waitFor();
  assert.deepEqual(problems, []);
});

test('a conflicted booking is cancelled from the customer view', { timeout: 60_000 }, async () => {
  const { ids, call, addVehicle } = await demoApi();
  const vehicleId = await addVehicle('Displaced');
  const from = Math.ceil((Date.now() + 3 * HOUR_MS) / HOUR_MS) * HOUR_MS;
  const hold = await call(ids.customer, 'POST', '/v1/holds', { vehicleId, from: iso(from), to: iso(from + HOUR_MS) });
  const booking = String((await call(ids.customer, 'POST', '/v1/bookings', { holdId: hold.id })).id);
  await call(ids.host, 'POST', `/v1/vehicles/${vehicleId}/blocks`, {
    reason: 'maintenance',
    from: iso(from - HOUR_MS),
    to: iso(from + 2 * HOUR_MS),
  });
  const customer = await signedIn('Customer');
  const row = customer.locator(`tr[data-booking="${booking}"]`);
  await waitFor(async () => (await row.locator('.status').textContent()) === 'conflicted', 'shown conflicted');
  await row.getByRole('button', { name: 'Cancel' }).click();
  await assertOutcome(customer, new RegExp(`^Cancelled ${booking}\\.`));
  await waitFor(async () => (await row.locator('.status').textContent()) === 'cancelled', 'shown cancelled');
  assert.equal(await row.getByRole('button', { name: 'Cancel' }).count(), 0);
  assert.deepEqual(problems, []);
});

test("iCalendar: another channel's event comes in as a block, and the calendar goes out with it", {
  timeout: 60_000,
}, async () => {
  const { addVehicle } = await demoApi();
  const vehicleId = await addVehicle('Calendar');
  const date = iso(Date.now() + 48 * HOUR_MS).slice(0, 10);
  const day = date.replace(/-/g, '');
  const host = await signedIn('Host');
  await host.locator('tr', { hasText: vehicleId }).getByRole('button').click();
  await host.getByLabel('Import iCalendar').setInputFiles({
    name: 'other.ics',
    mimeType: 'text/calendar',
    buffer: Buffer.from(
      [
        'BEGIN:VCALENDAR',
        'VERSION:2.0',
        'PRODID:-//other channel//EN',
        'BEGIN:VEVENT',
        'DTSTAMP:20250101T000000Z',
        'UID:elsewhere-1',
        `DTSTART:${day}T090000Z`,
        `DTEND:${day}T110000Z`,
        'END:VEVENT',
        'END:VCALENDAR',
        '',
      ].join('\r\n'),
    ),
  });
  await assertOutcome(host, /^Imported 1 event\(s\) as blocks \(0 refused\)\./);
  const [download] = await Promise.all([
    host.waitForEvent('download'),
    host.getByRole('button', { name: 'Export iCalendar' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), `${vehicleId}.ics`);
  // Written in the city's local time (TZID): read back, it starts at 09:00 UTC that day.
  const text = readFileSync(await download.path(), 'utf8');
  assert.match(text, /\r\nDTSTART;TZID=[A-Za-z_/]+:\d{8}T\d{6}\r\n/);
  const starts = new ICAL.Component(ICAL.parse(text))
    .getAllSubcomponents('vevent')
    .map((c) => new ICAL.Event(c).startDate.toUnixTime() * 1000);
  assert.ok(starts.includes(Date.parse(`${date}T09:00:00Z`)), String(starts));
  assert.deepEqual(problems, []);
});

async function assertOutcome(page: Page, expected: RegExp): Promise<void> {
  await waitFor(
    async () => expected.test((await outcome(page).textContent()) ?? ''),
    `outcome ${expected}`,
    20_000,
    async () => String(await outcome(page).textContent()),
  );
}

async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
  show: () => Promise<string> = async () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  assert.fail(`${what}: not within ${timeoutMs} ms ${await show()}`);
}
