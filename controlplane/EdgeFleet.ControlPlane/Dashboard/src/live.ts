// One EventSource on /api/v1/live for the whole page: 'hello' (connected: fetch everything), 'devices', 'rollouts', 'models'.
export interface LiveChange { kind: string; ids: string[]; more?: boolean }
type Listener = (change: LiveChange | null) => void; // null: (re)connected, fetch all

const listeners = new Set<Listener>();
let source: EventSource | null = null;
let statusListener: (connected: boolean) => void = () => {};

export function onLiveStatus(listener: (connected: boolean) => void): void { statusListener = listener; }

export function startLive(): void {
  if (source) return;
  source = new EventSource('/api/v1/live');
  source.addEventListener('hello', () => { statusListener(true); listeners.forEach(l => l(null)); });
  for (const kind of ['devices', 'rollouts', 'models']) {
    source.addEventListener(kind, event => {
      const change = JSON.parse((event as MessageEvent<string>).data) as LiveChange;
      listeners.forEach(l => l(change));
    });
  }
  source.onerror = () => statusListener(false); // EventSource reconnects by itself
}

export function stopLive(): void { source?.close(); source = null; statusListener(false); }

export function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
