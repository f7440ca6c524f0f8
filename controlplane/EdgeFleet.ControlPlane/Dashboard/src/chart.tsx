// Small SVG charts of our own: a line chart (one polyline per series over a shared time axis) and a severity strip
// (one coloured cell per drift window). Each series' point count is also in the DOM (data-count), so tests and
// screen readers read the data, not pixels.
export interface Series { name: string; color: string; points: [number, number][] } // [unix ms, value]
export interface Threshold { value: number; label: string; color: string }

const W = 760, H = 220, PAD_L = 44, PAD_R = 10, PAD_T = 10, PAD_B = 22;

export const PALETTE = ['#2a62d8', '#c53030', '#1c8a4b', '#b7791f', '#7b3fc4', '#0f8a8a', '#d0488f', '#5a6478', '#8a5a1c', '#3b9ae1', '#6f9a1c', '#e0663a'];

function extent(values: number[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

export function LineChart({ series, unit, label, title, min, max, thresholds = [], digits }: {
  series: Series[]; unit: string; label: string; title?: string; min?: number; max?: number; thresholds?: Threshold[]; digits?: number;
}) {
  const count = series.reduce((n, s) => n + s.points.length, 0);
  if (count === 0) return <div class="chart muted" data-testid={`chart-${label}`} data-count="0" style="padding:1rem">{title ?? label}: no data in this range</div>;
  const [t0, t1] = extent(series.flatMap(s => s.points.map(p => p[0])));
  const [lo, hi] = extent(series.flatMap(s => s.points.map(p => p[1])).concat(thresholds.map(t => t.value)));
  const vMin = min ?? Math.min(0, lo);
  const vMax = max ?? (hi > vMin ? hi + (hi - vMin) * 0.1 : vMin + 1);
  const x = (t: number) => PAD_L + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (W - PAD_L - PAD_R);
  const y = (v: number) => PAD_T + (1 - (Math.min(Math.max(v, vMin), vMax) - vMin) / (vMax - vMin)) * (H - PAD_T - PAD_B);
  const d = digits ?? (vMax - vMin < 10 ? 2 : 0);
  return (
    <div class="chart" data-testid={`chart-${label}`} data-count={count}>
      <div class="title">{title ?? label} <span class="muted">({unit})</span></div>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label={`${label} (${unit})`}>
        {[0, 0.5, 1].map(f => {
          const v = vMin + (vMax - vMin) * f;
          return (
            <g key={f}>
              <line x1={PAD_L} x2={W - PAD_R} y1={y(v)} y2={y(v)} stroke="#e4e7ee" />
              <text class="axis" x={PAD_L - 4} y={y(v) + 3} text-anchor="end">{v.toFixed(d)}</text>
            </g>
          );
        })}
        {thresholds.map(t => (
          <g key={t.label}>
            <line x1={PAD_L} x2={W - PAD_R} y1={y(t.value)} y2={y(t.value)} stroke={t.color} stroke-dasharray="4 3" />
            <text class="axis" x={W - PAD_R - 2} y={y(t.value) - 3} text-anchor="end" style={`fill:${t.color}`}>{t.label}</text>
          </g>
        ))}
        <text class="axis" x={PAD_L} y={H - 6}>{new Date(t0).toLocaleTimeString()}</text>
        <text class="axis" x={W - PAD_R} y={H - 6} text-anchor="end">{new Date(t1).toLocaleTimeString()}</text>
        {series.map(s => (
          <g key={s.name}>
            <polyline data-series={s.name} data-count={s.points.length} fill="none" stroke={s.color} stroke-width="1.5"
              points={s.points.map(p => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')} />
            {s.points.length === 1 && <circle cx={x(s.points[0][0])} cy={y(s.points[0][1])} r="3" fill={s.color} />}
          </g>
        ))}
      </svg>
      <div class="legend">
        {series.map(s => <span key={s.name} style={`color:${s.color}`}>■ {s.name} ({s.points.length} points{s.points.length ? `, last ${s.points[s.points.length - 1][1].toFixed(d)}` : ''})</span>)}
      </div>
    </div>
  );
}

const SEVERITY_COLOR: Record<string, string> = { none: '#5bbf85', warn: '#e3a33a', alert: '#d64545' };

/** One cell per drift window, coloured by severity, at its time: where drift started and how long it lasted, at a glance. */
export function SeverityStrip({ windows, label }: { windows: { ts: number; severity: string; title: string }[]; label: string }) {
  if (windows.length === 0) return <div class="chart muted" data-testid={`strip-${label.replace(/ /g, '-')}`} data-count="0" style="padding:1rem">no drift reports in this range</div>;
  const [t0, t1] = extent(windows.map(w => w.ts));
  // Stretched to the width (preserveAspectRatio none): cells stay cells at any size, and the times are HTML below.
  const SW = 1000, SH = 30, cell = Math.max(2, Math.min(24, SW / windows.length));
  const x = (t: number) => (t1 === t0 ? (SW - cell) / 2 : ((t - t0) / (t1 - t0)) * (SW - cell));
  const counts: Record<string, number> = {};
  for (const w of windows) counts[w.severity] = (counts[w.severity] ?? 0) + 1;
  return (
    <div class="chart" data-testid={`strip-${label.replace(/ /g, '-')}`} data-count={windows.length}>
      <div class="title">{label} <span class="muted">(one cell per window)</span></div>
      <svg class="strip" viewBox={`0 0 ${SW} ${SH}`} width="100%" height="30" preserveAspectRatio="none" role="img"
        aria-label={`${label}: ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ')}`}>
        {windows.map(w => (
          <rect key={w.ts + w.title} data-severity={w.severity} x={x(w.ts)} y={0} width={cell} height={SH} fill={SEVERITY_COLOR[w.severity] ?? '#c9ced8'}>
            <title>{w.title}</title>
          </rect>
        ))}
      </svg>
      <div class="span axis"><span>{new Date(t0).toLocaleTimeString()}</span><span>{new Date(t1).toLocaleTimeString()}</span></div>
      <div class="legend">
        {['none', 'warn', 'alert'].map(s => <span key={s} data-severity-count={s} style={`color:${SEVERITY_COLOR[s]}`}>■ {s} {counts[s] ?? 0}</span>)}
      </div>
    </div>
  );
}
