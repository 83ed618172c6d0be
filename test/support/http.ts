/**
 * A client that follows 307/308 redirects with its credentials, as a regions-aware SDK does (or
 * `curl --location-trusted`). Fetch itself drops `Authorization` when a redirect changes origin
 * (the Fetch standard; undici, browsers), and regions are other origins (docs/regions.md).
 */
export async function fetchFollowing(url: string, init: RequestInit = {}, hops = 3): Promise<Response> {
  let target = url;
  for (let i = 0; ; i++) {
    const res = await fetch(target, { ...init, redirect: 'manual' });
    const location = res.headers.get('location');
    if ((res.status !== 307 && res.status !== 308) || !location || i >= hops) return res;
    await res.arrayBuffer();
    target = new URL(location, target).toString();
  }
}
