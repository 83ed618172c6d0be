/**
 * The browser the console's tests drive (playwright-core: it downloads no browser of its own).
 * In order: CHROMIUM_PATH when set; else the system's Chromium when installed; else the headless
 * Chromium that the npm package @sparticuz/chromium ships (a dev dependency, so `npm ci` on a fresh
 * machine is enough). Only --no-sandbox is passed: the package's own args include --single-process,
 * which closes the browser when a second context opens.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContextOptions } from 'playwright-core';

const SYSTEM_CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export async function chromiumPath(): Promise<{ path: string; source: string }> {
  const configured = process.env.CHROMIUM_PATH;
  if (configured) {
    if (!existsSync(configured)) throw new Error(`CHROMIUM_PATH=${configured}: no such file`);
    return { path: configured, source: 'CHROMIUM_PATH' };
  }
  const system = SYSTEM_CHROMIUM.find((p) => existsSync(p));
  if (system) return { path: system, source: 'system' };
  const { default: packaged } = await import('@sparticuz/chromium');
  return { path: await packaged.executablePath(), source: '@sparticuz/chromium' };
}

export async function launchChromium(): Promise<Browser> {
  const { path } = await chromiumPath();
  return chromium.launch({ executablePath: path, args: ['--no-sandbox'] });
}

/**
 * Every page is given its locale: a browser started under LANG=C.UTF-8 reports `en-US@posix`, which
 * the console repairs (web/src/locale.ts, unit-tested), but the screenshots should not depend on it.
 */
export const PAGE_OPTIONS: BrowserContextOptions = { locale: 'en-US' };
