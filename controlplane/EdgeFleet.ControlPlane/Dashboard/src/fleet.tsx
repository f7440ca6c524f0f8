import { useState } from 'preact/hooks';
import { api, q, type DeviceInfo, type DeploymentInfo, type EventInfo, type Page, type SessionInfo, type TelemetryPoint } from './api';
import { useLoad } from './hooks';
import { ago, num, time } from './format';
import { LineChart } from './chart';

export function Fleet() {
  const [tag, setTag] = useState('');
  const [group, setGroup] = useState('');
  const [online, setOnline] = useState('');
  const devices = useLoad(() => api<DeviceInfo[]>('/devices' + q({ tag, group, online })), [tag, group, online], c => c.kind === 'devices');
  const list = devices.data ?? [];
  const input = (value: string, set: (v: string) => void, name: string, placeholder: string) => (
    <label>{name}<input name={name} value={value} placeholder={placeholder} onChange={e => set((e.target as HTMLInputElement).value.trim())} /></label>
  );
  return (
    <>
      <h1>Fleet</h1>
      <div class="filters">
        {input(tag, setTag, 'tag', 'key or key=value')}
        {input(group, setGroup, 'group', 'group name')}
        <label>online
          <select name="online" value={online} onChange={e => setOnline((e.target as HTMLSelectElement).value)}>
            <option value="">all</option><option value="true">online</option><option value="false">offline</option>
          </select>
        </label>
      </div>
      {devices.error && <div class="error" role="alert">{devices.error}</div>}
      <div class="counts" data-testid="fleet-counts">
        <span>devices <b data-testid="count-total">{list.length}</b></span>
        <span>online <b data-testid="count-online">{list.filter(d => d.online).length}</b></span>
        <span>offline <b>{list.filter(d => !d.online && !d.revoked).length}</b></span>
        <span>revoked <b>{list.filter(d => d.revoked).length}</b></span>
        <span>drift alerts <b>{list.filter(d => d.health?.driftSeverity === 'alert').length}</b></span>
      </div>
      <table data-testid="fleet-table">
        <thead><tr><th>device</th><th>status</th><th>model</th><th>fps</th><th>p95 ms</th><th>temp °C</th><th>drift</th><th>OTA</th><th>tags</th><th>last seen</th></tr></thead>
        <tbody>
          {list.map(d => (
            <tr key={d.id} data-device={d.id}>
              <td><a href={`#/devices/${encodeURIComponent(d.id)}`}>{d.id}</a></td>
              <td><span class={`pill ${d.revoked ? 'failed' : d.online ? 'online' : 'offline'}`}>{d.revoked ? 'revoked' : d.online ? 'online' : 'offline'}</span></td>
              <td data-col="model">{d.model ? `${d.model.name} ${d.model.version}` : '–'}</td>
              <td class="num" data-col="fps">{num(d.health?.fps)}</td>
              <td class="num">{num(d.health?.latencyP95Ms)}</td>
              <td class="num">{num(d.health?.temperatureC)}</td>
              <td>{d.health?.driftSeverity ? <span class={`pill ${d.health.driftSeverity}`}>{d.health.driftSeverity}</span> : '–'}</td>
              <td>{d.ota ? <span class={`pill ${d.ota.state}`}>{d.ota.state} {d.ota.version ?? ''}</span> : '–'}</td>
              <td class="muted">{d.tags.join(', ')}</td>
              <td title={time(d.lastSeen)}>{ago(d.lastSeen)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.length === 0 && !devices.error && <p class="muted">No devices match.</p>}
    </>
  );
}

const RANGES: Record<string, number> = { '15m': 15, '1h': 60, '6h': 360, '24h': 1440, '7d': 10080 };

export function Device({ id }: { id: string; session: SessionInfo }) {
  const [range, setRange] = useState('15m');
  const mine = (c: { kind: string; ids: string[]; more?: boolean }) => c.kind === 'devices' && (c.more === true || c.ids.includes(id));
  const device = useLoad(() => api<DeviceInfo>(`/devices/${encodeURIComponent(id)}`), [id], mine);
  const telemetry = useLoad(() => {
    const minutes = RANGES[range] ?? 15;
    const from = new Date(Date.now() - minutes * 60_000).toISOString();
    return api<Page<TelemetryPoint>>(`/devices/${encodeURIComponent(id)}/telemetry` + q({ from, resolution: minutes > 60 ? '1m' : 'raw', limit: 2000 }));
  }, [id, range], mine);
  const events = useLoad(() => api<Page<EventInfo>>(`/devices/${encodeURIComponent(id)}/events` + q({ type: 'update.', order: 'desc', limit: 20 })), [id], mine);
  const history = useLoad(() => api<DeploymentInfo[]>(`/devices/${encodeURIComponent(id)}/history` + q({ limit: 20 })), [id]);
  const d = device.data;
  const points = telemetry.data?.items ?? [];
  const series = (pick: (p: TelemetryPoint) => number | undefined) =>
    points.filter(p => pick(p) !== undefined && pick(p) !== null).map(p => [new Date(p.ts).getTime(), pick(p)!] as [number, number]);
  return (
    <>
      <h1>Device <span data-testid="device-id">{id}</span></h1>
      {device.error && <div class="error" role="alert">{device.error}</div>}
      {d && (
        <div class="grid">
          <div class="card"><dl>
            <dt>status</dt><dd><span class={`pill ${d.online ? 'online' : 'offline'}`}>{d.revoked ? 'revoked' : d.online ? 'online' : 'offline'}</span></dd>
            <dt>model</dt><dd>{d.model ? `${d.model.name} ${d.model.version}` : '–'}</dd>
            <dt>agent</dt><dd>{d.agentVersion ?? '–'}</dd>
            <dt>last seen</dt><dd>{time(d.lastSeen)}</dd>
            <dt>enrolled</dt><dd>{time(d.enrolledAt)}</dd>
            <dt>messages</dt><dd>{d.messagesReceived} received, {d.messagesLost} lost</dd>
            <dt>tags</dt><dd data-testid="device-tags">{d.tags.join(', ') || '–'}</dd>
          </dl></div>
          <div class="card"><dl>
            <dt>OTA state</dt><dd data-testid="ota-state">{d.ota ? `${d.ota.state} ${d.ota.model ?? ''} ${d.ota.version ?? ''}` : '–'}</dd>
            {d.ota?.reason && <><dt>reason</dt><dd>{d.ota.reason}</dd></>}
            <dt>desired</dt><dd>{d.desired ? `${d.desired.model} ${d.desired.version} (${d.desired.mode})` : '–'}</dd>
            <dt>fps</dt><dd>{num(d.health?.fps)}</dd>
            <dt>p95</dt><dd>{num(d.health?.latencyP95Ms)} ms</dd>
            <dt>temperature</dt><dd>{num(d.health?.temperatureC)} °C</dd>
            <dt>drift</dt><dd>{d.health?.driftSeverity ?? '–'}</dd>
          </dl></div>
        </div>
      )}
      <h2>Telemetry <select name="range" value={range} onChange={e => setRange((e.target as HTMLSelectElement).value)}>
        {Object.keys(RANGES).map(r => <option key={r} value={r}>last {r}</option>)}
      </select></h2>
      {telemetry.error && <div class="error" role="alert">{telemetry.error}</div>}
      <LineChart label="fps" unit="frames/s" series={[{ name: 'fps', color: '#2a62d8', points: series(p => p.fps) }]} />
      <LineChart label="latency" unit="ms" series={[
        { name: 'p50', color: '#1c8a4b', points: series(p => p.latencyP50Ms) },
        { name: 'p95', color: '#c53030', points: series(p => p.latencyP95Ms) },
      ]} />
      <h2>Recent update events</h2>
      <table data-testid="device-events">
        <thead><tr><th>time</th><th>type</th><th>message</th></tr></thead>
        <tbody>{(events.data?.items ?? []).map(e => <tr key={e.seq}><td>{time(e.ts)}</td><td>{e.type}</td><td>{e.message ?? ''}</td></tr>)}</tbody>
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
