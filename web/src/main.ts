/** The console: sign in (demo identities or a bearer token), then the view of the caller's role. */
// First: a browser language that Intl refuses is replaced before any module formats with it.
import './locale.ts';
import { html, nothing, render } from 'lit';
import { api, ok, sessionOf, type Session } from './client.ts';
import { CustomerView } from './views/customer.ts';
import { HostView } from './views/host.ts';
import { OpsView } from './views/ops.ts';
import { outcomeOf, outcomeView, type Outcome } from './ui.ts';

const root = document.getElementById('app') as HTMLElement;
// Three hosts: lit renders into `top` and `signin`; each view renders into a fresh element of `views`.
const top = document.createElement('header');
const signin = document.createElement('main');
const views = document.createElement('div');
root.append(top, signin, views);
const KEY = 'fleet-console-token';
let current: { stop(): void } | undefined;

async function signIn(token: string): Promise<void> {
  const session = sessionOf(token.trim());
  sessionStorage.setItem(KEY, session.token);
  await ok(api(session).GET('/v1/cities'));
  start(session);
}

function start(session: Session): void {
  current?.stop();
  const main = document.createElement('div');
  render(
    html`<div class="bar">
        <h1>fleet-inventory</h1>
        <span class="who">${session.role} <strong>${session.sub}</strong>${session.hostId ? ` (${session.hostId})` : ''}</span>
        <button type="button" @click=${signOut}>Sign out</button>
      </div>`,
    top,
  );
  render(nothing, signin);
  signin.hidden = true;
  views.replaceChildren(main);
  const View = session.role === 'customer' ? CustomerView : session.role === 'host' ? HostView : OpsView;
  current = new View(main, session);
}

function signOut(): void {
  current?.stop();
  current = undefined;
  views.replaceChildren();
  render(nothing, top);
  signin.hidden = false;
  sessionStorage.removeItem(KEY);
  void showSignIn();
}

async function showSignIn(outcome?: Outcome): Promise<void> {
  const demo = await api(undefined)
    .GET('/v1/demo/identities')
    .then((r) => r.data)
    .catch(() => undefined);
  const tryToken = async (token: string) => {
    try {
      await signIn(token);
    } catch (err) {
      await showSignIn(outcomeOf(err));
    }
  };
  render(
    html`<div class="signin">
      <h1>fleet-inventory console</h1>
      ${
        demo
          ? html`<section aria-labelledby="demo-h"><h2 id="demo-h">Demo identities</h2>
              <div class="row">
                <button type="button" @click=${() => tryToken(demo.customer)}>Customer</button>
                <button type="button" @click=${() => tryToken(demo.host)}>Host (${demo.hostId})</button>
                <button type="button" @click=${() => tryToken(demo.ops)}>Operations</button>
                <button type="button" @click=${() => tryToken(demo.admin)}>Admin</button>
              </div></section>`
          : ''
      }
      <section aria-labelledby="tok-h"><h2 id="tok-h">Bearer token</h2>
        <form @submit=${(e: SubmitEvent) => {
          e.preventDefault();
          const value = new FormData(e.target as HTMLFormElement).get('token');
          void tryToken(String(value ?? ''));
        }}>
          <label class="field"><span>Token</span><textarea name="token" rows="3" required></textarea></label>
          <button type="submit">Sign in</button>
        </form>
      </section>
      ${outcomeView(outcome)}
    </div>`,
    signin,
  );
}

const saved = sessionStorage.getItem(KEY);
if (saved) signIn(saved).catch(() => showSignIn());
else void showSignIn();
