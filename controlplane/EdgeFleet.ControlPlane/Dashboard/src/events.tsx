import { useState } from 'preact/hooks';
import { api, q, type EventInfo, type Page } from './api';
import { useLoad } from './hooks';
import { time } from './format';

export function Events() {
  const [device, setDevice] = useState('');
  const [type, setType] = useState('');
  const events = useLoad(() => api<Page<EventInfo>>('/events' + q({ device, type, order: 'desc', limit: 200 })), [device, type], c => c.kind === 'devices');
  return (
    <>
      <h1>Events</h1>
      <div class="filters">
        <label>device<input name="device" value={device} onChange={e => setDevice((e.target as HTMLInputElement).value.trim())} /></label>
        <label>type<input name="type" value={type} placeholder="update., camera, model" onChange={e => setType((e.target as HTMLInputElement).value.trim())} /></label>
      </div>
      {events.error && <div class="error" role="alert">{events.error}</div>}
      <table data-testid="events-table">
        <thead><tr><th>time</th><th>device</th><th>type</th><th>level</th><th>message</th></tr></thead>
        <tbody>{(events.data?.items ?? []).map(e => (
          <tr key={`${e.deviceId}:${e.seq}`}><td>{time(e.ts)}</td><td><a href={`#/devices/${encodeURIComponent(e.deviceId)}`}>{e.deviceId}</a></td>
            <td>{e.type}</td><td>{e.level ?? ''}</td><td>{e.message ?? ''}</td></tr>
        ))}</tbody>
      </table>
    </>
  );
}
