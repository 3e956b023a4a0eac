import './style.css';
import { TOKEN_KEY } from './api.js';
import { clear, h } from './dom.js';
import { live } from './live.js';
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

// A token can come in the URL once (`#/…?token=…` is not kept) or be typed when the server asks for one.
const fromUrl = new URLSearchParams(location.search).get('token');
if (fromUrl) {
  localStorage.setItem(TOKEN_KEY, fromUrl);
  history.replaceState(null, '', location.pathname + location.hash);
}

const conn = document.getElementById('conn')!;
const socket = live();
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
  if (err.data?.code?.startsWith('ERR_AUTH')) {
    const t = prompt(`${err.message}\n\nAPI token:`);
    if (t) {
      localStorage.setItem(TOKEN_KEY, t);
      socket.connect();
      render();
    }
  }
});

window.addEventListener('hashchange', render);
render();
