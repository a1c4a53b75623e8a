// SPDX-License-Identifier: MIT
// The official `@google/genai` SDK (Gemini API, v1beta) against cliproxyd with a Gemini CLI
// credential (fake Code Assist endpoint behind it): generateContent, generateContentStream,
// a function-call round trip, countTokens and models.list. The SDK sends the cliproxyd
// api-key as x-goog-api-key. Run by tests/integration/58_clients_genai_sdk.py, which starts
// the daemons and passes CLIPROXY_URL, CLIPROXY_KEY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI } from '@google/genai';

const MODEL = 'gemini-2.5-pro';
const ai = new GoogleGenAI({ apiKey: process.env.CLIPROXY_KEY,
                             httpOptions: { baseUrl: process.env.CLIPROXY_URL } });

test('generateContent', async () => {
  const r = await ai.models.generateContent({ model: MODEL, contents: 'hello genai',
    config: { systemInstruction: 'be brief', temperature: 0.2 } });
  assert.equal(r.text, 'fake gemini answer to: hello genai');
  assert.equal(r.candidates[0].finishReason, 'STOP');
  assert.equal(r.usageMetadata.promptTokenCount, 21);
  assert.equal(r.usageMetadata.candidatesTokenCount, 8);
});

test('generateContentStream', async () => {
  const stream = await ai.models.generateContentStream({ model: MODEL,
    contents: [{ role: 'user', parts: [{ text: 'stream genai' }] }] });
  let text = '';
  let last;
  for await (const chunk of stream) {
    text += chunk.text ?? '';
    last = chunk;
  }
  assert.equal(text, 'fake gemini answer to: stream genai');
  assert.equal(last.candidates[0].finishReason, 'STOP');
  assert.ok(last.usageMetadata.totalTokenCount > 0);
});

test('function call round trip', async () => {
  const tools = [{ functionDeclarations: [{ name: 'get_weather', description: 'weather',
    parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } } } }] }];
  const contents = [{ role: 'user', parts: [{ text: 'please call_tool' }] }];
  const first = await ai.models.generateContent({ model: MODEL, contents, config: { tools } });
  assert.equal(first.functionCalls.length, 1);
  assert.equal(first.functionCalls[0].name, 'get_weather');
  assert.deepEqual(first.functionCalls[0].args, { city: 'Paris' });
  contents.push(first.candidates[0].content,
    { role: 'user', parts: [{ functionResponse: { name: 'get_weather',
                                                  response: { weather: 'sunny' } } }] });
  const second = await ai.models.generateContent({ model: MODEL, contents, config: { tools } });
  assert.equal(second.text, 'fake gemini got tool result: {"weather": "sunny"}');
});

test('countTokens', async () => {
  const r = await ai.models.countTokens({ model: MODEL, contents: 'one two three' });
  assert.equal(r.totalTokens, 103);
});

test('models.list', async () => {
  const names = [];
  const pager = await ai.models.list();
  for await (const m of pager) names.push(m.name);
  assert.ok(names.includes(`models/${MODEL}`), names.join(','));
});

test('an upstream error surfaces as an ApiError', async () => {
  await fetch(process.env.FAKE_GEMINI_URL + '/_script', { method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ '*': [{ status: 400 }] }) });
  await assert.rejects(ai.models.generateContent({ model: MODEL, contents: 'bad' }),
    (e) => e.status === 400);
});
