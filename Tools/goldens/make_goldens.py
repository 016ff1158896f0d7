#!/usr/bin/env python3
"""Produce the engine's golden outputs with llama.cpp (llama-cpp-python).

Run once by hand, commit the JSON, never the tool:
    pip install llama-cpp-python
    python3 Tools/goldens/make_goldens.py MODEL.gguf > Tests/AMPDEngineTests/Resources/goldens.json

Greedy decoding, 2 threads, no flash attention (ggml's plain attention path),
F16 KV cache (llama.cpp's default). Each case records the prompt's token ids,
the generated ids, and the top logits of the first step so the Swift engine's
numeric distance from llama.cpp can be bounded, not just its argmax.
"""
import json
import sys

from llama_cpp import Llama

MODEL = sys.argv[1]
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
MAX_NEW = 32
IM_END = "<|im_end|>"


def chat(user, system=SYSTEM):
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def next_turn(user):
    return f"<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


llm = Llama(model_path=MODEL, n_ctx=2048, n_threads=2, n_batch=512, flash_attn=False,
            logits_all=True, verbose=False, seed=0)
stop_ids = {llm.token_eos(), llm.tokenize(IM_END.encode(), add_bos=False, special=True)[0]}


def tok(text):
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def greedy(n_new):
    """Greedy tokens, the first step's top logits, and every step's margin
    (top-1 minus top-2 logit): where the margin is small, a tiny numeric
    difference legitimately flips the choice."""
    out, first_top, margins = [], None, []
    for _ in range(n_new):
        logits = llm.scores[llm.n_tokens - 1]
        order = sorted(range(len(logits)), key=lambda i: -logits[i])[:8]
        if first_top is None:
            first_top = [[i, float(logits[i])] for i in order]
        margins.append(round(float(logits[order[0]] - logits[order[1]]), 4))
        t = order[0]
        out.append(t)
        if t in stop_ids:
            break
        llm.eval([t])
    return out, first_top, margins


cases = []
single = [
    ("capital", chat("What is the capital of France?")),
    ("haiku", chat("Write a haiku about the sea.")),
    ("raw-fox", "The quick brown fox"),
    ("arithmetic", chat("What is 12 + 35? Answer with a number.")),
    ("code", chat("Write a Python function that returns the square of a number.")),
    ("unicode", chat("Translate 'good morning' into French and Spanish. Café, niño, 東京.")),
    ("long-context", chat(
        "Summarise this in one sentence: " +
        " ".join(["Disaggregated serving runs the prefill phase and the decode phase of large "
                  "language model inference on separate pools of accelerators, so that each "
                  "phase can be scaled and tuned for its own bottleneck."] * 6))),
]
for name, prompt in single:
    llm.reset()
    ids = tok(prompt)
    llm.eval(ids)
    gen, top, margins = greedy(MAX_NEW)
    cases.append({"name": name, "rounds": [{"text": prompt, "promptIds": ids, "generatedIds": gen,
                                            "firstTopLogits": top, "margins": margins}]})

# A three-round conversation fed round by round into one live sequence: the
# stop token is not evaluated; the next round appends its turn after the reply.
llm.reset()
rounds = []
turns = [chat("My name is Ada and I like tea. What should I drink this morning?"),
         next_turn("And what about the afternoon?"),
         next_turn("What is my name?")]
for text in turns:
    ids = tok(text)
    llm.eval(ids)
    gen, top, margins = greedy(24)
    rounds.append({"text": text, "promptIds": ids, "generatedIds": gen, "firstTopLogits": top, "margins": margins})
    # the reply minus its stop token is part of the history
cases.append({"name": "three-rounds", "rounds": rounds})

tokenizer_cases = [
    "Hello world", " Hello  world ", "  leading spaces", "trailing spaces   ",
    "line one\nline two\n\n  indented", "tabs\tand\r\nwindows", "numbers 1234567 and 3.14159",
    "don't won't it's we're they've I'm he'll she'd", "CAPS and MiXeD", "émigré café naïve",
    "東京 and Москва and العربية", "emoji 🙂👍🏽 done", "punctuation!!! ... ??? (brackets) [x] {y}",
    "<|im_start|>user\nhi<|im_end|>", "a<|endoftext|>b", "   ", "\n", "x", "",
]
tokenizer = [{"text": t, "ids": tok(t)} for t in tokenizer_cases]

json.dump({
    "source": "llama-cpp-python " + __import__("llama_cpp").__version__ + ", greedy, n_threads=2, flash_attn=False, f16 KV",
    "model": MODEL.rsplit("/", 1)[-1],
    "stopIds": sorted(stop_ids),
    "cases": cases,
    "tokenizer": tokenizer,
}, sys.stdout, ensure_ascii=False, indent=1)
