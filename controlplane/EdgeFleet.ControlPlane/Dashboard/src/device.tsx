import { useState } from 'preact/hooks';
import {
  api, canAct, q, type DeviceInfo, type DeploymentInfo, type DriftReportInfo, type EventInfo, type FeatureDriftInfo, type Page, type SessionInfo, type TelemetryPoint,
} from './api';
import { useLoad } from './hooks';
import { num, time } from './format';
import { LineChart, PALETTE, SeverityStrip, type Series } from './chart';

const RANGES: Record<string, number> = { '15m': 15, '1h': 60, '6h': 360, '24h': 1440, '7d': 10080 };
const GIB = 1024 ** 3;

const finite = (v: number | string | undefined | null): number | undefined => (typeof v === 'number' && isFinite(v) ? v : undefined);

/** The device's tags, with add and remove controls for an operator or admin (PUT /devices/{id}/tags); a viewer sees only the tags. */
function Tags({ device, session, changed }: { device: DeviceInfo; session: SessionInfo; changed: () => void }) {
  const [tag, setTag] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const editable = canAct(session.role);
  const change = async (body: { add?: string[]; remove?: string[] }) => {
    setBusy(true);
    try {
      await api<DeviceInfo>(`/devices/${encodeURIComponent(device.id)}/tags`, 'PUT', { add: body.add ?? [], remove: body.remove ?? [] });
      setError(undefined);
      setTag('');
      changed();
    } catch (err) { setError((err as Error).message); } finally { setBusy(false); }
  };
  const add = (e: Event) => {
    e.preventDefault();
    const tags = tag.split(',').map(t => t.trim()).filter(t => t);
    if (tags.length) void change({ add: tags });
  };
  return (
    <>
      <span data-testid="device-tags">
        {device.tags.length === 0 && '–'}
        {device.tags.map(t => (
          <span key={t} class="pill tag" data-tag={t}>{t}
            {editable && <button type="button" class="x" title={`remove ${t}`} aria-label={`remove tag ${t}`} data-remove-tag={t} disabled={busy} onClick={() => void change({ remove: [t] })}>×</button>}
          </span>
        ))}
      </span>
      {editable && (
        <form class="tag-editor" data-testid="tag-editor" onSubmit={add}>
          <input name="new-tag" value={tag} placeholder="key or key=value" aria-label="new tag" onInput={e => setTag((e.target as HTMLInputElement).value)} />
          <button type="submit" data-testid="tag-add" disabled={busy || !tag.trim()}>Add tag</button>
        </form>
      )}
      {error && <div class="error" role="alert" data-testid="tag-error">{error}</div>}
    </>
  );
}

/** Severity over time and each feature's PSI per window, with the warn/alert levels; the newest window's features as a table. */
function Drift({ reports }: { reports: DriftReportInfo[] }) {
  const windows = reports.map(r => ({
    ts: new Date(r.ts).getTime(), severity: r.severity,
    title: `${time(r.ts)}: ${r.severity}, ${r.windowFrames} frames${r.modelVersion ? `, ${r.model} ${r.modelVersion}` : ''}`,
  }));
  const byFeature = new Map<string, [number, number][]>();
  for (const r of reports) {
    const t = new Date(r.ts).getTime();
    for (const f of r.report?.features ?? []) {
      const psi = finite(f.psi);
      if (psi === undefined) continue;
      let points = byFeature.get(f.name);
      if (!points) byFeature.set(f.name, points = []);
      points.push([t, psi]);
    }
  }
  // The six features that moved most, so the chart stays readable; every feature is in the table.
  const all = [...byFeature.entries()].map(([name, points]) => ({ name, points, peak: Math.max(...points.map(p => p[1])) }))
    .sort((a, b) => b.peak - a.peak || a.name.localeCompare(b.name));
  const ranked = all.slice(0, Math.min(6, PALETTE.length));
  const series: Series[] = ranked.map((f, i) => ({ name: f.name, color: PALETTE[i], points: f.points }));
  const newest = reports.length ? reports[reports.length - 1] : undefined;
  const features: FeatureDriftInfo[] = [...(newest?.report?.features ?? [])].sort((a, b) => (finite(b.psi) ?? 0) - (finite(a.psi) ?? 0));
  return (
    <div data-testid="drift" data-count={reports.length}>
      <SeverityStrip label="drift severity" windows={windows} />
      <div class="charts">
        <LineChart label="drift-psi" title={all.length > ranked.length ? `drift score, the ${ranked.length} features that moved most` : 'drift score'}
          unit="PSI per window" series={series} min={0}
          thresholds={[{ value: 0.1, label: 'warn 0.1', color: '#b7791f' }, { value: 0.25, label: 'alert 0.25', color: '#c53030' }]} />
        <div class="muted note">
          <p>A window's severity is its worst feature's: <b>warn</b> or <b>alert</b> once the feature's PSI passes the level
            (dashed lines) <i>and</i> its test stays significant after the correction across features, so a small window with a
            high PSI can still be <b>none</b>.</p>
          <p>{reports.length} windows in this range: {['none', 'warn', 'alert'].map(k => `${windows.filter(w => w.severity === k).length} ${k}`).join(', ')}.</p>
        </div>
      </div>
      {newest && (
        <>
          <p class="muted">Newest window {time(newest.ts)}: <span class={`pill ${newest.severity}`}>{newest.severity}</span>, {newest.windowFrames} frames
            {newest.report?.referenceId ? `, against ${newest.report.referenceId}` : ''}</p>
          <table data-testid="drift-features">
            <thead><tr><th>feature</th><th>kind</th><th>PSI</th><th>JS distance</th><th>p (adjusted)</th><th>samples (ref / window)</th><th>severity</th></tr></thead>
            <tbody>{features.map(f => (
              <tr key={f.name} data-feature={f.name}>
                <td>{f.name}</td><td>{f.kind ?? ''}</td><td class="num">{num(finite(f.psi), 3)}</td><td class="num">{num(finite(f.jsDistance), 3)}</td>
                <td class="num">{num(finite(f.pValueAdjusted), 3)}</td><td class="num">{f.n ? `${f.n.baseline} / ${f.n.current}` : '–'}</td>
                <td>{f.severity ? <span class={`pill ${f.severity}`}>{f.severity}</span> : '–'}</td>
              </tr>
            ))}</tbody>
          </table>
        </>
      )}
    </div>
  );
}

export function Device({ id, session }: { id: string; session: SessionInfo }) {
  const [range, setRange] = useState('15m');
  const mine = (c: { kind: string; ids: string[]; more?: boolean }) => c.kind === 'devices' && (c.more === true || c.ids.includes(id));
  const minutes = RANGES[range] ?? 15;
  const from = () => new Date(Date.now() - minutes * 60_000).toISOString();
  const device = useLoad(() => api<DeviceInfo>(`/devices/${encodeURIComponent(id)}`), [id], mine);
  const telemetry = useLoad(() => api<Page<TelemetryPoint>>(`/devices/${encodeURIComponent(id)}/telemetry` +
    q({ from: from(), resolution: minutes > 60 ? '1m' : 'raw', limit: 2000 })), [id, range], mine);
  const drift = useLoad(() => api<Page<DriftReportInfo>>(`/devices/${encodeURIComponent(id)}/drift` + q({ from: from(), limit: 1000 })), [id, range], mine);
  const events = useLoad(() => api<Page<EventInfo>>(`/devices/${encodeURIComponent(id)}/events` + q({ type: 'update.,shadow.', order: 'desc', limit: 20 })), [id], mine);
  const history = useLoad(() => api<DeploymentInfo[]>(`/devices/${encodeURIComponent(id)}/history` + q({ limit: 20 })), [id], mine);
  const d = device.data;
  const points = telemetry.data?.items ?? [];
  const series = (pick: (p: TelemetryPoint) => number | undefined, scale = 1): [number, number][] => {
    const out: [number, number][] = [];
    for (const p of points) {
      const v = pick(p);
      if (typeof v === 'number' && isFinite(v)) out.push([new Date(p.ts).getTime(), v * scale]);
    }
    return out;
  };
  return (
    <>
      <h1>Device <span data-testid="device-id">{id}</span></h1>
      {device.error && <div class="error" role="alert">{device.error}</div>}
      {d && (
        <div class="grid">
          <div class="card"><dl>
            <dt>status</dt><dd><span class={`pill ${d.revoked ? 'failed' : d.online ? 'online' : 'offline'}`} data-testid="device-status">{d.revoked ? 'revoked' : d.online ? 'online' : 'offline'}</span></dd>
            <dt>model</dt><dd>{d.model ? `${d.model.name} ${d.model.version}` : '–'}</dd>
            <dt>agent</dt><dd>{d.agentVersion ?? '–'}</dd>
            <dt>last seen</dt><dd>{time(d.lastSeen)}</dd>
            <dt>enrolled</dt><dd>{time(d.enrolledAt)}</dd>
            <dt>messages</dt><dd>{d.messagesReceived} received, {d.messagesLost} lost</dd>
            <dt>tags</dt><dd><Tags device={d} session={session} changed={device.reload} /></dd>
          </dl></div>
          <div class="card"><dl>
            <dt>OTA state</dt><dd data-testid="ota-state">{d.ota ? `${d.ota.state} ${d.ota.model ?? ''} ${d.ota.version ?? ''}` : '–'}</dd>
            {d.ota?.reason && <><dt>reason</dt><dd>{d.ota.reason}</dd></>}
            <dt>desired</dt><dd>{d.desired ? `${d.desired.model} ${d.desired.version} (${d.desired.mode})` : '–'}</dd>
            <dt>fps</dt><dd>{num(d.health?.fps)}</dd>
            <dt>p95</dt><dd>{num(d.health?.latencyP95Ms)} ms</dd>
            <dt>CPU</dt><dd>{num(d.health?.cpuPercent)} %</dd>
            <dt>memory</dt><dd>{d.health?.memUsedBytes ? `${num(d.health.memUsedBytes / GIB, 2)} GiB` : '–'}</dd>
            <dt>temperature</dt><dd>{num(d.health?.temperatureC)} °C</dd>
            <dt>drift</dt><dd>{d.health?.driftSeverity ? <span class={`pill ${d.health.driftSeverity}`}>{d.health.driftSeverity}</span> : '–'}</dd>
          </dl></div>
        </div>
      )}
      <h2>Telemetry <select name="range" value={range} onChange={e => setRange((e.target as HTMLSelectElement).value)}>
        {Object.keys(RANGES).map(r => <option key={r} value={r}>last {r}</option>)}
      </select> <span class="muted" style="font-weight:normal;font-size:.85rem">{minutes > 60 ? '1-minute rollups' : 'raw points'}</span></h2>
      {telemetry.error && <div class="error" role="alert">{telemetry.error}</div>}
      {telemetry.data === undefined && !telemetry.error && <p class="muted" data-loading="telemetry">loading telemetry…</p>}
      <div class="charts">
        <LineChart label="fps" unit="frames/s" min={0} series={[{ name: 'fps', color: '#2a62d8', points: series(p => p.fps) }]} />
        <LineChart label="latency" unit="ms" min={0} series={[
          { name: 'p50', color: '#1c8a4b', points: series(p => p.latencyP50Ms) },
          { name: 'p95', color: '#c53030', points: series(p => p.latencyP95Ms) },
        ]} />
        <LineChart label="cpu" unit="% of the machine" min={0} max={100} digits={0} series={[{ name: 'cpu', color: '#7b3fc4', points: series(p => p.cpuPercent) }]} />
        <LineChart label="memory" unit="GiB in use" min={0} series={[{ name: 'memory', color: '#0f8a8a', points: series(p => p.memUsedBytes, 1 / GIB) }]} />
        <LineChart label="temperature" unit="°C, hottest zone" digits={0} series={[{ name: 'temperature', color: '#e0663a', points: series(p => p.temperatureC) }]} />
      </div>
      <h2>Drift</h2>
      {drift.error && <div class="error" role="alert">{drift.error}</div>}
      {drift.data === undefined && !drift.error
        ? <p class="muted" data-loading="drift">loading drift reports…</p>
        : <Drift reports={drift.data?.items ?? []} />}
      <h2>Recent update events</h2>
      <table data-testid="device-events">
        <thead><tr><th>time</th><th>type</th><th>model</th><th>message</th></tr></thead>
        <tbody>{(events.data?.items ?? []).map(e => (
          <tr key={e.seq}><td>{time(e.ts)}</td><td>{e.type}</td><td>{e.data?.model ? `${e.data.model} ${e.data.version ?? ''}` : ''}</td><td>{e.message ?? ''}</td></tr>
        ))}</tbody>
      </table>
      <h2>Deployment history</h2>
      <table data-testid="device-history">
        <thead><tr><th>model</th><th>version</th><th>from</th><th>to</th><th>rollout</th></tr></thead>
        <tbody>{(history.data ?? []).map(h => (
          <tr key={h.from}><td>{h.model}</td><td>{h.version}</td><td>{time(h.from)}</td><td>{h.to ? time(h.to) : 'now'}</td>
            <td>{h.rolloutId ? <a href={`#/rollouts/${h.rolloutId}`}>{h.rolloutId}</a> : '–'}</td></tr>
        ))}</tbody>
      </table>
    </>
  );
}
