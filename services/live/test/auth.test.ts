import { afterAll, beforeAll, expect, it } from 'vitest';
import { client, emitAck, harness, once, testConfig, type Harness } from './helpers.js';

let h: Harness;
let url: string;
beforeAll(async () => {
  h = await harness();
  ({ url } = await h.start(
    testConfig({
      tokens: [
        { name: 'grafana', token: 'read-secret-1234', scopes: ['read'] },
        { name: 'ops', token: 'admin-secret-1234', scopes: ['read', 'admin'] },
      ],
    }),
  ));
});
afterAll(async () => {
  await h?.close();
});

const refused = async (token?: string) => {
  const s = client(url, token);
  try {
    return await once<Error & { data?: { code: string; status: number } }>(s, 'connect_error');
  } finally {
    s.disconnect();
  }
};

it('refuses a socket without a token, with the same code and message as the API', async () => {
  const err = await refused();
  expect(err.data).toEqual({ code: 'ERR_AUTH_REQUIRED', status: 401 });
  expect(err.message).toMatch(/auth\.token/);
});

it('refuses a wrong token', async () => {
  const err = await refused('not-a-real-token');
  expect(err.data).toEqual({ code: 'ERR_AUTH_INVALID', status: 401 });
});

it('accepts a read token and serves stats', async () => {
  const s = client(url, 'read-secret-1234');
  try {
    const hello = await once<{ principal: string }>(s, 'hello');
    expect(hello.principal).toBe('grafana');
    expect(await emitAck(s, 'subscribe', {})).toMatchObject({ ok: true });
    await once(s, 'stats');
  } finally {
    s.disconnect();
  }
});

it('without configured tokens everyone is let in (gatescope then only binds loopback)', async () => {
  const open = await h.start(testConfig({ tokens: [] }));
  const s = client(open.url);
  try {
    expect((await once<{ principal: string }>(s, 'hello')).principal).toBe('anonymous');
  } finally {
    s.disconnect();
  }
});
