// SPDX-License-Identifier: MIT
// Helpers the client tests share (not a test file itself).

// Reads a streamed Chat Completions answer to the end: the text, the last finish_reason and
// the usage chunk (include_usage), as an SDK user would.
export async function collectChat(stream) {
  let text = '', finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.choices.length) {
      text += chunk.choices[0].delta?.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  return { text, finish, usage };
}
