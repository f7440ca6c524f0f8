export const num = (v: number | undefined | null, digits = 1): string => (v === undefined || v === null || !isFinite(v) ? '–' : v.toFixed(digits));
// One formatter for the page: formatting a date is cheap with it, and the fleet table formats one per row.
const stamp = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });
export const time = (iso: string | undefined | null): string => (iso ? stamp.format(new Date(iso)) : '–');
export function ago(iso: string | undefined | null): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}
