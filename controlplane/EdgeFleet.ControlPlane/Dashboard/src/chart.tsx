// A small SVG line chart: one polyline per series over a shared time axis. Each series' points are also in the DOM
// (data-count, data-values), so tests and screen readers read the data, not pixels.
export interface Series { name: string; color: string; points: [number, number][] } // [unix ms, value]

const W = 760, H = 220, PAD_L = 44, PAD_R = 10, PAD_T = 10, PAD_B = 22;

export function LineChart({ series, unit, label }: { series: Series[]; unit: string; label: string }) {
  const all = series.flatMap(s => s.points);
  if (all.length === 0) return <div class="chart muted" data-testid={`chart-${label}`} data-count="0" style="padding:1rem">no data in this range</div>;
  const t0 = Math.min(...all.map(p => p[0])), t1 = Math.max(...all.map(p => p[0]));
  const vMax = Math.max(...all.map(p => p[1])) * 1.1 || 1;
  const x = (t: number) => PAD_L + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (W - PAD_L - PAD_R);
  const y = (v: number) => PAD_T + (1 - v / vMax) * (H - PAD_T - PAD_B);
  return (
    <div class="chart" data-testid={`chart-${label}`} data-count={all.length}>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label={`${label} (${unit})`}>
        {[0, 0.5, 1].map(f => (
          <g key={f}>
            <line x1={PAD_L} x2={W - PAD_R} y1={y(vMax * f)} y2={y(vMax * f)} stroke="#e4e7ee" />
            <text class="axis" x={PAD_L - 4} y={y(vMax * f) + 3} text-anchor="end">{(vMax * f).toFixed(vMax < 10 ? 1 : 0)}</text>
          </g>
        ))}
        <text class="axis" x={PAD_L} y={H - 6}>{new Date(t0).toLocaleTimeString()}</text>
        <text class="axis" x={W - PAD_R} y={H - 6} text-anchor="end">{new Date(t1).toLocaleTimeString()}</text>
        {series.map(s => (
          <polyline key={s.name} data-series={s.name} data-count={s.points.length} fill="none" stroke={s.color} stroke-width="1.5"
            points={s.points.map(p => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')} />
        ))}
      </svg>
      <div class="legend">
        {series.map(s => <span key={s.name} style={`color:${s.color}`}>■ {s.name} ({unit}, {s.points.length} points)</span>)}
      </div>
    </div>
  );
}
