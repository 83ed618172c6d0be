/**
 * Walks over a KDBush index (its `ids`, `coords`, `nodeSize`) that allocate nothing per walk:
 * nearest-first by great-circle distance (geokdbush's `around`: best-first over the kd-tree's
 * boxes and points, a box's haversine lower bound ordering it among the points) and the points in
 * a box (kdbush's `range`). The queue and the answer live in typed arrays owned by the walker and
 * reused from walk to walk (grown when a walk needs more), so a search's walk costs no garbage.
 * A walker serves one walk at a time: callers use it synchronously.
 */
import type KDBush from 'kdbush';

const RAD = Math.PI / 180;
const EARTH_KM = 6371;

function haverSin(theta: number): number {
  const s = Math.sin(theta / 2);
  return s * s;
}

export class KdWalker {
  private readonly ids: KDBush['ids'];
  private readonly coords: KDBush['coords'];
  private readonly nodeSize: number;
  /** The answer of the last walk: positions (KDBush ids), `found` of them. */
  out = new Int32Array(64);
  // The queue's items by slot: a point (`left` = -1 - id) or a kd-tree node (left..right, its axis
  // and its box), with `dist` the haversine of the distance to it (a lower bound for a node).
  private cap = 0;
  private slots = 0;
  private dist = new Float64Array(0);
  private left = new Int32Array(0);
  private right = new Int32Array(0);
  private axis = new Uint8Array(0);
  private minLng = new Float64Array(0);
  private minLat = new Float64Array(0);
  private maxLng = new Float64Array(0);
  private maxLat = new Float64Array(0);
  /** A binary min-heap of slots by `dist`. */
  private heap = new Int32Array(0);
  private size = 0;
  // The query point of the walk under way (fields, not arguments: a double handed to a call is boxed).
  private qLng = 0;
  private qLat = 0;
  private qCos = 1;

  constructor(index: KDBush) {
    this.ids = index.ids;
    this.coords = index.coords;
    this.nodeSize = index.nodeSize;
  }

  /**
   * The positions `keep` accepts within `maxKm` of (lng, lat), nearest first, at most `max`
   * (Infinity: all): in `out`, returns how many. Equal distances come in any order.
   */
  nearest(lng: number, lat: number, max: number, maxKm: number, keep: (id: number) => boolean): number {
    this.qLng = lng;
    this.qLat = lat;
    this.qCos = Math.cos(lat * RAD);
    // Beyond half the globe every point is within reach: no bound (an antipode's haversine can
    // round to just above 1, and would be cut at a bound of 1).
    const maxH = maxKm >= Math.PI * EARTH_KM ? Number.POSITIVE_INFINITY : haverSin(maxKm / EARTH_KM);
    this.slots = 0;
    this.size = 0;
    let found = 0;
    let node = this.node(0, this.ids.length - 1, 0, -180, -90, 180, 90);
    this.dist[node] = 0;
    while (node >= 0) {
      this.expand(node, keep);
      node = -1;
      // Points leave the queue before any box that might hold a nearer one (a box's distance is
      // a lower bound of its points'); the first box to come up is expanded next.
      while (this.size > 0) {
        const top = this.pop();
        const left = this.left[top] ?? 0;
        if (left >= 0) {
          node = top;
          break;
        }
        if ((this.dist[top] ?? 0) > maxH) return found;
        this.emit(found++, -1 - left);
        if (found >= max) return found;
      }
    }
    return found;
  }

  /** The positions in [minX, maxX] × [minY, maxY] (longitude, latitude): in `out`, returns how many. */
  range(minX: number, minY: number, maxX: number, maxY: number): number {
    const { ids, coords, nodeSize } = this;
    // The (left, right, axis) still to visit, stacked in the heap's array (unused by this walk).
    let sp = this.stack(0, 0, ids.length - 1, 0);
    let found = 0;
    while (sp > 0) {
      const axis = this.heap[--sp] ?? 0;
      const right = this.heap[--sp] ?? 0;
      const left = this.heap[--sp] ?? 0;
      if (right - left <= nodeSize) {
        for (let i = left; i <= right; i++) {
          const x = coords[2 * i] ?? 0;
          const y = coords[2 * i + 1] ?? 0;
          if (x >= minX && x <= maxX && y >= minY && y <= maxY) this.emit(found++, ids[i] ?? 0);
        }
        continue;
      }
      const m = (left + right) >> 1;
      const x = coords[2 * m] ?? 0;
      const y = coords[2 * m + 1] ?? 0;
      if (x >= minX && x <= maxX && y >= minY && y <= maxY) this.emit(found++, ids[m] ?? 0);
      if (axis === 0 ? minX <= x : minY <= y) sp = this.stack(sp, left, m - 1, 1 - axis);
      if (axis === 0 ? maxX >= x : maxY >= y) sp = this.stack(sp, m + 1, right, 1 - axis);
    }
    return found;
  }

  private stack(sp: number, left: number, right: number, axis: number): number {
    if (sp + 3 > this.heap.length) this.heap = grown(this.heap, sp + 3);
    this.heap[sp] = left;
    this.heap[sp + 1] = right;
    this.heap[sp + 2] = axis;
    return sp + 3;
  }

  /** Queues the node's middle point and its two halves, or a leaf's points. */
  private expand(node: number, keep: (id: number) => boolean): void {
    const coords = this.coords;
    const left = this.left[node] ?? 0;
    const right = this.right[node] ?? 0;
    if (right - left <= this.nodeSize) {
      for (let i = left; i <= right; i++) this.point(i, keep);
      return;
    }
    const m = (left + right) >> 1;
    this.point(m, keep);
    const axis = this.axis[node] ?? 0;
    const midLng = coords[2 * m] ?? 0;
    const midLat = coords[2 * m + 1] ?? 0;
    const minLng = this.minLng[node] ?? 0;
    const minLat = this.minLat[node] ?? 0;
    const maxLng = this.maxLng[node] ?? 0;
    const maxLat = this.maxLat[node] ?? 0;
    const a = this.node(
      left,
      m - 1,
      1 - axis,
      minLng,
      minLat,
      axis === 0 ? midLng : maxLng,
      axis === 1 ? midLat : maxLat,
    );
    const b = this.node(
      m + 1,
      right,
      1 - axis,
      axis === 0 ? midLng : minLng,
      axis === 1 ? midLat : minLat,
      maxLng,
      maxLat,
    );
    this.boxDist(a);
    this.boxDist(b);
    this.push(a);
    this.push(b);
  }

  /** Queues the point at kd position i when `keep` accepts its id. */
  private point(i: number, keep: (id: number) => boolean): void {
    const id = this.ids[i] ?? 0;
    if (!keep(id)) return;
    const s = this.slot();
    const lat = this.coords[2 * i + 1] ?? 0;
    this.dist[s] =
      this.qCos * Math.cos(lat * RAD) * haverSin((this.qLng - (this.coords[2 * i] ?? 0)) * RAD) +
      haverSin((this.qLat - lat) * RAD);
    this.left[s] = -1 - id;
    this.push(s);
  }

  private node(
    left: number,
    right: number,
    axis: number,
    minLng: number,
    minLat: number,
    maxLng: number,
    maxLat: number,
  ): number {
    const s = this.slot();
    this.left[s] = left;
    this.right[s] = right;
    this.axis[s] = axis;
    this.minLng[s] = minLng;
    this.minLat[s] = minLat;
    this.maxLng[s] = maxLng;
    this.maxLat[s] = maxLat;
    return s;
  }

  /** The lower bound of the distance (haversine) from the query point to the slot's box. */
  private boxDist(s: number): void {
    const lng = this.qLng;
    const lat = this.qLat;
    const minLng = this.minLng[s] ?? 0;
    const maxLng = this.maxLng[s] ?? 0;
    const minLat = this.minLat[s] ?? 0;
    const maxLat = this.maxLat[s] ?? 0;
    if (lng >= minLng && lng <= maxLng) {
      this.dist[s] = lat < minLat ? haverSin((lat - minLat) * RAD) : lat > maxLat ? haverSin((lat - maxLat) * RAD) : 0;
      return;
    }
    // West or east of the box: the nearest point of its nearer meridian edge (written out three
    // times rather than called: no closure, no boxed double).
    const hDLng = Math.min(haverSin((lng - minLng) * RAD), haverSin((lng - maxLng) * RAD));
    const cosDLng = 1 - 2 * hDLng;
    const vertexLat = cosDLng <= 0 ? (lat > 0 ? 90 : -90) : Math.atan(Math.tan(lat * RAD) / cosDLng) / RAD;
    const c = this.qCos * hDLng;
    this.dist[s] =
      vertexLat > minLat && vertexLat < maxLat
        ? c * Math.cos(vertexLat * RAD) + haverSin((lat - vertexLat) * RAD)
        : Math.min(
            c * Math.cos(minLat * RAD) + haverSin((lat - minLat) * RAD),
            c * Math.cos(maxLat * RAD) + haverSin((lat - maxLat) * RAD),
          );
  }

  private slot(): number {
    if (this.slots === this.cap) this.grow();
    return this.slots++;
  }

  private grow(): void {
    this.cap = Math.max(64, this.cap * 2);
    this.dist = grown(this.dist, this.cap);
    this.left = grown(this.left, this.cap);
    this.right = grown(this.right, this.cap);
    this.axis = grown(this.axis, this.cap);
    this.minLng = grown(this.minLng, this.cap);
    this.minLat = grown(this.minLat, this.cap);
    this.maxLng = grown(this.maxLng, this.cap);
    this.maxLat = grown(this.maxLat, this.cap);
    this.heap = grown(this.heap, this.cap);
  }

  private emit(k: number, id: number): void {
    if (k >= this.out.length) this.out = grown(this.out, k + 1);
    this.out[k] = id;
  }

  private before(a: number, b: number): boolean {
    return (this.dist[this.heap[a] ?? 0] ?? 0) < (this.dist[this.heap[b] ?? 0] ?? 0);
  }

  private swap(a: number, b: number): void {
    const x = this.heap[a] ?? 0;
    this.heap[a] = this.heap[b] ?? 0;
    this.heap[b] = x;
  }

  private push(s: number): void {
    let i = this.size++;
    this.heap[i] = s;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private pop(): number {
    const top = this.heap[0] ?? 0;
    this.size--;
    if (this.size > 0) {
      this.heap[0] = this.heap[this.size] ?? 0;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.size && this.before(l, best)) best = l;
        if (r < this.size && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/** A typed array of at least `n` elements holding `a`'s (at least twice as long: amortised). */
function grown<T extends Float64Array | Int32Array | Uint8Array>(a: T, n: number): T {
  if (a.length >= n) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(n, 2 * a.length));
  b.set(a);
  return b;
}
