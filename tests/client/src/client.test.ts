// A typed client generated from the api's live /openapi.json (openapi-typescript: `generated/api.d.ts`),
// driven through openapi-fetch: it registers, logs in, creates, lists and updates tasks and reads
// /users/me, every request and response typed by the document. `tsc --noEmit` type-checks this file against
// the generated types (the `@ts-expect-error` lines prove the document is strict where the server is), and
// run.sh runs it against a fresh api.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import createClient from 'openapi-fetch';
import type { components, paths } from '../generated/api.js';

type Task = components['schemas']['TaskResponse'];
type User = components['schemas']['UserResponse'];

const BASE_URL = process.env.BASE_URL;

/** Never called: each line must be a type error, or `tsc --noEmit` fails on the unused directive. */
export function refusedAtCompileTime(client: ReturnType<typeof createClient<paths>>): void {
  // @ts-expect-error `title` is required
  void client.POST('/api/v1/tasks', { body: { description: 'no title' } });
  // @ts-expect-error `limit` is an integer, not a string
  void client.GET('/api/v1/tasks', { params: { query: { limit: '5' } } });
  // @ts-expect-error `sort` is one of the six orders
  void client.GET('/api/v1/tasks', { params: { query: { sort: 'owner' } } });
  // @ts-expect-error unknown fields are refused (additionalProperties: false)
  const typo: components['schemas']['UpdateTaskRequest'] = { titel: 'typo' };
  void typo;
  // @ts-expect-error `completed` is a boolean, never null
  void client.POST('/api/v1/tasks', { body: { title: 'x', completed: null } });
}

test('a generated client registers, logs in, manages tasks and reads /users/me', async () => {
  assert.ok(BASE_URL, 'BASE_URL is set by run.sh');
  const client = createClient<paths>({ baseUrl: BASE_URL });
  const username = `ts_${Date.now().toString(36)}`;
  const password = 'typed client passphrase';

  const registered = await client.POST('/api/v1/auth/register', {
    body: { username, email: `${username}@example.com`, password },
  });
  assert.equal(registered.response.status, 201);
  const user: User | undefined = registered.data;
  assert.equal(user?.username, username);
  assert.equal(user?.role, 'user');

  const login = await client.POST('/api/v1/auth/login', { body: { login: username, password } });
  assert.equal(login.response.status, 200, JSON.stringify(login.error));
  const accessToken: string = login.data?.access_token ?? '';
  assert.ok(accessToken.length > 0);
  const headers = { Authorization: `Bearer ${accessToken}` };

  const created = await client.POST('/api/v1/tasks', {
    headers,
    body: { title: '  Buy milk  ', description: null },
  });
  assert.equal(created.response.status, 201);
  const task: Task | undefined = created.data;
  assert.equal(task?.title, 'Buy milk');
  const description: string | null | undefined = task?.description;
  assert.equal(description, null);
  await client.POST('/api/v1/tasks', { headers, body: { title: 'Walk the dog', completed: true } });

  const list = await client.GET('/api/v1/tasks', {
    headers,
    params: { query: { completed: false, sort: 'title', limit: 10, offset: 0 } },
  });
  assert.equal(list.response.status, 200);
  assert.equal(list.data?.total, 1);
  assert.deepEqual(list.data?.items.map((t) => t.title), ['Buy milk']);

  const id = task?.id ?? 0;
  const updated = await client.PATCH('/api/v1/tasks/{id}', {
    headers,
    params: { path: { id } },
    body: { description: '2 litres', completed: true },
  });
  assert.equal(updated.response.status, 200);
  assert.equal(updated.data?.description, '2 litres');
  assert.equal(updated.data?.completed, true);

  const refused = await client.POST('/api/v1/tasks', { headers, body: { title: '   ' } });
  assert.equal(refused.response.status, 422);
  assert.equal(refused.error?.code, 'validation_failed');
  assert.deepEqual(refused.error?.errors?.map((e) => e.field), ['title']);

  const me = await client.GET('/api/v1/users/me', { headers });
  assert.equal(me.response.status, 200);
  assert.equal(me.data?.id, user?.id);
  assert.equal(me.data?.email, `${username}@example.com`);
});
