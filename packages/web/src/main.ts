import './style.css';
import { whenAuthRequired } from './api.js';
import { clear, h } from './dom.js';
import { live } from './live.js';
import { showLogin, signedIn, signOut } from './login.js';
import { overview } from './pages/overview.js';
import { requests } from './pages/requests.js';
import { routeDetail } from './pages/route-detail.js';
import { routes } from './pages/routes.js';
import { sql } from './pages/sql.js';
import { tail } from './pages/tail.js';
import { current, href, type Route } from './router.js';

type Page = (root: HTMLElement, route: Route) => () => void;
const PAGES: Record<string, { title: string; page: Page; nav: boolean }> = {
  overview: { title: 'Overview', page: overview, nav: true },
  routes: { title: 'Routes', page: routes, nav: true },
  route: { title: 'Route', page: routeDetail, nav: false },
  tail: { title: 'Live tail', page: tail, nav: true },
  requests: { title: 'Requests', page: requests, nav: true },
  sql: { title: 'SQL', page: sql, nav: true },
};

const app = document.getElementById('app')!;
const nav = document.getElementById('nav')!;
let cleanup: (() => void) | undefined;

function render(): void {
  const route = current();
  const entry = PAGES[route.page] ?? PAGES.overview;
  cleanup?.();
  clear(app);
  clear(nav);
  for (const [name, p] of Object.entries(PAGES)) {
    if (p.nav)
      nav.append(
        h(
          'a',
          {
            href: href(name),
            class: name === route.page || (name === 'routes' && route.page === 'route') ? 'active' : '',
          },
          p.title,
        ),
      );
  }
  document.title = `${entry.title} · gatescope`;
  app.dataset.page = route.page;
  // Wall display: `…?kiosk=1` hides navigation and filters, bigger type and charts.
  document.body.classList.toggle('kiosk', route.params.get('kiosk') === '1');
  cleanup = entry.page(app, route);
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
