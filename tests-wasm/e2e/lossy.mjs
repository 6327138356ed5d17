// A deterministic lossy wrapper around a Transport, shared by the Node end-to-end tests:
// live pushes dropped (30% by default), each delayed 0-200 ms, 10% duplicated; the
// store stays complete.
export function lossy(inner, seed, loss = 0.3) {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return {
    maxMessageSize: inner.maxMessageSize,
    publish: (t, p) => inner.publish(t, p),
    subscribe: (topics, cb) =>
      inner.subscribe(topics, (m) => {
        if (rand() < loss) return;
        setTimeout(() => cb(m), rand() * 200);
        if (rand() < 0.1) setTimeout(() => cb(m), rand() * 200);
      }),
    query: (q) => inner.query(q),
    close: () => inner.close(),
  };
}
