// SPDX-License-Identifier: MIT
// The official `openai` and `@anthropic-ai/sdk` SDKs against meterd's relay (an
// OpenAI-compatible fake upstream behind it): chat, responses and embeddings with the OpenAI
// SDK, messages with the Anthropic SDK, each streamed and not where the API streams; a bad
// key and an exhausted balance surface as APIError with NewAPI's status codes; models list.
// Run by tests/integration/63_meterd_clients_sdk.py, which starts meterd and the fake and
// passes METERD_URL, METERD_KEY, METERD_POOR_KEY and FAKE_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { collectChat } from './collect.mjs';

const openai = new OpenAI({ baseURL: process.env.METERD_URL + '/v1',
                            apiKey: process.env.METERD_KEY, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: process.env.METERD_URL,
                                  apiKey: process.env.METERD_KEY, maxRetries: 0 });

test('chat, non-stream', async () => {
  const r = await openai.chat.completions.create({ model: 'gpt-4o',
    messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello sdk' }] });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.content, 'fake answer to: hello sdk');
  assert.equal(r.usage.prompt_tokens, 100);
});

test('chat, stream with usage', async () => {
  const stream = await openai.chat.completions.create({ model: 'gpt-4o', stream: true,
    stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'stream sdk' }] });
  const { text, finish, usage } = await collectChat(stream);
  assert.equal(text, 'fake answer to: stream sdk');
  assert.equal(finish, 'stop');
  assert.equal(usage.completion_tokens, 20);
});

test('chat, stream through the helper (withResponse: request id header)', async () => {
  const { data: stream, response } = await openai.chat.completions.create({ model: 'gpt-4o',
    stream: true, messages: [{ role: 'user', content: 'ids' }] }).withResponse();
  assert.match(response.headers.get('x-oneapi-request-id'), /^\d{14}/);
  let n = 0;
  for await (const chunk of stream) n += chunk.choices.length;
  assert.ok(n > 0);
});

test('responses, stream and not', async () => {
  const r = await openai.responses.create({ model: 'gpt-4o', input: 'resp sdk' });
  assert.equal(r.output_text, 'fake answer to: resp sdk');
  assert.equal(r.usage.input_tokens, 100);
  const s = await openai.responses.create({ model: 'gpt-4o', input: 'resp stream', stream: true });
  let text = '', done = null;
  for await (const ev of s) {
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') done = ev.response;
  }
  assert.equal(text, 'fake answer to: resp stream');
  assert.equal(done.usage.output_tokens, 20);
});

test('embeddings', async () => {
  const e = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
  assert.equal(e.data.length, 2);
  assert.equal(e.usage.prompt_tokens, 100);
});

test('messages, non-stream and stream', async () => {
  const m = await anthropic.messages.create({ model: 'claude-3-5-sonnet-20241022',
    max_tokens: 64, messages: [{ role: 'user', content: 'claude sdk' }] });
  assert.equal(m.content[0].text, 'fake answer to: claude sdk');
  assert.equal(m.usage.output_tokens, 20);
  const stream = anthropic.messages.stream({ model: 'claude-3-5-sonnet-20241022',
    max_tokens: 64, messages: [{ role: 'user', content: 'claude stream' }] });
  let text = '';
  stream.on('text', (t) => { text += t; });
  const final = await stream.finalMessage();
  assert.equal(text, 'fake answer to: claude stream');
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(final.usage.output_tokens, 20);
});

test('models', async () => {
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.ok(ids.includes('gpt-4o'));
  const a = await anthropic.models.list();
  assert.ok(a.data.some((m) => m.id === 'claude-3-5-sonnet-20241022'));
});

test('errors surface as APIError', async () => {
  const bad = new OpenAI({ baseURL: process.env.METERD_URL + '/v1', apiKey: 'sk-wrong',
                           maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'gpt-4o',
    messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.APIError && e.status === 401 && /Invalid token/.test(e.message));
  const poor = new OpenAI({ baseURL: process.env.METERD_URL + '/v1',
                            apiKey: process.env.METERD_POOR_KEY, maxRetries: 0 });
  await assert.rejects(poor.chat.completions.create({ model: 'gpt-4o',
    messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 403 && e.code === 'insufficient_user_quota');
  const badClaude = new Anthropic({ baseURL: process.env.METERD_URL, apiKey: 'sk-wrong',
                                    maxRetries: 0 });
  await assert.rejects(badClaude.messages.create({ model: 'claude-3-5-sonnet-20241022',
    max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.APIError && e.status === 401);
  await assert.rejects(openai.chat.completions.create({ model: 'no-such-model',
    messages: [{ role: 'user', content: 'x' }] }), (e) => e.status === 503);
});
