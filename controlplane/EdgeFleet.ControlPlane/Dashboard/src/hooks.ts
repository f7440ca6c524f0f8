import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { subscribe, type LiveChange } from './live';

export interface Loaded<T> { data?: T; error?: string; reload: () => void }

/**
 * Loads with `load`, again when `deps` change, and again (at most once a second) when a live change matches
 * `live` — or on every live (re)connect.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], live?: (change: LiveChange) => boolean): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const loadRef = useRef(load);
  loadRef.current = load;
  const running = useRef(false);
  const again = useRef(false);
  const timer = useRef<number>();

  const run = useCallback(async () => {
    if (running.current) { again.current = true; return; }
    running.current = true;
    try {
      do {
        again.current = false;
        try { setData(await loadRef.current()); setError(undefined); } catch (e) { setError((e as Error).message); }
      } while (again.current);
    } finally { running.current = false; }
  }, []);

  useEffect(() => { void run(); }, deps); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    if (!live) return undefined;
    const unsubscribe = subscribe(change => {
      if (change !== null && !live(change)) return;
      if (timer.current !== undefined) return;
      timer.current = window.setTimeout(() => { timer.current = undefined; void run(); }, change === null ? 0 : 500);
    });
    return () => { unsubscribe(); if (timer.current !== undefined) window.clearTimeout(timer.current); timer.current = undefined; };
  }, [run, live !== undefined]); // eslint-disable-line react-hooks/exhaustive-deps

  return { data, error, reload: () => void run() };
}

export function useHashRoute(): string[] {
  const read = () => (location.hash.replace(/^#\/?/, '') || 'fleet').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const changed = () => setRoute(read());
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}

/**
 * A list of items with ids, kept current by live changes without fetching it whole again: the ids a change names are
 * collected for up to 500 ms, then fetched through loadSome (which applies the list's filters, so an item that no
 * longer matches is not returned and leaves the list); a reconnect, a change that says "more" or one naming more than
 * maxIds items loads the whole list.
 */
export function useLiveList<T extends { id: string }>(
  loadAll: () => Promise<T[]>, loadSome: (ids: string[]) => Promise<T[]>, deps: unknown[],
  live: (change: LiveChange) => boolean, maxIds = 200,
): Loaded<T[]> {
  const [data, setData] = useState<T[]>();
  const [error, setError] = useState<string>();
  const fns = useRef({ loadAll, loadSome });
  fns.current = { loadAll, loadSome };
  const pending = useRef<{ all: boolean; ids: Set<string> }>({ all: false, ids: new Set() });
  const running = useRef(false);
  const timer = useRef<number>();
  const generation = useRef(0);

  const flush = useCallback(async () => {
    if (running.current) return; // the running fetch flushes again when it ends
    running.current = true;
    try {
      while (pending.current.all || pending.current.ids.size > 0) {
        const { all, ids } = pending.current;
        pending.current = { all: false, ids: new Set() };
        const started = generation.current;
        try {
          if (all) {
            const list = await fns.current.loadAll();
            if (started === generation.current) setData(list);
          } else {
            const asked = [...ids];
            const got = await fns.current.loadSome(asked);
            if (started !== generation.current) continue; // the filters changed meanwhile: a full load is queued
            const byId = new Map(got.map(d => [d.id, d]));
            setData(current => {
              if (current === undefined) return current;
              const gone = new Set(asked.filter(id => !byId.has(id)));
              const next = current.filter(d => !gone.has(d.id)).map(d => byId.get(d.id) ?? d);
              const have = new Set(current.map(d => d.id));
              const added = got.filter(d => !have.has(d.id));
              if (added.length === 0) return next;
              return [...next, ...added].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
            });
          }
          setError(undefined);
        } catch (e) {
          setError((e as Error).message);
        }
      }
    } finally {
      running.current = false;
    }
  }, []);

  const queue = useCallback((change: LiveChange | null, delay: number) => {
    const next = pending.current;
    if (change === null || change.more === true) next.all = true;
    else change.ids.forEach(id => next.ids.add(id));
    if (next.ids.size > maxIds) next.all = true;
    if (next.all) next.ids.clear(); // a full load covers them
    if (timer.current !== undefined) return;
    timer.current = window.setTimeout(() => { timer.current = undefined; void flush(); }, delay);
  }, [flush, maxIds]);

  useEffect(() => {
    generation.current++;
    if (timer.current !== undefined) { window.clearTimeout(timer.current); timer.current = undefined; }
    queue(null, 0);
  }, deps); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    const unsubscribe = subscribe(change => {
      if (change !== null && !live(change)) return;
      queue(change, change === null ? 0 : 500);
    });
    return () => { unsubscribe(); if (timer.current !== undefined) window.clearTimeout(timer.current); timer.current = undefined; };
  }, [queue]); // eslint-disable-line react-hooks/exhaustive-deps

  return { data, error, reload: () => queue(null, 0) };
}

