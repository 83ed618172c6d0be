/**
 * Outbound webhooks, the rules (docs/webhooks.md): who hears which event, the retry schedule,
 * and which target addresses are refused. No I/O here.
 */
import { BlockList, isIP } from 'node:net';

export interface Subscription {
  id: string;
  ownerId: string;
  ownerRole: 'customer' | 'host' | 'ops' | 'admin';
  hostId?: string;
  url: string;
  /** Event types (`booking.conflicted`) or families (`booking.*`); unset: every type. */
  types?: readonly string[];
  /** Staff only: these cities; unset: every city. */
  cities?: readonly string[];
  status: 'active' | 'disabled';
}

/** What of an event a subscription filter needs. */
export interface EventFacts {
  type: string;
  city: string;
  customerId?: string;
  hostId?: string;
}

/** Hosts hear their fleet's events, customers their own trips' events, staff their cities'. */
export function hears(s: Subscription, e: EventFacts): boolean {
  if (s.status !== 'active') return false;
  if (s.types && !s.types.some((t) => t === e.type || (t.endsWith('.*') && e.type.startsWith(t.slice(0, -1)))))
    return false;
  if (s.cities && !s.cities.includes(e.city)) return false;
  switch (s.ownerRole) {
    case 'customer':
      return e.customerId === s.ownerId;
    case 'host':
      return e.hostId !== undefined && e.hostId === s.hostId;
    default:
      return true;
  }
}

export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
  /** A delivery still failing this long after it was first due goes to the dead letters. */
  horizonMs: number;
}

/** Exponential back-off with full jitter's upper half: base·2^(n-1), capped; n is the failed attempt. */
export function nextDelayMs(p: RetryPolicy, failedAttempts: number, random = Math.random): number {
  const ceiling = Math.min(p.maxMs, p.baseMs * 2 ** Math.min(30, Math.max(0, failedAttempts - 1)));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Loopback, private, link-local, CGNAT, multicast and unspecified ranges: never a webhook target. */
const PRIVATE = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv6');

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return PRIVATE.check(address, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    return mapped ? PRIVATE.check(mapped, 'ipv4') : PRIVATE.check(address, 'ipv6');
  }
  return true;
}

/** The Standard Webhooks message id of an event: stable, so receivers can de-duplicate. */
export const messageIdOf = (city: string, streamId: string) => `msg_${city}_${streamId}`;

export function parseMessageId(id: string): { city: string; streamId: string } | undefined {
  const m = /^msg_([a-z0-9]+)_(\d+-\d+)$/.exec(id);
  return m?.[1] && m[2] ? { city: m[1], streamId: m[2] } : undefined;
}
