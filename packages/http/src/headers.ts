import type { FastifyHelmetOptions } from '@fastify/helmet';

/**
 * Security headers. Every fastify response (UI files, API JSON, errors, 404s) gets helmet's set with the UI's
 * Content-Security-Policy; `/docs` (Swagger UI) replaces the policy with `DOCS_CSP`; responses fastify does not
 * write (socket.io's polling transport, malformed requests) get `NON_DOCUMENT_HEADERS`.
 *
 * The UI is one script and one stylesheet from its own origin, charts drawn on canvas (uPlot), data from
 * `/api` and the `/live` socket on the same origin, and a `data:` favicon. Nothing inline, nothing third-party.
 */
const UI_CSP = {
  defaultSrc: ["'self'"],
  baseUri: ["'none'"],
  connectSrc: ["'self'"],
  fontSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  imgSrc: ["'self'", 'data:'],
  manifestSrc: ["'self'"],
  objectSrc: ["'none'"],
  scriptSrc: ["'self'"],
  scriptSrcAttr: ["'none'"],
  styleSrc: ["'self'"],
  workerSrc: ["'none'"],
};

export const HELMET_OPTIONS: FastifyHelmetOptions = {
  global: true,
  contentSecurityPolicy: { useDefaults: false, directives: UI_CSP },
  // HSTS binds a whole host name (every port) to HTTPS for a year: leave it to the TLS-terminating ingress.
  strictTransportSecurity: false,
  xFrameOptions: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  crossOriginOpenerPolicy: { policy: 'same-origin' },
};

/**
 * Swagger UI at `/docs`: its own bundle and stylesheet, the OpenAPI document fetched from this origin, inline
 * SVG icons as `data:` images, element styles set by its React components (CSSOM, allowed by `'self'`), and the
 * one `<style>` element its bundle injects, allowed by its hash (not `'unsafe-inline'`). The browser test
 * (test/e2e/ui.test.ts) fails on any violation, so a Swagger UI upgrade that changes it is caught.
 */
const SWAGGER_UI_INLINE_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='";
export const DOCS_CSP = [
  "default-src 'self'",
  "base-uri 'none'",
  "connect-src 'self'",
  "font-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "img-src 'self' data:",
  "object-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  `style-src 'self' ${SWAGGER_UI_INLINE_STYLE}`,
  "worker-src 'none'",
].join('; ');

/** For responses that are never a document: socket.io polling, malformed requests. */
export const NON_DOCUMENT_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
});
