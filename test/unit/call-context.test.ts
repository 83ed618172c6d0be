/**
 * An API request passes its call context explicitly (no AsyncLocalStorage in API processes); under
 * the tests' check (FLEET_CALL_CONTEXT_CHECK=1, set by npm test) a script run inside a request
 * without it throws, so a write path that would record no actor fails its test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asRequest, contextArgument, withCallContext } from '../../src/redis/call-context.ts';

const request = { requestId: 'req-1', actor: { sub: 'c1', role: 'customer', customerId: 'c1' } };

test('the explicit context is what the script gets: request id, no trace, the actor as JSON', () => {
  const arg = contextArgument('book', request);
  assert.equal(arg, `ctx:req-1\u001f\u001f${JSON.stringify(request.actor)}`);
});

test('a separator inside a request id cannot shift the parts', () => {
  assert.equal(contextArgument('book', { requestId: 'a\u001fb' }), 'ctx:ab\u001f\u001f');
});

test('a worker sets its context for everything it runs', () => {
  const arg = withCallContext({ actor: { sub: 'system:sweeper', role: 'system' } }, () =>
    contextArgument('expire_holds'),
  );
  assert.match(arg ?? '', /system:sweeper/);
});

test('inside a request, a script without the request context throws under the check', {
  skip: process.env.FLEET_CALL_CONTEXT_CHECK !== '1',
}, () => {
  assert.throws(() => asRequest(request, () => contextArgument('place_block')), /place_block ran in an API request/);
  assert.equal(
    asRequest(request, () => contextArgument('place_block', request)),
    contextArgument('book', request),
  );
});
