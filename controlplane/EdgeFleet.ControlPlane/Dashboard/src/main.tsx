import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, setSession, whenUnauthorized, type SessionInfo } from './api';
import { startLive, stopLive, onLiveStatus } from './live';
import { useHashRoute } from './hooks';
import { Fleet } from './fleet';
import { Device } from './device';
import { Models } from './models';
import { Rollouts, Rollout } from './rollouts';
import { Events } from './events';

function Login({ onLogin }: { onLogin: (s: SessionInfo) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string>();
  const submit = async (e: Event) => {
    e.preventDefault();
    try { onLogin(await api<SessionInfo>('/session', 'POST', { token })); } catch (err) { setError((err as Error).message); }
  };
  return (
    <form class="login" onSubmit={submit}>
      <h1>EdgeFleet</h1>
      <p class="muted">Sign in with your API token (viewer, operator or admin). It is kept only in an HttpOnly session cookie.</p>
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="off" value={token} onInput={e => setToken((e.target as HTMLInputElement).value)} placeholder="efp_…" />
      {error && <div class="error" role="alert">{error}</div>}
      <button class="primary" type="submit">Sign in</button>
    </form>
  );
}

function App() {
  const [session, setState] = useState<SessionInfo | null | undefined>(undefined);
  const [live, setLive] = useState(false);
  const route = useHashRoute();
  const signedIn = (s: SessionInfo | null) => { setSession(s); setState(s); };

  useEffect(() => {
    whenUnauthorized(() => { stopLive(); signedIn(null); });
    onLiveStatus(setLive);
    api<SessionInfo>('/session').then(signedIn, () => signedIn(null));
  }, []);
  useEffect(() => { if (session) startLive(); }, [session]);

  if (session === undefined) return <main class="muted">Loading…</main>;
  if (session === null) return <Login onLogin={signedIn} />;

  const logout = async () => { await api('/session', 'DELETE').catch(() => undefined); stopLive(); signedIn(null); };
  const [page, id] = route;
  const nav = (href: string, label: string, names: string[]) => <a href={href} class={names.includes(page) ? 'active' : ''}>{label}</a>;
  return (
    <>
      <header>
        <strong>EdgeFleet</strong>
        {nav('#/fleet', 'Fleet', ['fleet', 'devices'])}
        {nav('#/models', 'Models', ['models'])}
        {nav('#/rollouts', 'Rollouts', ['rollouts'])}
        {nav('#/events', 'Events', ['events'])}
        <span class="who">
          <span class={live ? 'live on' : 'live'} data-testid="live">{live ? '● live' : '○ offline'}</span>{' '}
          <span data-testid="who">{session.name} ({session.role.toLowerCase()})</span>{' '}
          <button onClick={logout}>Sign out</button>
        </span>
      </header>
      <main>
        {page === 'devices' && id ? <Device key={id} id={id} session={session} />
          : page === 'models' ? <Models open={id} session={session} />
          : page === 'rollouts' && id ? <Rollout id={id} session={session} />
          : page === 'rollouts' ? <Rollouts />
          : page === 'events' ? <Events />
          : <Fleet />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
