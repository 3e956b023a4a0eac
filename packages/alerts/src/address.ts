import { BlockList, isIP } from 'node:net';

/**
 * The SSRF guard's address rule. A receiver URL is fetched by gatescope, from inside the network it runs in, so
 * a receiver must not be able to reach the machine itself, its neighbours or cloud metadata services unless the
 * operator says so. Checked on the address actually connected to (after DNS: see delivery's resolve-then-
 * connect), never on the name alone.
 */
const RANGES: [string, number, 'ipv4' | 'ipv6', string][] = [
  ['0.0.0.0', 8, 'ipv4', 'unspecified'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['10.0.0.0', 8, 'ipv4', 'private'],
  ['172.16.0.0', 12, 'ipv4', 'private'],
  ['192.168.0.0', 16, 'ipv4', 'private'],
  ['100.64.0.0', 10, 'ipv4', 'shared (carrier-grade NAT)'],
  ['169.254.0.0', 16, 'ipv4', 'link-local (cloud metadata)'],
  ['192.0.0.0', 24, 'ipv4', 'IETF protocol assignments'],
  ['198.18.0.0', 15, 'ipv4', 'benchmarking'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['::1', 128, 'ipv6', 'loopback'],
  ['fc00::', 7, 'ipv6', 'private (unique local)'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['ff00::', 8, 'ipv6', 'multicast'],
  ['64:ff9b:1::', 48, 'ipv6', 'local-use NAT64'],
];
/** One list per range, so a refusal can say which kind of address it was. */
const LISTS = RANGES.map(([net, prefix, type, kind]) => {
  const list = new BlockList();
  list.addSubnet(net, prefix, type);
  return { list, type, kind };
});
const lookupKind = (address: string, type: 'ipv4' | 'ipv6') =>
  LISTS.find((r) => r.type === type && r.list.check(address, type))?.kind;

function kindOf(address: string): string | undefined {
  const family = isIP(address);
  if (family === 4) {
    return lookupKind(address, 'ipv4');
  }
  if (family === 6) {
    // IPv4 in IPv6 (::ffff:a.b.c.d mapped, ::a.b.c.d compatible, 64:ff9b::a.b.c.d NAT64) is judged as IPv4.
    const v4 = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    if (v4) return kindOf(v4);
    const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
    if (hex) {
      const n = (parseInt(hex[1], 16) << 16) | parseInt(hex[2], 16);
      return kindOf([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'));
    }
    return lookupKind(address, 'ipv6');
  }
  return undefined;
}

/** Whether `address` (an IP literal) is loopback, private, link-local or otherwise not a public address. */
export function isPrivateAddress(address: string): boolean {
  return kindOf(address) !== undefined;
}

export class ReceiverAddressError extends Error {
  readonly code = 'ERR_ALERT_RECEIVER_ADDRESS';
  constructor(message: string) {
    super(message);
    this.name = 'ReceiverAddressError';
  }
}

/**
 * Throws when a receiver may not connect to `address`. `allowPrivate`: the receiver's `allow_private_network`
 * or GATESCOPE_ALERTS_ALLOW_PRIVATE_NETWORK.
 */
export function checkAddress(receiver: string, host: string, address: string, allowPrivate: boolean): void {
  const kind = kindOf(address);
  if (kind === undefined || allowPrivate) return;
  throw new ReceiverAddressError(
    `receiver "${receiver}": ${host === address ? address : `${host} resolves to ${address}`}, a ${kind} address; ` +
      'webhooks go to public addresses only unless the receiver sets allow_private_network: true ' +
      '(or GATESCOPE_ALERTS_ALLOW_PRIVATE_NETWORK=1 allows it for every receiver)',
  );
}
