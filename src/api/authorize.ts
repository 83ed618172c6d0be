/** Who may touch what. Another tenant's resource answers NOT_FOUND, as a missing one would. */
import { DomainError } from '../domain/errors.ts';
import type { Vehicle } from '../domain/vehicle.ts';
import type { Actor, Role } from './auth.ts';

export function requireRole(actor: Actor, ...roles: Role[]): void {
  if (!roles.includes(actor.role)) throw new DomainError('FORBIDDEN', `role ${actor.role} may not do this`, { role: actor.role, allowed: roles });
}

export const isStaff = (actor: Actor) => actor.role === 'ops' || actor.role === 'admin';

/** A customer's own booking or hold; the vehicle's host; staff. */
export function canSeeTrip(actor: Actor, trip: { customerId: string }, vehicle: Pick<Vehicle, 'hostId'>): boolean {
  if (isStaff(actor)) return true;
  if (actor.role === 'customer') return trip.customerId === actor.id;
  return actor.role === 'host' && vehicle.hostId === actor.hostId;
}

export function notFound(kind: string, id: string): DomainError {
  return new DomainError('NOT_FOUND', `${kind} ${id} not found`, { entity: kind, id });
}

/** The customer scope a script should enforce: the customer's own id, or any (staff, host). */
export const customerScope = (actor: Actor) => (actor.role === 'customer' ? actor.id : undefined);
