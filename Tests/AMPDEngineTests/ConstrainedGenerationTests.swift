import Foundation
import Testing
@testable import AMPDEngine

/// Collects a generation's tokens, their log-probabilities and the summary.
func runScored(_ engine: NativeEngine, _ request: GenerationRequest) async throws -> ([Int32], [TokenLogprobs?], GenerationSummary) {
    var tokens: [Int32] = []
    var scores: [TokenLogprobs?] = []
    var summary: GenerationSummary?
    for try await event in try await engine.generate(request) {
        switch event {
        case .token(let t, let lp): tokens.append(t); scores.append(lp)
        case .finished(let s): summary = s
        }
    }
    return (tokens, scores, try #require(summary))
}

/// One user turn, rendered with the model's chat template.
func chatPrompt(_ engine: NativeEngine, _ text: String) throws -> [Int32] {
    let template = try #require(engine.chatTemplate)
    return engine.tokenizer.encode(template.render([ChatMessage(role: "user", content: text)]))
}

@Suite("SmolLM2 under output grammars", .serialized)
struct ConstrainedGenerationTests {
    @Test("json_object: a greedy answer is a JSON object that ends with a stop token; split after the first token it continues the same")
    func jsonObject() async throws {
        guard RealModel.available, let path = RealModel.path else { return }
        let engine = try NativeEngine(modelPath: path)
        let prompt = try chatPrompt(engine, "Describe a cat as JSON with name and age.")
        let (tokens, _, summary) = try await runScored(engine, GenerationRequest(tokens: prompt, maxTokens: 120, grammar: .jsonObject))
        #expect(summary.reason == .stop)
        let text = engine.tokenizer.decode(tokens)
        #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8))) is [String: Any], "\(text)")
        // Unconstrained, the model does not answer with JSON: the grammar made the difference.
        let (free, _, _) = try await runScored(engine, GenerationRequest(tokens: prompt, maxTokens: 40))
        #expect(engine.tokenizer.decode(free) != text)
        // The prefill half samples the first token; a second request continues after it with the grammar's state.
        let (first, _, pre) = try await runScored(engine, GenerationRequest(tokens: prompt, grammar: .jsonObject, logprobs: 2, answerPrefix: []).prefill)
        #expect(first == [tokens[0]])
        let (rest, _, _) = try await runScored(engine, GenerationRequest(sequence: pre.sequence, tokens: [], maxTokens: 119, keepAlive: true,
                                                                          grammar: .jsonObject, answerPrefix: first))
        #expect(first + rest == tokens)
        // A prefix that breaks the grammar is refused.
        let bad = engine.tokenizer.encode("]")
        await #expect(throws: EngineError.self) {
            _ = try await engine.generate(GenerationRequest(tokens: prompt + bad, grammar: .jsonObject, answerPrefix: bad))
        }
    }

    @Test("a named tool call comes out in the model's format; logprobs report the greedy token as the most likely")
    func toolCallAndLogprobs() async throws {
        guard RealModel.available, let path = RealModel.path else { return }
        let engine = try NativeEngine(modelPath: path)
        let prompt = try chatPrompt(engine, "What is the weather in Paris?")
        let grammar = OutputGrammar([.literal("<tool_call>\n{\"name\": \""), .oneOf(["get_weather"]), .literal("\", \"arguments\": "),
                                     .jsonObject, .literal("}\n</tool_call>")])
        let (tokens, scores, summary) = try await runScored(engine, GenerationRequest(tokens: prompt, maxTokens: 200, grammar: grammar, logprobs: 3))
        let text = engine.tokenizer.decode(tokens)
        #expect(summary.reason == .stop, "\(text)")
        #expect(text.hasPrefix("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {"), "\(text)")
        #expect(text.hasSuffix("}\n</tool_call>"), "\(text)")
        // Unconstrained greedy: the sampled token is the top alternative, its logprob ≤ 0 and equal to the top's.
        let (free, freeScores, _) = try await runScored(engine, GenerationRequest(tokens: prompt, maxTokens: 8, logprobs: 3))
        for (t, s) in zip(free, freeScores) {
            let s = try #require(s)
            #expect(s.top.count == 3)
            #expect(s.top[0].token == t)
            #expect(s.logprob <= 0 && s.logprob == s.top[0].logprob)
            #expect(s.top[0].logprob >= s.top[1].logprob && s.top[1].logprob >= s.top[2].logprob)
        }
        #expect(scores.allSatisfy { $0 != nil })
    }
}

@Suite("SmolLM2: an answer split after its first token (prefill here, decode there) equals the whole", .serialized)
struct SplitAnswerTests {
    @Test("penalties count the first token as generated, and a stop string across the split ends the continuation at once")
    func penalties() async throws {
        guard RealModel.available, let path = RealModel.path else { return }
        let engine = try NativeEngine(modelPath: path)
        let prompt = try chatPrompt(engine, "List the days of the week.")
        let sampling = SamplingParams(presencePenalty: 0.6, frequencyPenalty: 0.6)
        let (whole, _, _) = try await runScored(engine, GenerationRequest(tokens: prompt, maxTokens: 30, sampling: sampling))
        let (first, _, pre) = try await runScored(engine, GenerationRequest(tokens: prompt, sampling: sampling).prefill)
        let (rest, _, _) = try await runScored(engine, GenerationRequest(sequence: pre.sequence, tokens: [], maxTokens: 29, sampling: sampling,
                                                                          keepAlive: true, answerPrefix: first))
        #expect(first + rest == whole, "\(engine.tokenizer.decode(whole)) | \(engine.tokenizer.decode(first + rest))")
        // A stop string across the split (the first token's text and the second's) ends the
        // continuation at once; without the answer's prefix (as before), it ran on to the limit.
        let stop = engine.tokenizer.decode(Array(whole.prefix(2)))
        let (f, _, p1) = try await runScored(engine, GenerationRequest(tokens: prompt, sampling: sampling, stopStrings: [stop]).prefill)
        let (aware, _, s1) = try await runScored(engine, GenerationRequest(sequence: p1.sequence, tokens: [], maxTokens: 29, sampling: sampling,
                                                                            keepAlive: true, stopStrings: [stop], answerPrefix: f))
        #expect(aware.count == 1 && s1.reason == .stop, "\(stop): \(engine.tokenizer.decode(aware))")
        let (f2, _, p2) = try await runScored(engine, GenerationRequest(tokens: prompt, sampling: sampling, stopStrings: [stop]).prefill)
        let (unaware, _, s2) = try await runScored(engine, GenerationRequest(sequence: p2.sequence, tokens: [], maxTokens: 29, sampling: sampling,
                                                                              keepAlive: true, stopStrings: [stop]))
        #expect(f2 == f && unaware.count > 1 && s2.reason != .stop)
    }
}

extension GenerationRequest {
    /// The same request as a prefill (first token only, sequence kept).
    var prefill: GenerationRequest {
        var r = self
        r.prefillOnly = true
        r.maxTokens = 1
        return r
    }
}
