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
