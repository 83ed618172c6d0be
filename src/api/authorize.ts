/**
 * Who may touch what — one rule, in one place (docs/api.md, "Authorization"):
 * - a role that may never use a route is refused with 403 FORBIDDEN (`requireRole`);
 * - a resource of another tenant answers 404 NOT_FOUND, exactly as a missing one would, so ids of
 *   others are never confirmed: another customer's booking, another host's vehicle, calendar,
 *   blocks or fleet (`canSeeTrip`, `requireVehicleManager`, `requireHostScope`).
 * Staff (ops, admin) see and manage everything.
 */
import { DomainError } from '../domain/errors.ts';
import type { Vehicle } from '../domain/vehicle.ts';
import type { Actor, Role } from './auth.ts';

export function requireRole(actor: Actor, ...roles: Role[]): void {
  if (!roles.includes(actor.role))
    throw new DomainError('FORBIDDEN', `role ${actor.role} may not do this`, { role: actor.role, allowed: roles });
}

export const isStaff = (actor: Actor) => actor.role === 'ops' || actor.role === 'admin';

/** A customer's own booking or hold; the vehicle's host; staff. */
export function canSeeTrip(actor: Actor, trip: { customerId: string }, vehicle: Pick<Vehicle, 'hostId'>): boolean {
  if (isStaff(actor)) return true;
  if (actor.role === 'customer') return trip.customerId === actor.id;
  return actor.role === 'host' && vehicle.hostId === actor.hostId;
}

/** A vehicle's host, or staff: who manages its spec, calendar and blocks. */
export function mayManageVehicle(actor: Actor, vehicle: Pick<Vehicle, 'hostId'>): boolean {
  return isStaff(actor) || (actor.role === 'host' && vehicle.hostId === actor.hostId);
}

/** Anyone else is told the vehicle (or what of it they asked for) does not exist. */
export function requireVehicleManager(actor: Actor, vehicle: Pick<Vehicle, 'hostId' | 'id'>, what = 'vehicle'): void {
  if (!mayManageVehicle(actor, vehicle)) throw notFound(what, vehicle.id);
}

/** A host's own scope (its fleet, its trips), or staff; another host is told it does not exist. */
export function requireHostScope(actor: Actor, hostId: string): void {
  if (!isStaff(actor) && !(actor.role === 'host' && actor.hostId === hostId)) throw notFound('host', hostId);
}

export function notFound(kind: string, id: string): DomainError {
  return new DomainError('NOT_FOUND', `${kind} ${id} not found`, { entity: kind, id });
}

/** The customer scope a script should enforce: the customer's own id, or any (staff, host). */
export const customerScope = (actor: Actor) => (actor.role === 'customer' ? actor.id : undefined);
