// SPDX-License-Identifier: MIT
// The official `openai` SDK against cliproxyd (Codex accounts behind it, a fake Codex
// backend behind them): non-stream, stream with usage, tool calls, and an error the SDK
// must surface as an APIError. Run by tests/integration/50_clients_openai_sdk.py, which
// starts the daemons and passes CLIPROXY_URL, CLIPROXY_KEY and FAKE_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { collectChat } from './collect.mjs';

const client = new OpenAI({ baseURL: process.env.CLIPROXY_URL + '/v1',
                            apiKey: process.env.CLIPROXY_KEY, maxRetries: 0 });
const script = (steps) => fetch(process.env.FAKE_URL + '/_script',
  { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(steps) });

test('non-stream chat.completion', async () => {
  const r = await client.chat.completions.create({
    model: 'gpt-5-codex', messages: [{ role: 'system', content: 'be brief' },
                                     { role: 'user', content: 'hello sdk' }] });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.content, 'fake answer to: hello sdk');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.prompt_tokens, 42);
});

test('stream with include_usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-5-codex', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'stream sdk' }] });
  const { text, finish, usage } = await collectChat(stream);
  assert.equal(text, 'fake answer to: stream sdk');
  assert.equal(finish, 'stop');
  assert.equal(usage.total_tokens, 59);
});

test('tool calls, streamed and not', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const r = await client.chat.completions.create({ model: 'gpt-5-codex', tools,
    messages: [{ role: 'user', content: 'please call_tool for Paris' }] });
  const call = r.choices[0].message.tool_calls[0];
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  // the follow-up with the tool result is accepted and answered
  const r2 = await client.chat.completions.create({ model: 'gpt-5-codex', tools, messages: [
    { role: 'user', content: 'please call_tool for Paris' }, r.choices[0].message,
    { role: 'tool', tool_call_id: call.id, content: '{"temp": 21}' },
    { role: 'user', content: 'thanks' }] });
  assert.equal(r2.choices[0].message.content, 'fake answer to: thanks');
  const s = await client.chat.completions.create({ model: 'gpt-5-codex', tools, stream: true,
    messages: [{ role: 'user', content: 'call_tool now' }] });
  let args = '', name = '';
  for await (const chunk of s) {
    const tc = chunk.choices[0]?.delta?.tool_calls?.[0];
    if (tc?.function?.name) name = tc.function.name;
    if (tc?.function?.arguments) args += tc.function.arguments;
  }
  assert.equal(name, 'get_weather');
  assert.deepEqual(JSON.parse(args), { city: 'Paris' });
});

test('errors surface as APIError', async () => {
  const bad = new OpenAI({ baseURL: process.env.CLIPROXY_URL + '/v1', apiKey: 'wrong-key',
                           maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'gpt-5-codex',
    messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.APIError && e.status === 401 && e.code === 'invalid_api_key');
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model',
    messages: [{ role: 'user', content: 'x' }] }), (e) => e.status === 404);
});

test('a transient upstream failure is invisible to the SDK', async () => {
  await script({ 'acct-sdk': [{ status: 503 }] });
  const r = await client.chat.completions.create({ model: 'gpt-5-codex',
    messages: [{ role: 'user', content: 'retry me' }] });
  assert.equal(r.choices[0].message.content, 'fake answer to: retry me');
});
