import { describe, expect, it } from 'vitest';
import { templatePath } from './normalise.js';

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';

// [input, expected template]
const cases: Array<[string, string]> = [
  // Istio bookinfo
  ['/productpage', '/productpage'],
  ['/productpage?u=normal', '/productpage'],
  ['/api/v1/products', '/api/v1/products'],
  ['/api/v1/products/0', '/api/v1/products/{id}'],
  ['/api/v1/products/0/reviews', '/api/v1/products/{id}/reviews'],
  ['/api/v1/products/1/ratings', '/api/v1/products/{id}/ratings'],
  ['/reviews/0', '/reviews/{id}'],
  ['/ratings/42', '/ratings/{id}'],
  ['/details/0', '/details/{id}'],
  ['/login', '/login'],
  ['/logout', '/logout'],
  ['/static/bootstrap/css/bootstrap.min.css', '/static/bootstrap/css/bootstrap.min.css'],
  // Online Boutique (HTTP frontend and gRPC)
  ['/product/OLJCESPC7Z', '/product/{id}'],
  ['/product/66VCHSJNUP', '/product/{id}'],
  ['/product/1YMWWN1N4O', '/product/{id}'],
  ['/product/L9ECAV7KIM', '/product/{id}'],
  ['/product/2ZYFJ3GM2N', '/product/{id}'],
  ['/product/0PUK6V6EV0', '/product/{id}'],
  ['/product/LS4PSXUNUM', '/product/{id}'],
  ['/product/9SIQT8TOJO', '/product/{id}'],
  ['/product/6E92ZMYYFZ', '/product/{id}'],
  ['/cart', '/cart'],
  ['/cart/checkout', '/cart/checkout'],
  ['/setCurrency', '/setCurrency'],
  ['/hipstershop.CartService/GetCart', '/hipstershop.CartService/GetCart'],
  ['/hipstershop.ProductCatalogService/GetProduct', '/hipstershop.ProductCatalogService/GetProduct'],
  ['/hipstershop.CurrencyService/Convert', '/hipstershop.CurrencyService/Convert'],
  ['/grpc.health.v1.Health/Check', '/grpc.health.v1.Health/Check'],
  [
    '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs',
    '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs',
  ],
  // REST ids
  ['/orders/12345', '/orders/{id}'],
  ['/api/v2/users/98765/orders/4', '/api/v2/users/{id}/orders/{id}'],
  ['/orders/12345/', '/orders/{id}/'],
  ['/users/550e8400-e29b-41d4-a716-446655440000/profile', '/users/{uuid}/profile'],
  ['/users/550E8400-E29B-41D4-A716-446655440000', '/users/{uuid}'],
  ['/items/507f1f77bcf86cd799439011', '/items/{hash}'],
  ['/commit/da39a3ee5e6b4b0d3255bfef95601890afd80709', '/commit/{hash}'],
  ['/blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '/blobs/sha256/{hash}'],
  ['/auth/' + JWT, '/auth/{token}'],
  ['/reset/AbCdEfGhIjKlMnOpQrSt', '/reset/{token}'],
  ['/k/aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQ=', '/k/{token}'],
  ['/watch/dQw4w9WgXcQ', '/watch/{id}'],
  ['/x/a1b2c3x4y5', '/x/{id}'],
  ['/booking/X7K9QZ', '/booking/{id}'],
  ['/api/v1/namespaces/default/pods/web-7d4b9c8f6-x2x9k', '/api/v1/namespaces/default/pods/{token}'],
  ['/api/v1/orders/ORD-2024-000123', '/api/v1/orders/ORD-2024-{id}'],
  ['/u/user12345', '/u/user{id}'],
  ['/files/invoice-1234567.pdf', '/files/invoice-{id}.pdf'],
  // dates, e-mails, IPs
  ['/reports/2026-11-26', '/reports/{date}'],
  ['/events/2026-11-26T10:00:00Z/summary', '/events/{date}/summary'],
  ['/users/john.doe@example.com', '/users/{email}'],
  ['/users/john%40example.com/settings', '/users/{email}/settings'],
  ['/hosts/10.0.0.1', '/hosts/{ip}'],
  ['/hosts/2001:db8::1/stats', '/hosts/{ip}/stats'],
  // static assets
  ['/static/css/main.css', '/static/css/main.css'],
  ['/static/js/main.3f2a9c1b.js', '/static/js/main.{hash}.js'],
  ['/static/media/logo.6ce24c58023cc2f8fd88fe9d219db6c6.svg', '/static/media/logo.{hash}.svg'],
  ['/_next/static/chunks/pages/_app-7f5c5e4d3b2a1c0d.js', '/_next/static/chunks/pages/_app-{hash}.js'],
  ['/assets/chunk-ABCD1234.js', '/assets/chunk-{hash}.js'],
  ['/assets/jquery-3.6.0.min.js', '/assets/jquery-3.6.0.min.js'],
  ['/img/logo@2x.png', '/img/logo@2x.png'],
  ['/icons/icon-192x192.png', '/icons/icon-192x192.png'],
  ['/fonts/Roboto-Regular.woff2', '/fonts/Roboto-Regular.woff2'],
  ['/favicon.ico', '/favicon.ico'],
  // ordinary words and versions stay
  ['/healthz', '/healthz'],
  ['/readyz', '/readyz'],
  ['/api/v2/en-US/items', '/api/v2/en-US/items'],
  ['/docs/zh-Hant-TW/intro', '/docs/zh-Hant-TW/intro'],
  ['/apis/apps/v1beta1/deployments', '/apis/apps/v1beta1/deployments'],
  ['/api/v3alpha1', '/api/v3alpha1'],
  ['/oauth2/token', '/oauth2/token'],
  ['/i18n/k8s/web3', '/i18n/k8s/web3'],
  ['/x86_64/utf-8/iso-8859-1', '/x86_64/utf-8/iso-8859-1'],
  ['/blog/My-First-Post', '/blog/My-First-Post'],
  ['/p/how-to-install-node-20-on-ubuntu-22', '/p/how-to-install-node-20-on-ubuntu-22'],
  ['/.well-known/openid-configuration', '/.well-known/openid-configuration'],
  ['/wp-admin/admin-ajax.php', '/wp-admin/admin-ajax.php'],
  ['/v1/projects/my-proj/locations/us-central1', '/v1/projects/my-proj/locations/us-central1'],
  ['/v1/pets:batchGet', '/v1/pets:batchGet'],
  ['/README/COVID19/Http2Server', '/README/COVID19/Http2Server'],
  ['/deadbeefcafe', '/deadbeefcafe'],
  ['/@types/node', '/@types/node'],
  ['/socket.io/', '/socket.io/'],
  // query strings, fragments, odd targets
  ['/search?q=hello&page=2', '/search'],
  ['/search?', '/search'],
  ['/docs#section-12345', '/docs'],
  ['/a/1?next=/b/2#frag', '/a/{id}'],
  ['', '/'],
  ['/', '/'],
  ['?x=1', '/'],
  ['*', '*'],
  ['http://example.com:8080/a/1?x=1', '/a/{id}'],
  ['https://example.com', '/'],
  ['relative/7', '/relative/{id}'],
  ['/a//b/', '/a//b/'],
  ['//12', '//{id}'],
  // percent-encoding and non-ASCII
  ['/enc/caf%C3%A9', '/enc/caf%C3%A9'],
  ['/enc/%E4%B8%AD%E6%96%87', '/enc/%E4%B8%AD%E6%96%87'],
  ['/bad/%zz/%E4%B8', '/bad/%zz/%E4%B8'],
  ['/%31%32%33', '/{id}'],
  ['/中文/路径/123', '/中文/路径/{id}'],
  ['/emoji/🚀/12', '/emoji/🚀/{id}'],
  ['/ü/%FF%FE/' + '\uD800', '/ü/%FF%FE/\uD800'],
];

describe('templatePath', () => {
  it('has a broad table of real-looking paths', () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
  });

  it.each(cases)('%s -> %s', (input, expected) => {
    expect(templatePath(input)).toBe(expected);
  });

  it('returns the input string itself when nothing changes', () => {
    const path = '/api/v1/products';
    expect(Object.is(templatePath(path), path)).toBe(true);
  });

  it('handles an 8 KB path of many id segments', () => {
    const segments = Array.from({ length: 1200 }, (_, i) => `item/${i}`);
    const path = '/' + segments.join('/');
    expect(path.length).toBeGreaterThan(8000);
    expect(templatePath(path)).toBe('/' + segments.map(() => 'item/{id}').join('/'));
  });

  it('handles an 8 KB single segment of adversarial repeats', () => {
    expect(templatePath('/' + 'a'.repeat(8192))).toBe('/' + 'a'.repeat(8192));
    expect(templatePath('/' + '1'.repeat(8192) + 'x')).toBe('/{id}x');
    expect(templatePath('/' + 'aB3-'.repeat(2048))).toBe('/{token}');
    expect(templatePath('/' + '%'.repeat(8192))).toBe('/' + '%'.repeat(8192));
  });
});
