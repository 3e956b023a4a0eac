import { h } from './dom.js';
import type { Hello } from './live.js';

/** What to do when gatescope has no traffic yet: point Envoy or Istio at the ALS port, or start the demo. */
export function emptyState(hello: Hello | undefined): HTMLElement {
  const configured = hello?.als.host ?? '127.0.0.1';
  const host =
    configured === '0.0.0.0' || configured === '::' || configured === '' ? location.hostname : configured;
  const port = hello?.als.port ?? 8090;
  const envoy = `# Envoy: stream access logs to gatescope over gRPC ALS
# 1) on the listener's http_connection_manager:
access_log:
- name: envoy.access_loggers.http_grpc
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig
    common_config:
      log_name: gatescope
      transport_api_version: V3
      grpc_service:
        envoy_grpc: { cluster_name: gatescope_als }
# 2) under static_resources.clusters:
- name: gatescope_als
  type: STRICT_DNS
  connect_timeout: 1s
  typed_extension_protocol_options:
    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
      explicit_http_config: { http2_protocol_options: {} }
  load_assignment:
    cluster_name: gatescope_als
    endpoints:
    - lb_endpoints:
      - endpoint:
          address:
            socket_address: { address: ${host}, port_value: ${port} }`;
  const istio = `# Istio: register gatescope as an ALS provider (IstioOperator / mesh config)…
meshConfig:
  extensionProviders:
  - name: gatescope
    envoyHttpAls:
      service: ${host}   # or gatescope.<namespace>.svc.cluster.local
      port: ${port}
---
# …and turn it on for the ingress gateway
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: gatescope, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  accessLogging:
  - providers: [{ name: gatescope }]`;
  return h(
    'section',
    { class: 'empty', id: 'empty-state' },
    h('h2', null, 'No traffic yet'),
    h(
      'p',
      null,
      'gatescope listens for Envoy access logs (gRPC ALS) on ',
      h('code', null, `${host}:${port}`),
      '. Point Envoy or an Istio ingress gateway at it and this page comes alive within seconds.',
    ),
    h(
      'div',
      { class: 'cols' },
      h('div', null, h('h3', null, 'Envoy'), h('pre', null, envoy)),
      h('div', null, h('h3', null, 'Istio'), h('pre', null, istio)),
    ),
    h(
      'p',
      null,
      'No Envoy at hand? Run the demo: ',
      h('code', null, 'npm run demo'),
      ' starts gatescope with a generator streaming realistic gateway traffic (a 50/50 canary, some 5xx, 404s, client resets).',
    ),
  );
}
