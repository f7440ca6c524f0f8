import { useRef, useState } from 'preact/hooks';
import { api, canAct, q, type RolloutInfo, type SessionInfo } from './api';
import { useLoad } from './hooks';
import { time } from './format';

export function Rollouts() {
  const [state, setState] = useState('');
  const rollouts = useLoad(() => api<RolloutInfo[]>('/rollouts' + q({ state, limit: 200 })), [state], c => c.kind === 'rollouts');
  return (
    <>
      <h1>Rollouts</h1>
      <div class="filters"><label>state
        <select name="state" value={state} onChange={e => setState((e.target as HTMLSelectElement).value)}>
          {['', 'running', 'awaiting_approval', 'paused', 'rolling_back', 'succeeded', 'failed', 'aborted', 'rolled_back'].map(s => <option key={s} value={s}>{s || 'all'}</option>)}
        </select></label></div>
      {rollouts.error && <div class="error" role="alert">{rollouts.error}</div>}
      <table data-testid="rollouts-table">
        <thead><tr><th>rollout</th><th>model</th><th>state</th><th>stage</th><th>devices</th><th>succeeded</th><th>failed</th><th>created</th><th>by</th></tr></thead>
        <tbody>{(rollouts.data ?? []).map(r => (
          <tr key={r.id} data-rollout={r.id}>
            <td><a href={`#/rollouts/${r.id}`}>{r.id}</a></td><td>{r.model} {r.version}</td>
            <td><span class={`pill ${r.state}`} data-col="state">{r.state}</span></td><td>{r.stage + 1} / {r.stages.length}</td>
            <td class="num">{r.deviceCount}</td><td class="num">{r.counts['succeeded'] ?? 0}</td><td class="num">{(r.counts['failed'] ?? 0) + (r.counts['timed_out'] ?? 0)}</td>
            <td>{time(r.createdAt)}</td><td>{r.createdBy ?? ''}</td>
          </tr>
        ))}</tbody>
      </table>
    </>
  );
}

// The states each action is allowed in, as RolloutService checks them; the API has the last word (a 409 shows in the dialog).
const ACTIONS: { action: string; label: string; when: string[]; danger?: boolean }[] = [
  { action: 'approve', label: 'Approve', when: ['awaiting_approval', 'paused'] },
  { action: 'pause', label: 'Pause', when: ['running', 'awaiting_approval'] },
  { action: 'resume', label: 'Resume', when: ['paused'] },
  { action: 'retry', label: 'Retry failed', when: ['running', 'paused', 'awaiting_approval'] },
  { action: 'abort', label: 'Abort', when: ['running', 'paused', 'awaiting_approval'], danger: true },
  { action: 'rollback', label: 'Roll back', when: ['running', 'paused', 'awaiting_approval', 'failed', 'succeeded'], danger: true },
];

export function Rollout({ id, session }: { id: string; session: SessionInfo }) {
  const rollout = useLoad(() => api<RolloutInfo>(`/rollouts/${encodeURIComponent(id)}`), [id], c => c.kind === 'rollouts' && (c.more === true || c.ids.includes(id)));
  const dialog = useRef<HTMLDialogElement>(null);
  const [pending, setPending] = useState<string>();
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string>();
  const r = rollout.data;

  const ask = (action: string) => { setPending(action); setReason(''); setError(undefined); dialog.current?.showModal(); };
  const confirm = async (e: Event) => {
    e.preventDefault();
    if (!pending) return;
    try {
      await api<RolloutInfo>(`/rollouts/${encodeURIComponent(id)}/${pending}`, 'POST', { reason: reason || undefined });
      dialog.current?.close();
      rollout.reload();
    } catch (err) { setError((err as Error).message); }
  };

  if (rollout.error) return <div class="error" role="alert">{rollout.error}</div>;
  if (!r) return <p class="muted">Loading…</p>;
  const states = Object.entries(r.counts).filter(([, n]) => n > 0);
  return (
    <>
      <h1>Rollout {r.id}: {r.model} {r.version} <span class={`pill ${r.state}`} data-testid="rollout-state">{r.state}</span></h1>
      {r.reason && <p class="muted" data-testid="rollout-reason">{r.reason}</p>}
      <p class="muted">created {time(r.createdAt)} by {r.createdBy ?? '?'} · updated {time(r.updatedAt)}{r.finishedAt ? ` · finished ${time(r.finishedAt)}` : ''}</p>
      {canAct(session.role) && (
        <div class="actions" data-testid="rollout-actions">
          {ACTIONS.filter(a => a.when.includes(r.state)).map(a => (
            <button key={a.action} class={a.danger ? 'danger' : ''} data-action={a.action} onClick={() => ask(a.action)}>{a.label}</button>
          ))}
        </div>
      )}
      <h2>Devices by state</h2>
      <div class="counts" data-testid="rollout-counts">
        {states.length === 0 ? <span>none yet</span> : states.map(([s, n]) => <span key={s} data-state={s}>{s} <b>{n}</b></span>)}
        <span>total <b>{r.deviceCount}</b></span>
      </div>
      <h2>Stages</h2>
      <table data-testid="rollout-stages">
        <thead><tr><th>#</th><th>kind</th><th>target</th><th>devices</th><th>state</th><th>bake</th><th>approval</th><th>progress</th><th>started</th><th>finished</th></tr></thead>
        <tbody>{r.stages.map(s => (
          <tr key={s.index} data-stage={s.index}>
            <td>{s.index + 1}</td><td>{s.kind}</td><td class="num">{s.target}</td><td class="num">{s.devices}</td>
            <td><span class={`pill ${s.state}`}>{s.state}</span></td><td class="num">{s.bakeSeconds}s</td><td>{s.approval ? 'yes' : 'no'}</td>
            <td>{Object.entries(s.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || '–'}</td>
            <td>{time(s.startedAt)}</td><td>{time(s.finishedAt)}</td>
          </tr>
        ))}</tbody>
      </table>
      <h2>Gate verdicts</h2>
      <table data-testid="rollout-verdicts">
        <thead><tr><th>stage</th><th>gate</th><th>outcome</th><th>look</th><th>at</th><th>summary</th><th>evidence</th></tr></thead>
        <tbody>{r.verdicts.map(v => (
          <tr key={`${v.stage}:${v.gate}`}>
            <td>{v.stage + 1}</td><td>{v.gate}{v.dryRun ? ' (dry run)' : ''}</td><td><span class={`pill ${v.outcome}`}>{v.outcome}</span></td>
            <td class="num">{v.look}</td><td>{time(v.at)}</td><td style="white-space:normal">{v.summary ?? ''}</td>
            <td>{v.evidence !== undefined && <details><summary>evidence</summary><pre>{JSON.stringify(v.evidence, null, 2)}</pre></details>}</td>
          </tr>
        ))}</tbody>
      </table>
      {r.verdicts.length === 0 && <p class="muted">No gate has judged yet.</p>}
      <dialog ref={dialog} data-testid="confirm-dialog">
        <form onSubmit={confirm}>
          <p><b>{pending}</b> rollout {r.id} ({r.model} {r.version})?</p>
          <label>Reason (optional, goes to the audit log)<textarea name="reason" rows={2} value={reason} onInput={e => setReason((e.target as HTMLTextAreaElement).value)} /></label>
          {error && <div class="error" role="alert">{error}</div>}
          <div class="actions">
            <button type="submit" class="primary" data-testid="confirm">Confirm {pending}</button>
            <button type="button" onClick={() => dialog.current?.close()}>Cancel</button>
          </div>
        </form>
      </dialog>
    </>
  );
}
