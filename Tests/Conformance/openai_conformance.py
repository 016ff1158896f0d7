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

# Completions.
c = client.completions.create(model=model, prompt="The quick brown fox", max_tokens=5, temperature=0)
check("completions", c.object == "text_completion" and c.usage.completion_tokens == 5, c)

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
refused("logprobs", logprobs=True)
refused("tools", tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}])
refused("response_format", response_format={"type": "json_object"})
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
