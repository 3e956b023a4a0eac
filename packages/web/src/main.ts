import './style.css';
import { whenAuthRequired } from './api.js';
import { errorBox } from './common.js';
import { clear, h } from './dom.js';
import { live } from './live.js';
import { showLogin, signedIn, signOut } from './login.js';
import { PAGES } from './pages/index.js';
import { current, href } from './router.js';
import { buildCtx, timeBar } from './view.js';

const app = document.getElementById('app')!;
const nav = document.getElementById('nav')!;
const bar = document.getElementById('timebar')!;
let cleanup: (() => void) | undefined;

function render(): void {
  const route = current();
  const entry = PAGES.find((p) => p.name === route.page) ?? PAGES[0];
  cleanup?.();
  cleanup = undefined;
  clear(app);
  clear(nav);
  for (const p of PAGES) {
    if (p.nav)
      nav.append(
        h(
          'a',
          {
            href: href(p.name),
            class: p.name === (entry.navAs ?? entry.name) ? 'active' : '',
            dataset: { page: p.name },
          },
          p.title,
        ),
      );
  }
  document.title = `${entry.title} · gatescope`;
  app.dataset.page = entry.name;
  // Wall display: `…?kiosk=1` hides navigation and filters, bigger type and charts.
  document.body.classList.toggle('kiosk', route.params.get('kiosk') === '1');
  const { ctx, error, dispose } = buildCtx(route, entry.time, entry.fallback);
  timeBar(bar, route, ctx, entry.time, render);
  if (error) {
    // One clear error for a time selection the URL cannot mean, instead of every panel failing on its own.
    app.append(
      h('div', { class: 'title' }, h('h1', null, entry.title)),
      h(
        'div',
        { id: 'time-error' },
        errorBox({ code: 'Bad time range', message: `${error}. Pick a range above.` }),
      ),
    );
    cleanup = dispose;
    return;
  }
  const pageCleanup = entry.page(app, route, ctx);
  cleanup = () => {
    dispose();
    pageCleanup();
  };
}

// Theme: the user's choice, else the system's.
const THEME_KEY = 'gatescope.theme';
const applyTheme = (t: string) => (document.documentElement.dataset.theme = t);
applyTheme(
  localStorage.getItem(THEME_KEY) ?? (matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark'),
);
document.getElementById('theme')!.addEventListener('click', () => {
  const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
  render(); // charts read colours at creation
});

const conn = document.getElementById('conn')!;
const socket = live();

// Tokens: typed into the login form when the server asks (never taken from a URL), kept for this tab only.
localStorage.removeItem('gatescope.token'); // where earlier versions kept it, for good
const signOutButton = document.getElementById('signout')!;
const showSignOut = () => (signOutButton.hidden = !signedIn());
function login(message: string): void {
  showLogin(message, () => {
    showSignOut();
    socket.disconnect().connect(); // the handshake reads the new token
    render();
  });
}
whenAuthRequired(login);
signOutButton.addEventListener('click', () => {
  signOut();
  showSignOut();
  socket.disconnect();
  login('Signed out: enter a token to continue');
});
showSignOut();
socket.on('connect', () => {
  conn.className = 'conn up';
  conn.title = 'live: connected';
});
socket.on('disconnect', () => {
  conn.className = 'conn down';
  conn.title = 'live: disconnected, reconnecting…';
});
socket.on('connect_error', (err: Error & { data?: { code?: string } }) => {
  conn.className = 'conn down';
  conn.title = `live: ${err.message}`;
  if (err.data?.code?.startsWith('ERR_AUTH')) login(err.message);
});

window.addEventListener('hashchange', render);
render();
