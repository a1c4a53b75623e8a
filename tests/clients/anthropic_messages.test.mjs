// SPDX-License-Identifier: MIT
// The official `@anthropic-ai/sdk` (Messages API) and `openai` (Chat API) SDKs against
// cliproxyd with a Claude account (fake Anthropic API behind it) and a Codex account (fake
// Codex backend): Messages clients on Claude (passthrough) and on Codex (translated), Chat
// clients on Claude (translated), each streamed and not, tools included, and an upstream
// error the SDK must surface as an APIError. Run by tests/integration/51_clients_sdk_claude.py,
// which starts the daemons and passes CLIPROXY_URL, CLIPROXY_KEY, FAKE_CLAUDE_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { collectChat } from './collect.mjs';

const CLAUDE = 'claude-sonnet-4-5-20250929';
const CODEX = 'gpt-5-codex';
const anthropic = new Anthropic({ baseURL: process.env.CLIPROXY_URL,
                                  apiKey: process.env.CLIPROXY_KEY, maxRetries: 0 });
const openai = new OpenAI({ baseURL: process.env.CLIPROXY_URL + '/v1',
                            apiKey: process.env.CLIPROXY_KEY, maxRetries: 0 });
const tools = [{ name: 'get_weather', description: 'weather for a city',
                 input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
const script = (steps) => fetch(process.env.FAKE_CLAUDE_URL + '/_script',
  { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(steps) });

for (const [label, model, answer] of [['claude', CLAUDE, 'fake claude answer to: '],
                                      ['codex', CODEX, 'fake answer to: ']]) {
  test(`messages on ${label}: non-stream`, async () => {
    const m = await anthropic.messages.create({ model, max_tokens: 256, system: 'be brief',
      messages: [{ role: 'user', content: 'hello sdk' }] });
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.content.find((b) => b.type === 'text').text, answer + 'hello sdk');
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.output_tokens > 0);
  });

  test(`messages on ${label}: stream`, async () => {
    const stream = anthropic.messages.stream({ model, max_tokens: 256,
      messages: [{ role: 'user', content: 'stream sdk' }] });
    let text = '';
    stream.on('text', (t) => { text += t; });
    const final = await stream.finalMessage();
    assert.equal(text, answer + 'stream sdk');
    assert.equal(final.stop_reason, 'end_turn');
    assert.ok(final.usage.output_tokens > 0);
  });

  test(`messages on ${label}: tool use, then the tool result`, async () => {
    const first = await anthropic.messages.create({ model, max_tokens: 256, tools,
      messages: [{ role: 'user', content: 'please call_tool for Paris' }] });
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, { city: 'Paris' });
    const stream = anthropic.messages.stream({ model, max_tokens: 256, tools, messages: [
      { role: 'user', content: 'please call_tool for Paris' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' },
                                { type: 'text', text: 'thanks' }] }] });
    const final = await stream.finalMessage();
    assert.equal(final.content.find((b) => b.type === 'text').text, answer + 'thanks');
  });

  test(`messages on ${label}: streamed tool use`, async () => {
    const stream = anthropic.messages.stream({ model, max_tokens: 256, tools,
      messages: [{ role: 'user', content: 'call_tool now' }] });
    const final = await stream.finalMessage();
    const use = final.content.find((b) => b.type === 'tool_use');
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(use.input, { city: 'Paris' });
  });
}

test('chat on claude: non-stream', async () => {
  const r = await openai.chat.completions.create({ model: CLAUDE,
    messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi chat' }] });
  assert.equal(r.choices[0].message.content, 'fake claude answer to: hi chat');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.prompt_tokens, 42); // 30 + 12 cache read
  assert.equal(r.usage.prompt_tokens_details.cached_tokens, 12);
});

test('chat on claude: stream with include_usage', async () => {
  const stream = await openai.chat.completions.create({ model: CLAUDE, stream: true,
    stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi stream' }] });
  const { text, finish, usage } = await collectChat(stream);
  assert.equal(text, 'fake claude answer to: hi stream');
  assert.equal(finish, 'stop');
  assert.equal(usage.completion_tokens, 9);
});

test('chat on claude: tool calls, streamed and not', async () => {
  const ftools = [{ type: 'function', function: { name: 'get_weather', description: 'weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const r = await openai.chat.completions.create({ model: CLAUDE, tools: ftools,
    messages: [{ role: 'user', content: 'please call_tool for Paris' }] });
  const call = r.choices[0].message.tool_calls[0];
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  const stream = await openai.chat.completions.create({ model: CLAUDE, tools: ftools, stream: true,
    messages: [{ role: 'user', content: 'please call_tool for Paris' },
               { role: 'assistant', tool_calls: [call] },
               { role: 'tool', tool_call_id: call.id, content: 'sunny' },
               { role: 'user', content: 'call_tool again' }] });
  let args = '', finish = null;
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta;
    if (d?.tool_calls) args += d.tool_calls[0].function?.arguments ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'tool_calls');
  assert.deepEqual(JSON.parse(args), { city: 'Paris' });
});

test('an upstream refusal surfaces as an APIError', async () => {
  await script({ sdk: [{ status: 400, extra_usage: true }] });
  await assert.rejects(
    anthropic.messages.create({ model: CLAUDE, max_tokens: 64,
                                messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.APIError && e.status === 400 && /extra usage/.test(e.message));
});
