/** The console's language: a tag Intl refuses (a POSIX locale a browser reports) falls back, never throws. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FALLBACK_LOCALE, repairNavigatorLocale, supportedLocale } from '../../web/src/locale.ts';

test('a tag Intl accepts is kept (canonical)', () => {
  assert.equal(supportedLocale(['fr-CA']), 'fr-CA');
  assert.equal(supportedLocale(['EN-gb']), 'en-GB');
});

test('POSIX decorations are removed before giving up on a tag', () => {
  assert.throws(() => new Intl.NumberFormat('en-US@posix'), RangeError);
  assert.equal(supportedLocale(['en-US@posix']), 'en-US');
  assert.equal(supportedLocale(['de_DE.UTF-8']), 'de-DE');
});

test('nothing usable falls back to the default locale, and the next candidate is tried first', () => {
  assert.equal(supportedLocale(['C', '']), FALLBACK_LOCALE);
  assert.equal(supportedLocale([undefined, '!!', 'ja']), 'ja');
  assert.equal(supportedLocale([]), FALLBACK_LOCALE);
});

test('a navigator that reports a refused tag is repaired, so a library formatting with it works', () => {
  const nav = { language: 'en-US@posix', languages: ['en-US@posix', 'fr'] };
  assert.equal(repairNavigatorLocale(nav), 'en-US');
  assert.equal(nav.language, 'en-US');
  assert.deepEqual([...nav.languages], ['en-US', 'fr']);
  assert.doesNotThrow(() => new Intl.NumberFormat(nav.language).format(1.5));
  const fine = { language: 'pt-BR', languages: ['pt-BR'] };
  assert.equal(repairNavigatorLocale(fine), 'pt-BR');
  assert.equal(fine.language, 'pt-BR');
});
