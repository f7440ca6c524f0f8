import { useRef, useState } from 'preact/hooks';
import { api, canAct, type DriftProfileInfo, type ModelSummary, type ModelVersionInfo, type SessionInfo, type StageHistoryEntry } from './api';
import { useLoad } from './hooks';
import { num, time } from './format';
import type { LiveChange } from './live';

// The stages a version can be moved to from the page; the registry allows any stage but the current one, and
// promoting to production archives the version that was there. The API has the last word (a 409 shows in the dialog).
const TARGETS: { stage: string; label: string; danger?: boolean }[] = [
  { stage: 'staging', label: 'To staging' },
  { stage: 'production', label: 'Promote to production' },
  { stage: 'archived', label: 'Archive', danger: true },
];

const about = (name: string) => (c: LiveChange) => c.kind === 'models' && (c.more === true || c.ids.includes(name));

function entries<T>(record: Record<string, T> | undefined): [string, T][] {
  return record ? Object.entries(record).sort(([a], [b]) => a.localeCompare(b)) : [];
}

/** Lineage of one version: what it came from and how it scored, as its metadata says. */
function Lineage({ v }: { v: ModelVersionInfo }) {
  const m = v.metadata ?? {};
  const metrics = entries(m.metrics), parameters = entries(m.parameters);
  return (
    <div class="card" data-testid={`lineage-${v.version}`}>
      <dl>
        <dt>version</dt><dd>{v.version} <span class={`pill stage-${v.stage}`}>{v.stage}</span></dd>
        {v.description && <><dt>description</dt><dd>{v.description}</dd></>}
        <dt>parent version</dt><dd data-field="parentVersion">{m.parentVersion ?? '–'}</dd>
        <dt>dataset</dt><dd data-field="datasetVersion">{m.datasetVersion ?? '–'}</dd>
        <dt>training run</dt><dd>{m.trainingRun ? <a href={m.trainingRun} rel="noreferrer noopener" target="_blank">{m.trainingRun}</a> : '–'}</dd>
        <dt>metrics</dt><dd data-field="metrics">{metrics.length ? metrics.map(([k, x]) => `${k} ${num(x, 3)}`).join(' · ') : '–'}</dd>
        <dt>parameters</dt><dd data-field="parameters">{parameters.length ? parameters.map(([k, x]) => `${k}=${x}`).join(' · ') : '–'}</dd>
        <dt>pushed</dt><dd>{time(v.createdAt)} by {v.createdBy ?? '?'}</dd>
        <dt>artifact</dt><dd class="muted">{(v.size / 1024).toFixed(0)} KiB, sha256 {v.sha256.slice(0, 16)}…</dd>
      </dl>
    </div>
  );
}

/** The reference drift profile's summary: which features it covers and on how many samples. */
function Profile({ name, version }: { name: string; version: string }) {
  const profile = useLoad(() => api<DriftProfileInfo>(`/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}/drift-profile`), [name, version], about(name));
  if (profile.error) return <div class="error">{profile.error}</div>;
  const p = profile.data;
  if (!p) return <p class="muted">Loading…</p>;
  return (
    <div data-testid={`profile-${version}`}>
      <p class="muted">profile <b>{p.id}</b>{p.source ? ` from ${p.source}` : ''}{p.createdAt ? `, built ${time(p.createdAt)}` : ''}: {p.features.length} features</p>
      <table>
        <thead><tr><th>feature</th><th>kind</th><th>samples</th><th>effective</th><th>mean</th><th>std</th><th>min</th><th>max</th><th>bins</th></tr></thead>
        <tbody>{p.features.map(f => (
          <tr key={f.name} data-feature={f.name}>
            <td>{f.name}</td><td>{f.kind ?? 'numeric'}</td><td class="num">{f.count}</td><td class="num">{num(f.effectiveCount, 0)}</td>
            {f.kind === 'categorical'
              ? <td colSpan={5} class="muted">{Object.keys(f.categories ?? {}).length} categories</td>
              : <><td class="num">{num(f.mean, 3)}</td><td class="num">{num(f.std, 3)}</td><td class="num">{num(f.min, 3)}</td><td class="num">{num(f.max, 3)}</td>
                <td class="num">{(f.edges?.length ?? 0) + 1}</td></>}
          </tr>
        ))}</tbody>
      </table>
    </div>
  );
}

function Model({ name, session }: { name: string; session: SessionInfo }) {
  const model = useLoad(() => api<ModelSummary>(`/models/${encodeURIComponent(name)}`), [name], about(name));
  const history = useLoad(() => api<StageHistoryEntry[]>(`/models/${encodeURIComponent(name)}/history`), [name], about(name));
  const [selected, setSelected] = useState<string>();
  const dialog = useRef<HTMLDialogElement>(null);
  const [pending, setPending] = useState<{ version: ModelVersionInfo; stage: string }>();
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  if (model.error) return <div class="error" role="alert">{model.error}</div>;
  const m = model.data;
  if (!m) return <p class="muted">Loading…</p>;
  const versions = m.versions ?? [];
  const current = versions.find(v => v.version === selected) ?? versions[0];
  const production = versions.find(v => v.stage === 'production');

  const ask = (version: ModelVersionInfo, stage: string) => { setPending({ version, stage }); setReason(''); setError(undefined); dialog.current?.showModal(); };
  const confirm = async (e: Event) => {
    e.preventDefault();
    if (!pending) return;
    setBusy(true);
    try {
      await api<ModelVersionInfo>(`/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(pending.version.version)}/stage`, 'POST',
        { stage: pending.stage, reason: reason || undefined });
      dialog.current?.close();
      model.reload();
      history.reload();
    } catch (err) { setError((err as Error).message); } finally { setBusy(false); }
  };

  return (
    <>
      <h2>{name}: versions and stages</h2>
      <table data-testid={`versions-${name}`}>
        <thead><tr><th>version</th><th>stage</th><th>task</th><th>parent</th><th>dataset</th><th>drift profile</th><th>pushed</th><th>by</th>{canAct(session.role) && <th>change stage</th>}</tr></thead>
        <tbody>{versions.map(v => (
          <tr key={v.version} data-version={v.version} class={v === current ? 'selected' : ''}>
            <td><a href={`#/models/${encodeURIComponent(name)}`} onClick={e => { e.preventDefault(); setSelected(v.version); }}>{v.version}</a></td>
            <td><span class={`pill stage-${v.stage}`} data-col="stage">{v.stage}</span></td><td>{v.task}</td>
            <td>{v.metadata?.parentVersion ?? '–'}</td><td>{v.metadata?.datasetVersion ?? '–'}</td><td>{v.hasDriftProfile ? 'yes' : 'no'}</td>
            <td>{time(v.createdAt)}</td><td>{v.createdBy ?? ''}</td>
            {canAct(session.role) && (
              <td class="stage-actions">{TARGETS.filter(t => t.stage !== v.stage).map(t => (
                <button key={t.stage} class={t.danger ? 'danger' : t.stage === 'production' ? 'primary' : ''} data-stage-action={t.stage} onClick={() => ask(v, t.stage)}>{t.label}</button>
              ))}</td>
            )}
          </tr>
        ))}</tbody>
      </table>
      {current && (
        <>
          <h2>Lineage of {current.version}</h2>
          <Lineage v={current} />
          <h2>Drift profile of {current.version}</h2>
          {current.hasDriftProfile ? <Profile name={name} version={current.version} />
            : <p class="muted" data-testid={`profile-${current.version}`}>No reference profile: each device takes its first window after activation as the baseline.</p>}
        </>
      )}
      <h2>Stage history</h2>
      <table data-testid={`history-${name}`}>
        <thead><tr><th>when</th><th>version</th><th>from</th><th>to</th><th>by</th><th>reason</th></tr></thead>
        <tbody>{[...(history.data ?? [])].reverse().map((h, i) => (
          <tr key={i} data-version={h.version} data-to={h.to}>
            <td>{time(h.at)}</td><td>{h.version}</td><td>{h.from || '(pushed)'}</td><td><span class={`pill stage-${h.to}`}>{h.to}</span></td><td>{h.by ?? ''}</td>
            <td style="white-space:normal">{h.reason ?? ''}</td>
          </tr>
        ))}</tbody>
      </table>
      <dialog ref={dialog} data-testid="stage-dialog">
        {pending && (
          <form onSubmit={confirm}>
            <p>Move <b>{name} {pending.version.version}</b> from <b>{pending.version.stage}</b> to <b>{pending.stage}</b>?</p>
            {pending.stage === 'production' && production && production.version !== pending.version.version &&
              <p class="muted">{production.version} leaves production and is archived. Devices that follow production (tag model={name}) get {pending.version.version}.</p>}
            <label>Reason (optional, goes to the stage history and the audit log)<textarea name="reason" rows={2} value={reason} onInput={e => setReason((e.target as HTMLTextAreaElement).value)} /></label>
            {error && <div class="error" role="alert" data-testid="stage-error">{error}</div>}
            <div class="actions">
              <button type="submit" class="primary" data-testid="stage-confirm" disabled={busy}>Confirm: {pending.stage}</button>
              <button type="button" onClick={() => dialog.current?.close()}>Cancel</button>
            </div>
          </form>
        )}
      </dialog>
    </>
  );
}

export function Models({ open, session }: { open?: string; session: SessionInfo }) {
  const models = useLoad(() => api<ModelSummary[]>('/models'), [], c => c.kind === 'models');
  return (
    <>
      <h1>Models</h1>
      {models.error && <div class="error" role="alert">{models.error}</div>}
      <table data-testid="models-table">
        <thead><tr><th>model</th><th>task</th><th>versions</th><th>production</th><th>staging</th><th>latest</th><th>updated</th></tr></thead>
        <tbody>{(models.data ?? []).map(m => (
          <tr key={m.name} data-model={m.name} class={m.name === open ? 'selected' : ''}>
            <td><a href={`#/models/${encodeURIComponent(m.name)}`}>{m.name}</a></td>
            <td>{m.task ?? ''}</td><td class="num">{m.versionCount}</td><td data-col="production">{m.productionVersion ?? '–'}</td>
            <td data-col="staging">{m.stagingVersions.join(', ') || '–'}</td><td>{m.latestVersion ?? '–'}</td><td>{time(m.updatedAt)}</td>
          </tr>
        ))}</tbody>
      </table>
      {(models.data ?? []).length === 0 && !models.error && <p class="muted">No models yet: push one with <code>edgefleet models push</code>.</p>}
      {open && <Model key={open} name={open} session={session} />}
    </>
  );
}
