import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DomainError } from '../../src/domain/errors.ts';
import { VehicleLocks } from '../../src/services/vehicle-locks.ts';
import { setTimeout as sleep } from 'node:timers/promises';

describe('VehicleLocks', () => {
  test('commands on one vehicle run one at a time, in arrival order', async () => {
    const locks = new VehicleLocks({ maxQueue: 100, maxWaitMs: 5_000 });
    const order: number[] = [];
    let inside = 0;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        locks.run('v1', async () => {
          inside++;
          assert.equal(inside, 1, 'never two inside');
          await sleep(1);
          order.push(i);
          inside--;
        }),
      ),
    );
    assert.deepEqual(
      order,
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.equal(locks.activeLanes, 0, 'lanes are dropped when idle');
  });

  test('different vehicles do not wait for each other', async () => {
    const locks = new VehicleLocks({ maxQueue: 10, maxWaitMs: 1_000 });
    let release!: () => void;
    const slow = locks.run(
      'v1',
      () =>
        new Promise<void>((r) => {
          release = r;
        }),
    );
    const fast = await locks.run('v2', async () => 'done');
    assert.equal(fast, 'done');
    release();
    await slow;
  });

  test('a full queue refuses with BUSY (queue_full) while the holder still runs', async () => {
    const locks = new VehicleLocks({ maxQueue: 2, maxWaitMs: 5_000 });
    let release!: () => void;
    const first = locks.run(
      'v1',
      () =>
        new Promise<void>((r) => {
          release = r;
        }),
    );
    const queued = [locks.run('v1', async () => 1), locks.run('v1', async () => 2)];
    await assert.rejects(
      locks.run('v1', async () => 3),
      (e: unknown) => e instanceof DomainError && e.code === 'BUSY' && e.detail.reason === 'queue_full',
    );
    release();
    await first;
    assert.deepEqual(await Promise.all(queued), [1, 2]);
  });

  test('a bounded wait ends with BUSY and leaves the queue usable', async () => {
    const waits: string[] = [];
    const locks = new VehicleLocks({ maxQueue: 10, maxWaitMs: 30, onWait: (_ms, outcome) => waits.push(outcome) });
    let release!: () => void;
    const first = locks.run(
      'v1',
      () =>
        new Promise<void>((r) => {
          release = r;
        }),
    );
    await assert.rejects(
      locks.run('v1', async () => 'late'),
      (e: unknown) => e instanceof DomainError && e.code === 'BUSY' && e.detail.reason === 'timeout',
    );
    const next = locks.run('v1', async () => 'next');
    release();
    await first;
    assert.equal(await next, 'next');
    assert.ok(waits.includes('timeout'));
    assert.equal(locks.activeLanes, 0);
  });

  test('a failing command releases the lock', async () => {
    const locks = new VehicleLocks({ maxQueue: 10, maxWaitMs: 1_000 });
    await assert.rejects(
      locks.run('v1', async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await locks.run('v1', async () => 'ok'), 'ok');
  });
});
