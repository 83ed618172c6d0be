/**
 * The browser's language as a tag that `Intl` accepts. Some browsers report what the operating
 * system calls its locale (`en-US@posix`, `de_DE.UTF-8`): `Intl` refuses those with a RangeError,
 * and a library that formats with `navigator.language` (uPlot does, when its module loads) would
 * leave the console blank. Imported first by main.ts, so no module reads the refused tag.
 */
export const FALLBACK_LOCALE = 'en-US';

function accepted(tag: string): string | undefined {
  try {
    return Intl.getCanonicalLocales(tag)[0];
  } catch {
    return undefined; // RangeError: not a BCP 47 tag
  }
}

/** The first candidate `Intl` accepts, as written or with its POSIX decorations removed; else the fallback. */
export function supportedLocale(candidates: readonly (string | undefined)[], fallback = FALLBACK_LOCALE): string {
  for (const raw of candidates) {
    if (!raw) continue;
    const tag = accepted(raw) ?? accepted(raw.split(/[.@]/)[0]?.replaceAll('_', '-') ?? '');
    if (tag) return tag;
  }
  return fallback;
}

/** What a browser says of its language (`navigator`); a structure, so node's tests can hand one in. */
export interface BrowserLanguages {
  readonly language: string;
  readonly languages?: readonly string[];
}

/** Makes `navigator.language(s)` a tag `Intl` accepts, for this page and every library on it. */
export function repairNavigatorLocale(nav: BrowserLanguages): string {
  const locale = supportedLocale([nav.language, ...(nav.languages ?? [])]);
  if (accepted(nav.language) !== undefined) return locale;
  const languages = [locale, ...(nav.languages ?? []).map((l) => supportedLocale([l], '')).filter(Boolean)];
  Object.defineProperty(nav, 'language', { value: locale, configurable: true });
  Object.defineProperty(nav, 'languages', { value: Object.freeze([...new Set(languages)]), configurable: true });
  return locale;
}

const browser = (globalThis as { navigator?: BrowserLanguages }).navigator;
export const LOCALE = browser ? repairNavigatorLocale(browser) : FALLBACK_LOCALE;
