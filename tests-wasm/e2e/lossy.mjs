// A deterministic lossy wrapper around a Transport, shared by the Node end-to-end tests:
// live pushes dropped (30% by default), each delayed 0-200 ms, 10% duplicated; the
// store stays complete. `inFlight` counts the pushes it holds back (delayed, not yet
// handed over): at 0, everything published so far has reached the subscriber or was dropped.
export function lossy(inner, seed, loss = 0.3) {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  let inFlight = 0;
  const later = (f) => {
    inFlight++;
    setTimeout(() => {
      inFlight--;
      f();
    }, rand() * 200);
  };
  return {
    maxMessageSize: inner.maxMessageSize,
    get inFlight() {
      return inFlight;
    },
    publish: (t, p) => inner.publish(t, p),
    subscribe: (topics, cb) =>
      inner.subscribe(topics, (m) => {
        if (rand() < loss) return;
        later(() => cb(m));
        if (rand() < 0.1) later(() => cb(m));
      }),
    query: (q) => inner.query(q),
    close: () => inner.close(),
  };
}
