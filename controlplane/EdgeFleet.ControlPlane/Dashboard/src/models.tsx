import { useState } from 'preact/hooks';
import { api, type ModelSummary } from './api';
import { useLoad } from './hooks';
import { time } from './format';

function Versions({ name }: { name: string }) {
  const model = useLoad(() => api<ModelSummary>(`/models/${encodeURIComponent(name)}`), [name]);
  if (model.error) return <div class="error">{model.error}</div>;
  return (
    <table data-testid={`versions-${name}`}>
      <thead><tr><th>version</th><th>stage</th><th>task</th><th>size</th><th>sha256</th><th>drift profile</th><th>pushed</th><th>by</th></tr></thead>
      <tbody>{(model.data?.versions ?? []).map(v => (
        <tr key={v.version}><td>{v.version}</td><td><span class={`pill ${v.stage === 'production' ? 'online' : ''}`}>{v.stage}</span></td><td>{v.task}</td>
          <td class="num">{(v.size / 1024).toFixed(0)} KiB</td><td class="muted">{v.sha256.slice(0, 12)}…</td><td>{v.hasDriftProfile ? 'yes' : 'no'}</td>
          <td>{time(v.createdAt)}</td><td>{v.createdBy ?? ''}</td></tr>
      ))}</tbody>
    </table>
  );
}

export function Models() {
  const models = useLoad(() => api<ModelSummary[]>('/models'), []);
  const [open, setOpen] = useState<string>();
  return (
    <>
      <h1>Models</h1>
      {models.error && <div class="error" role="alert">{models.error}</div>}
      <table data-testid="models-table">
        <thead><tr><th>model</th><th>task</th><th>versions</th><th>production</th><th>staging</th><th>latest</th><th>updated</th></tr></thead>
        <tbody>{(models.data ?? []).map(m => (
          <tr key={m.name}>
            <td><a href="#/models" onClick={e => { e.preventDefault(); setOpen(open === m.name ? undefined : m.name); }}>{m.name}</a></td>
            <td>{m.task ?? ''}</td><td class="num">{m.versionCount}</td><td>{m.productionVersion ?? '–'}</td>
            <td>{m.stagingVersions.join(', ') || '–'}</td><td>{m.latestVersion ?? '–'}</td><td>{time(m.updatedAt)}</td>
          </tr>
        ))}</tbody>
      </table>
      {open && <><h2>{open}: versions and stages</h2><Versions name={open} /></>}
    </>
  );
}
