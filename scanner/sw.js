// Service worker of the checkpoint page: the page works offline once loaded. The app files
// (listed by the server in /app/precache.json) are served from the cache first and refreshed
// in the background; trust files
// (/trust/...) from the network first, so a newer list is picked up whenever online, and from
// the cache when offline; the rule set (/rules/...) likewise. The issuing authority's mirror
// (/authority/...) is never cached: what it gives is imported (and kept) by the page.

const CACHE = "vndcc-scanner-v2";

async function precache() {
  const cache = await caches.open(CACHE);
  const res = await fetch("/app/precache.json", { cache: "no-cache" });
  const { files } = await res.json();
  await cache.addAll(files);
  try {
    const index = await fetch("/trust/index.json", { cache: "no-cache" });
    if (index.ok) {
      await cache.put("/trust/index.json", index.clone());
      const { files: trust } = await index.json();
      await cache.addAll(trust.map((n) => `/trust/${encodeURIComponent(n)}`));
    }
  } catch {
    // no trust files served: the page imports them
  }
  for (const file of ["/rules/bundle.json", "/rules/signed.cbor", "/rules/valuesets.json"]) {
    try {
      const res = await fetch(file, { cache: "no-cache" });
      if (res.ok) await cache.put(file, res);
    } catch {
      // no rule set served
    }
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const res = await fetch(request, { cache: "no-cache" });
    if (res.ok) await cache.put(request, res.clone());
    return res;
  } catch {
    const hit = await cache.match(request, { ignoreSearch: true });
    if (hit) return hit;
    throw new Error("offline and not cached");
  }
}

/** Stale-while-revalidate: the cached copy at once, refreshed in the background when online,
 * so an updated page is used from the next load on. */
async function cacheFirst(event) {
  const request = event.request;
  const cache = await caches.open(CACHE);
  const url = new URL(request.url);
  const key = url.pathname === "/" ? "/index.html" : request;
  const refresh = fetch(request, { cache: "no-cache" }).then(async (res) => {
    if (res.ok) await cache.put(key, res.clone());
    return res;
  });
  const hit = await cache.match(key, { ignoreSearch: true });
  if (hit) {
    event.waitUntil(refresh.catch(() => {}));
    return hit;
  }
  return refresh;
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/authority/")) return; // always the network: an update, or its failure
  const data = url.pathname.startsWith("/trust/") || url.pathname.startsWith("/rules/");
  event.respondWith(data ? networkFirst(event.request) : cacheFirst(event));
});
