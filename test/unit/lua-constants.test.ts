/**
 * The rules the Lua engine and the TypeScript domain both hold (the reference model and the read
 * model run the TypeScript copy): their constants and tables must be equal. One copy each, held
 * together here and by the property test (model.property.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BLOCK_STATUS,
  IDEMPOTENCY_TTL_S,
  MAX_INTERVAL_MS,
  FINAL_STATUSES,
  MAX_TIMESTAMP_MS,
  MINUTE_MS,
  START_EARLY_MS,
  STATUS_PRECEDENCE,
} from '../../src/domain/calendar.ts';
import { counterFields } from '../../src/redis/counters.ts';
import { PRICE_PERIOD_MS } from '../../src/domain/pricing.ts';
import { scriptCore } from '../../src/redis/scripts.ts';

/** The scripts' shared core, every part, as src/redis/scripts.ts builds the library of it. */
const lua = scriptCore();

/** A `local NAME = <arithmetic of numbers and earlier names>` of the engine, evaluated. */
function luaNumber(name: string, known: Record<string, number> = {}): number {
  const m = new RegExp(`^local ${name} = ([^\\n-]+)`, 'm').exec(lua);
  assert.ok(m, `engine.lua defines ${name}`);
  const expr = m[1]!.trim().replace(/[A-Z_]+/g, (n) => String(known[n] ?? NaN));
  assert.match(expr, /^[\d\s*+()]+$/, `${name} is plain arithmetic: ${expr}`);
  return Function(`return (${expr});`)() as number;
}

test('interval and time constants are equal in Lua and TypeScript', () => {
  const minute = luaNumber('MINUTE');
  assert.equal(minute, MINUTE_MS);
  assert.equal(luaNumber('MAX_SPAN'), MAX_INTERVAL_MS);
  assert.equal(luaNumber('MAX_TIME'), MAX_TIMESTAMP_MS);
  assert.equal(luaNumber('START_EARLY', { MINUTE: minute }), START_EARLY_MS);
  assert.equal(luaNumber('IDEM_TTL'), IDEMPOTENCY_TTL_S);
  // The pricing rule's period and hour (its functions are held equal through Redis: integration/pricing.test.ts).
  assert.equal(luaNumber('PRICE_PERIOD'), PRICE_PERIOD_MS);
  assert.equal(luaNumber('PRICE_HOUR'), 60 * MINUTE_MS);
});

test('the status of each block reason and the precedence of statuses are equal in Lua and TypeScript', () => {
  const blocks = /local BLOCK_STATUS = \{([^}]*)\}/.exec(lua)?.[1] ?? '';
  const parsed = Object.fromEntries([...blocks.matchAll(/(\w+) = '(\w+)'/g)].map((m) => [m[1], m[2]]));
  assert.deepEqual(parsed, BLOCK_STATUS);
  const order = /local STATUS_ORDER = \{([^}]*)\}/.exec(lua)?.[1] ?? '';
  assert.deepEqual(
    [...order.matchAll(/'(\w+)'/g)].map((m) => m[1]),
    [...STATUS_PRECEDENCE],
  );
});

test('the final statuses are the same set in Lua and TypeScript', () => {
  const table = /local FINAL_STATUS = \{([^}]*)\}/.exec(lua)?.[1] ?? '';
  const lua_ = [...table.matchAll(/(\w+) = true/g)].map((m) => m[1]).sort();
  assert.deepEqual(lua_, [...FINAL_STATUSES].sort());
});

test('the counter fields are the same in Lua and TypeScript', () => {
  const body = /local function move_counters\(([^)]*)\)([\s\S]*?)\nend/.exec(lua)?.[2] ?? '';
  // The Lua concatenations of the new category and status, read back as the TypeScript builder's shape.
  const written = [...body.matchAll(/HINCRBY', key, ([^,]+), 1\)/g)].map((m) =>
    (m[1] ?? '')
      .split('..')
      .map((p) => p.trim())
      .map((p) => (p === 'new_cat' ? 'CAT' : p === 'new_status' ? 'STATUS' : p.replace(/^'(.*)'$/, '$1')))
      .join(''),
  );
  assert.deepEqual(written, counterFields('CAT', 'STATUS'));
});

test('which entries occupy a vehicle is the same rule in Lua and TypeScript', () => {
  const body = /local function occupies\(e, now\)([\s\S]*?)\nend/.exec(lua)?.[1] ?? '';
  assert.match(body, /e\.kind == 'hold' then return e\.status == 'held' and e\.expiresAt > now/);
  assert.match(
    body,
    /e\.kind == 'booking' then return e\.status == 'confirmed' or e\.status == 'active' or e\.status == 'completed'/,
  );
  assert.match(body, /return e\.status == 'active'/);
});
