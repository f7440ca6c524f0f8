import { useMemo, useState } from 'preact/hooks';
import { api, q, type DeviceInfo } from './api';
import { useLiveList } from './hooks';
import { ago, num, time } from './format';

// Sortable columns: each a key function computed once per device per sort (no per-row work beyond the table itself).
const SEVERITY_RANK: Record<string, number> = { none: 0, warn: 1, alert: 2 };
const COLUMNS: { key: string; label: string; value: (d: DeviceInfo) => string | number | undefined; num?: boolean }[] = [
  { key: 'device', label: 'device', value: d => d.id },
  { key: 'status', label: 'status', value: d => (d.revoked ? 2 : d.online ? 0 : 1) },
  { key: 'model', label: 'model', value: d => (d.model ? `${d.model.name} ${d.model.version}` : undefined) },
  { key: 'fps', label: 'fps', value: d => d.health?.fps, num: true },
  { key: 'p95', label: 'p95 ms', value: d => d.health?.latencyP95Ms, num: true },
  { key: 'temp', label: 'temp °C', value: d => d.health?.temperatureC, num: true },
  { key: 'drift', label: 'drift', value: d => (d.health?.driftSeverity ? SEVERITY_RANK[d.health.driftSeverity] : undefined) },
  { key: 'ota', label: 'OTA', value: d => d.ota?.state },
  { key: 'tags', label: 'tags', value: d => d.tags.join(',') },
  { key: 'seen', label: 'last seen', value: d => (d.lastSeen ? Date.parse(d.lastSeen) : undefined) },
];

function sortDevices(list: DeviceInfo[], key: string, descending: boolean): DeviceInfo[] {
  const column = COLUMNS.find(c => c.key === key) ?? COLUMNS[0];
  const keyed = list.map(d => ({ d, v: column.value(d) }));
  const sign = descending ? -1 : 1;
  keyed.sort((a, b) => {
    // Devices without a value go last whichever the direction; ties keep the id order.
    if (a.v === undefined || b.v === undefined) return a.v === b.v ? a.d.id.localeCompare(b.d.id) : a.v === undefined ? 1 : -1;
    const c = typeof a.v === 'number' && typeof b.v === 'number' ? a.v - b.v : String(a.v).localeCompare(String(b.v));
    return c !== 0 ? sign * c : a.d.id.localeCompare(b.d.id);
  });
  return keyed.map(k => k.d);
}

export function Fleet() {
  const [tag, setTag] = useState('');
  const [group, setGroup] = useState('');
  const [online, setOnline] = useState('');
  // Live changes fetch only the devices they name (with the same filters), not the whole fleet again.
  const devices = useLiveList(() => api<DeviceInfo[]>('/devices' + q({ tag, group, online })),
    ids => api<DeviceInfo[]>('/devices' + q({ tag, group, online, ids: ids.join(',') })), [tag, group, online], c => c.kind === 'devices');
  const [sort, setSort] = useState<{ key: string; descending: boolean }>({ key: 'device', descending: false });
  const all = devices.data ?? [];
  const list = useMemo(() => (sort.key === 'device' && !sort.descending ? all : sortDevices(all, sort.key, sort.descending)), [all, sort]);
  const counts = useMemo(() => {
    const c = { online: 0, offline: 0, revoked: 0, alerts: 0 };
    for (const d of all) {
      if (d.revoked) c.revoked++; else if (d.online) c.online++; else c.offline++;
      if (d.health?.driftSeverity === 'alert') c.alerts++;
    }
    return c;
  }, [all]);
  const sortBy = (key: string) => setSort(s => ({ key, descending: s.key === key ? !s.descending : false }));
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
        <span>online <b data-testid="count-online">{counts.online}</b></span>
        <span>offline <b>{counts.offline}</b></span>
        <span>revoked <b>{counts.revoked}</b></span>
        <span>drift alerts <b>{counts.alerts}</b></span>
      </div>
      <table data-testid="fleet-table">
        <thead><tr>{COLUMNS.map(c => (
          <th key={c.key} class="sortable" data-sort={c.key} aria-sort={sort.key === c.key ? (sort.descending ? 'descending' : 'ascending') : 'none'} onClick={() => sortBy(c.key)}>
            {c.label}{sort.key === c.key ? (sort.descending ? ' ▼' : ' ▲') : ''}
          </th>
        ))}</tr></thead>
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
              <td class="muted" data-col="tags">{d.tags.join(', ')}</td>
              <td title={time(d.lastSeen)}>{ago(d.lastSeen)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.length === 0 && !devices.error && <p class="muted">No devices match.</p>}
    </>
  );
}
