import type { Route } from '../router.js';
import type { PageCtx, TimeSupport } from '../view.js';
import { alerts } from './alerts.js';
import { ingest } from './ingest.js';
import { map } from './map.js';
import { overview } from './overview.js';
import { requests } from './requests.js';
import { routeDetail } from './route-detail.js';
import { routes } from './routes.js';
import { sql } from './sql.js';
import { tail } from './tail.js';

/** A page: draws into `root`, returns its cleanup (sockets, timers, charts). */
export type Page = (root: HTMLElement, route: Route, ctx: PageCtx) => () => void;

export interface PageEntry {
  /** `#/<name>` */
  name: string;
  title: string;
  page: Page;
  /** Shown in the navigation bar (false: reached by links, e.g. Route detail). */
  nav: boolean;
  /** The nav item that lights up for this page. */
  navAs?: string;
  /** Which time selections the page shows; `fallback` is its range when the URL asks for live and it cannot. */
  time: TimeSupport;
  fallback: string;
}

/**
 * Every page, in navigation order. A new page (Alerts, Ingest…) is one entry here and one file in pages/: the
 * router, the nav, the time bar and the page context come with it.
 */
export const PAGES: PageEntry[] = [
  { name: 'overview', title: 'Overview', page: overview, nav: true, time: 'live-or-range', fallback: '1h' },
  { name: 'routes', title: 'Routes', page: routes, nav: true, time: 'live-or-range', fallback: '1h' },
  {
    name: 'route',
    title: 'Route',
    page: routeDetail,
    nav: false,
    navAs: 'routes',
    time: 'range',
    fallback: '1h',
  },
  { name: 'map', title: 'Map', page: map, nav: true, time: 'live-or-range', fallback: '1h' },
  { name: 'tail', title: 'Live tail', page: tail, nav: true, time: 'live-only', fallback: '15m' },
  { name: 'requests', title: 'Requests', page: requests, nav: true, time: 'range', fallback: '15m' },
  { name: 'alerts', title: 'Alerts', page: alerts, nav: true, time: 'range', fallback: '24h' },
  { name: 'ingest', title: 'Ingest', page: ingest, nav: true, time: 'range', fallback: '1h' },
  { name: 'sql', title: 'SQL', page: sql, nav: true, time: 'range', fallback: '15m' },
];
