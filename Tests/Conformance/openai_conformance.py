"""OpenAI API conformance of an ampd gateway, driven by the official `openai` package.

    python3 Tests/Conformance/openai_conformance.py BASE_URL API_KEY MODEL

Prints one line per check and exits non-zero on the first failure (the Swift test
`OpenAIConformanceTests` runs it against a real gateway)."""
import sys

import openai

base, key, model = sys.argv[1:4]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120)


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok   {name}")


def chat(messages, session=None, **kw):
    headers = {"x-session-id": session} if session else None
    kw.setdefault("temperature", 0)
    kw.setdefault("max_tokens", 12)
    return client.chat.completions.create(model=model, messages=messages, extra_headers=headers, **kw)


q = [{"role": "user", "content": "What is the capital of France?"}]

# Plain chat.
r = chat(q)
answer = r.choices[0].message.content
check("chat answers", r.object == "chat.completion" and answer and r.choices[0].message.role == "assistant", r)
check("chat usage", r.usage.prompt_tokens > 10 and r.usage.completion_tokens >= 1
      and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, r.usage)
check("finish reason", r.choices[0].finish_reason in ("stop", "length"), r.choices[0].finish_reason)

# Content as a list of text parts is the same request.
parts = chat([{"role": "user", "content": [{"type": "text", "text": "What is the capital "}, {"type": "text", "text": "of France?"}]}])
check("content parts", parts.choices[0].message.content == answer, parts.choices[0].message.content)

# Streaming, with the usage chunk.
chunks = list(chat(q, stream=True, stream_options={"include_usage": True}))
check("stream starts with the role", chunks[0].choices[0].delta.role == "assistant", chunks[0])
streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("stream content equals the answer", streamed == answer, (streamed, answer))
check("stream ends with usage", chunks[-1].usage is not None and not chunks[-1].choices
      and chunks[-1].usage.completion_tokens == r.usage.completion_tokens, chunks[-1])
finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
check("stream finish reason", finishes == [r.choices[0].finish_reason], finishes)

# A session: a retry of the same request returns exactly the first answer.
first = chat(q, session="conf-retry").choices[0].message.content
again = chat(q, session="conf-retry")
check("retry returns the first answer", again.choices[0].message.content == first, (again.choices[0].message.content, first))
# An edited history under the session answers what the same messages answer without one.
edited = q + [{"role": "assistant", "content": first}, {"role": "user", "content": "And of Spain?"}]
check("an edited history answers as fresh",
      chat(edited, session="conf-retry").choices[0].message.content == chat(edited).choices[0].message.content)

# Stop sequences: never in the output, the answer cut where one begins.
long = chat(q, max_tokens=24).choices[0].message.content
word = next((w for w in long.split() if len(w) > 3), None)
if word:
    stopped = chat(q, max_tokens=24, stop=[word])
    text = stopped.choices[0].message.content
    check("stop sequence cuts the answer", word not in text and long.startswith(text) and stopped.choices[0].finish_reason == "stop",
          (word, text, long))
    streamed = "".join(c.choices[0].delta.content or "" for c in chat(q, max_tokens=24, stop=[word], stream=True) if c.choices)
    check("stop sequence cuts the stream", streamed == text, (streamed, text))

# Log-probabilities in OpenAI's shape: one entry per token, the greedy token the most likely.
lp = chat(q, logprobs=True, top_logprobs=2)
entries = lp.choices[0].logprobs.content
check("logprobs per token", len(entries) == lp.usage.completion_tokens and "".join(e.token for e in entries) == lp.choices[0].message.content,
      (len(entries), lp.usage.completion_tokens))
check("top_logprobs", all(len(e.top_logprobs) == 2 and e.top_logprobs[0].token == e.token and e.logprob <= 0 for e in entries), entries[:2])
check("logprobs leave the answer as it was", lp.choices[0].message.content == answer)

# JSON mode: the answer is a JSON object.
import json
js = chat([{"role": "user", "content": "Give a JSON object describing a cat with a name and an age."}], response_format={"type": "json_object"}, max_tokens=200)
try:
    obj = json.loads(js.choices[0].message.content)
except ValueError:
    obj = None
check("json_object answers a JSON object", isinstance(obj, dict) and js.choices[0].finish_reason == "stop", js.choices[0].message.content)

# A two-step tool loop under one session: the model calls the function, the client runs it,
# the tool's result is the next round's incremental prefill, and the model answers.
tools = [{"type": "function", "function": {"name": "get_weather", "description": "The current weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ask = [{"role": "user", "content": "What is the weather like in Paris today?"}]
named = {"type": "function", "function": {"name": "get_weather"}}
call = chat(ask, session="conf-tools", tools=tools, tool_choice=named, max_tokens=120)
msg = call.choices[0].message
check("tool call", call.choices[0].finish_reason == "tool_calls" and msg.tool_calls and msg.tool_calls[0].function.name == "get_weather"
      and msg.tool_calls[0].type == "function" and msg.tool_calls[0].id, msg)
args = json.loads(msg.tool_calls[0].function.arguments)
check("tool call arguments are a JSON object", isinstance(args, dict), msg.tool_calls[0].function.arguments)
again = chat(ask, session="conf-tools", tools=tools, tool_choice=named, max_tokens=120).choices[0].message
check("a retried tool call is the same call", again.tool_calls[0].function.arguments == msg.tool_calls[0].function.arguments)
strict_tools = [dict(tools[0], function=dict(tools[0]["function"], strict=True))]
strict = chat(ask, tools=strict_tools, tool_choice="required", max_tokens=120).choices[0].message
check("strict: the arguments follow the schema", list(json.loads(strict.tool_calls[0].function.arguments)) == ["city"]
      and isinstance(json.loads(strict.tool_calls[0].function.arguments)["city"], str), strict)
required = chat(ask, tools=tools, tool_choice="required", max_tokens=120).choices[0].message
check("tool_choice required calls a function", required.tool_calls and required.tool_calls[0].function.name == "get_weather", required)
streamed_calls = {}
stream_finish = None
for c in chat(ask, tools=tools, tool_choice=named, max_tokens=120, stream=True):
    if not c.choices:
        continue
    for d in c.choices[0].delta.tool_calls or []:
        slot = streamed_calls.setdefault(d.index, {"name": "", "arguments": ""})
        slot["name"] += d.function.name or ""
        slot["arguments"] += d.function.arguments or ""
    stream_finish = c.choices[0].finish_reason or stream_finish
check("tool call streamed as deltas", streamed_calls == {0: {"name": "get_weather", "arguments": msg.tool_calls[0].function.arguments}}
      and stream_finish == "tool_calls", (streamed_calls, stream_finish))
loop = ask + [{"role": "assistant", "content": None, "tool_calls": [{"id": msg.tool_calls[0].id, "type": "function",
               "function": {"name": "get_weather", "arguments": msg.tool_calls[0].function.arguments}}]},
              {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": '{"temperature_c": 21, "sky": "sunny"}'}]
final = chat(loop, session="conf-tools", tools=tools, max_tokens=24)
check("the tool result is answered", final.choices[0].message.content and final.choices[0].finish_reason in ("stop", "length"), final.choices[0])
check("the tool result is an incremental prefill on the session's KV", final.ampd["reusedTokens"] > 100, final.ampd)
fresh = chat(loop, tools=tools, max_tokens=24)
check("the tool loop under a session answers as fresh", final.choices[0].message.content == fresh.choices[0].message.content,
      (final.choices[0].message.content, fresh.choices[0].message.content))
none = chat(ask, tools=tools, tool_choice="none", max_tokens=12)
check("tool_choice none: no calls", not none.choices[0].message.tool_calls and none.choices[0].finish_reason != "tool_calls", none.choices[0])

# Completions.
c = client.completions.create(model=model, prompt="The quick brown fox", max_tokens=5, temperature=0)
check("completions", c.object == "text_completion" and c.usage.completion_tokens == 5, c)
cl = client.completions.create(model=model, prompt="The quick brown fox", max_tokens=5, temperature=0, logprobs=3)
check("completions logprobs", "".join(cl.choices[0].logprobs.tokens) == c.choices[0].text and len(cl.choices[0].logprobs.token_logprobs) == 5
      and all(len(t) >= 1 for t in cl.choices[0].logprobs.top_logprobs), cl.choices[0].logprobs)

# Penalties are accepted and change the sampling.
pen = chat(q, max_tokens=24, frequency_penalty=2.0, presence_penalty=2.0).choices[0].message.content
check("penalties honoured", pen != long or len(set(long.split())) == len(long.split()), (pen, long))

# Refused by name.
def refused(name, **kw):
    try:
        chat(q, **kw)
    except openai.BadRequestError as e:
        check(f"{name} refused by name", e.status_code == 400 and name in str(e), str(e))
        return
    check(f"{name} refused by name", False, "accepted")

refused("n", n=2)
refused("top_logprobs", top_logprobs=3)
refused("response_format", response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
refused("strict", tools=[{"type": "function", "function": {"name": "f", "strict": True, "parameters": {"type": "object", "properties": {}}}}])
refused("tool_choice", tool_choice="required")
refused("temperature", temperature=7)
refused("top_p", top_p=7)
refused("frobnicate", extra_body={"frobnicate": 1})
try:
    chat(q, max_tokens=100000)
    check("context length refused", False, "accepted")
except openai.BadRequestError as e:
    check("context length refused with both numbers", e.status_code == 400 and "maximum context length" in str(e), str(e))

# Wrong key, unknown model.
try:
    openai.OpenAI(base_url=base + "/v1", api_key="wrong-key-0123456789", max_retries=0).chat.completions.create(model=model, messages=q)
    check("wrong key refused", False, "accepted")
except openai.AuthenticationError as e:
    check("wrong key refused", e.status_code == 401)
try:
    client.chat.completions.create(model="gpt-4o", messages=q)
    check("unknown model refused", False, "accepted")
except openai.NotFoundError as e:
    check("unknown model refused", e.status_code == 404 and e.code == "model_not_found" and e.param == "model", str(e))

models = client.models.list()
check("models", [m.id for m in models.data] == [model])
print("all checks passed")
