import AMPDTestSupport
import Foundation
import Testing
@testable import AMPDEngine

/// Feeds `text` byte by byte: whether every byte was accepted, and whether the grammar is then complete.
func matches(_ grammar: OutputGrammar, _ text: String) -> (accepted: Bool, complete: Bool) {
    var m = GrammarMatcher(grammar)
    for b in text.utf8 {
        guard m.accepts([b]) else { return (false, false) }
        m.advance([b])
    }
    return (true, m.isComplete)
}

@Suite("Output grammars")
struct OutputGrammarTests {
    @Test("JSON objects are accepted whole and complete; broken ones are refused at the first bad byte")
    func jsonObjects() async {
        await offPool {
            for ok in [#"{}"#, #"{"a":1}"#, #"{ "a" : [1, -2.5e+3, true, false, null, "x\"\u00e9"], "b": {"c": {}} }"#, #"{"":0}"#, "{\n  \"k\": [ ]\n}"] {
                #expect(matches(.jsonObject, ok) == (true, true), "\(ok)")
            }
            for prefix in [#"{"a":"#, #"{"#, #"{"a":[1,"#, #"{"a":-"#] {
                #expect(matches(.jsonObject, prefix) == (true, false), "\(prefix)")
            }
            for bad in [#"[1]"#, #"{,}"#, #"{"a" 1}"#, #"{"a":tru}"#, #"{"a":01}"#, #"{"a":1,}"#, #"{"a":1]"#, #"{} "#, #"{}}"#, #"{"a":"\x"}"#,
                        "{\"a\":\"\u{01}\"}", #"{a:1}"#, #"{"a":1.}"#, #"{"a":.5}"#, #"{"a":+1}"#] {
                #expect(!matches(.jsonObject, bad).accepted || !matches(.jsonObject, bad).complete, "\(bad)")
            }
        }
    }

    @Test("whitespace runs, numbers and nesting are bounded")
    func bounds() {
        #expect(matches(.jsonObject, "{" + String(repeating: " ", count: 16) + "}").complete)
        #expect(!matches(.jsonObject, "{" + String(repeating: " ", count: 17)).accepted)
        #expect(!matches(.jsonObject, "{\"a\":" + String(repeating: "1", count: 40)).accepted)
        let deep = String(repeating: "[", count: JSONMatcher.maxDepth)
        #expect(!matches(.jsonObject, "{\"a\":" + deep).accepted)
        #expect(matches(.jsonObject, "{\"a\":" + String(repeating: "[", count: JSONMatcher.maxDepth - 2)).accepted)
    }

    @Test("every object JSONSerialization writes is accepted and complete; whatever the matcher completes, JSONSerialization reads as an object")
    func agreesWithFoundation() async throws {
        try await offPool {
            var rng = SeededGenerator(seed: 7)
            func value(_ depth: Int) -> Any {
                switch Int(rng.next() % (depth > 3 ? 4 : 6)) {
                case 0: return Int(rng.next() % 2000) - 1000
                case 1: return Double(Int(rng.next() % 100_000)) / 64
                case 2: return ["", "a b", "q\"uote", "back\\slash", "é", "line\nbreak", "tab\t"][Int(rng.next() % 7)]
                case 3: return [true, false, NSNull()][Int(rng.next() % 3)]
                case 4: return (0..<Int(rng.next() % 4)).map { _ in value(depth + 1) }
                default: return object(depth + 1)
                }
            }
            func object(_ depth: Int) -> [String: Any] {
                Dictionary(uniqueKeysWithValues: (0..<Int(rng.next() % 4)).map { i in ("k\(i)", value(depth)) })
            }
            for _ in 0..<300 {
                let data = try JSONSerialization.data(withJSONObject: object(0), options: [.prettyPrinted])
                let text = String(decoding: data, as: UTF8.self)
                #expect(matches(.jsonObject, text) == (true, true), "\(text)")
            }
            // Soundness: random strings over JSON's alphabet that the matcher completes are JSON objects.
            let alphabet = Array(#"{}[]:,"a1-.e0 tfn\"#.utf8)
            var completed = 0
            for _ in 0..<200_000 {
                var m = GrammarMatcher(.jsonObject)
                var bytes: [UInt8] = []
                while bytes.count < 24, !m.isComplete {
                    let b = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                    if m.accepts([b]) { m.advance([b]); bytes.append(b) } else if rng.next() % 4 == 0 { break }
                }
                guard m.isComplete else { continue }
                completed += 1
                let parsed = try? JSONSerialization.jsonObject(with: Data(bytes))
                #expect(parsed is [String: Any], "\(String(decoding: bytes, as: UTF8.self))")
            }
            #expect(completed > 100)
        }
    }

    @Test("a tool call in the model's format: a literal, one of the names (one a prefix of another), the arguments object, a literal")
    func toolCall() {
        let g = OutputGrammar([.literal("<tool_call>\n{\"name\": \""), .oneOf(["get", "get_weather", "send"]), .literal("\", \"arguments\": "),
                               .jsonObject, .literal("}\n</tool_call>")])
        #expect(matches(g, "<tool_call>\n{\"name\": \"get\", \"arguments\": {}}\n</tool_call>") == (true, true))
        #expect(matches(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>") == (true, true))
        #expect(!matches(g, "<tool_call>\n{\"name\": \"gone\"").accepted)
        #expect(!matches(g, "<tool_call>\n{\"name\": \"get_w\", ").accepted)
        #expect(!matches(g, "Sure! <tool_call>").accepted)
        // Multi-byte tokens are tested whole.
        var m = GrammarMatcher(g)
        #expect(m.accepts(Array("<tool_call>\n{\"na".utf8)))
        #expect(!m.accepts(Array("<tool_call>\n[".utf8)))
        m.advance(Array("<tool_call>\n{\"name\": \"se".utf8))
        #expect(m.accepts(Array("nd\", \"arg".utf8)))
        #expect(!m.accepts(Array("nt".utf8)))
    }

    @Test("a token filter allows only what continues the grammar, then only stop tokens; logprobs are a log-softmax")
    func filterAndLogprobs() {
        let logits: [Float] = [2, 1, 0, -1]
        let lp = TokenLogprobs(logits: logits, token: 1, top: 2)
        let z = log(logits.map { expf($0) }.reduce(0, +))
        #expect(abs(lp.logprob - (1 - z)) < 1e-5)
        #expect(lp.top.map(\.token) == [0, 1])
        #expect(abs(lp.top[0].logprob - (2 - z)) < 1e-5)
        #expect(TokenLogprobs(logits: logits, token: 3, top: 0).top.isEmpty)
    }
}

@Suite("Top-level strings and numbers in a grammar; tool calls rendered and parsed per family")
struct GrammarValueAndToolTests {
    @Test("a schema's arguments: strings, numbers ending where the next literal begins, integers, enums")
    func values() {
        let g = OutputGrammar([.literal("{\"city\": "), .jsonString, .literal(", \"days\": "), .jsonNumber(integer: true), .literal(", \"t\": "),
                               .jsonNumber(integer: false), .literal(", \"unit\": "), .oneOf(["\"C\"", "\"F\""]), .literal("}")])
        #expect(matches(g, #"{"city": "Paris \"16e\"", "days": -3, "t": 21.5e-1, "unit": "C"}"#) == (true, true))
        #expect(matches(g, #"{"city": "Paris", "days": 3.5"#).accepted == false)
        #expect(matches(g, #"{"city":  "Paris""#).accepted == false)
        #expect(matches(g, #"{"city": 5"#).accepted == false)
        #expect(matches(g, #"{"city": "P", "days": 1, "t": 2, "unit": "K"#).accepted == false)
        #expect(matches(g, #"{"city": "P", "days": 01"#).accepted == false)
    }

    @Test("ChatML renders tools, calls and results as Qwen 2.5 does, and parses calls back, arguments as written")
    func chatML() {
        let t = ChatTemplate.chatML(defaultSystem: "You are helpful.")
        let tool = #"{"function":{"name":"get_weather"},"type":"function"}"#
        let call = ChatToolCall(id: "c1", name: "get_weather", arguments: #"{"city": "Paris"}"#)
        let text = t.render([ChatMessage(role: "user", content: "Weather?"), ChatMessage(role: "assistant", content: "", toolCalls: [call]),
                             ChatMessage(role: "tool", content: "sunny", toolCallID: "c1"), ChatMessage(role: "tool", content: "21C", toolCallID: "c1")],
                            tools: [tool])
        #expect(text.hasPrefix("<|im_start|>system\nYou are helpful.\n\n# Tools\n"))
        #expect(text.contains("<tools>\n\(tool)\n</tools>"))
        #expect(text.contains("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"))
        #expect(text.contains("<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\n21C\n</tool_response><|im_end|>\n<|im_start|>assistant\n"))
        // What the grammar forces is what the parser reads, and what rendering writes back.
        let out = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":  \"Paris\"}}\n</tool_call>"
        let parsed = t.parseToolCalls(out, names: ["get_weather"])
        #expect(parsed?.content == "Let me check.")
        #expect(parsed?.calls.map(\.arguments) == [#"{"city":  "Paris"}"#])
        #expect(t.parseToolCalls(out, names: ["other"]) == nil)
        #expect(t.parseToolCalls("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\"", names: ["get_weather"]) == nil)
        #expect(t.parseToolCalls("no calls", names: ["get_weather"]) == nil)
        let two = t.parseToolCalls(out + "\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>", names: ["get_weather"])
        #expect(two?.calls.count == 2)
        #expect(matches(t.toolCallGrammar(names: ["get_weather"]), String(out.dropFirst("Let me check.\n".count))).complete)
    }

    @Test("Llama 3 renders tools in the first user turn, calls as JSON with parameters, results as ipython turns")
    func llama3() {
        let t = ChatTemplate.llama3
        let call = ChatToolCall(id: "c1", name: "f", arguments: #"{"x": 1}"#)
        let text = t.render([ChatMessage(role: "system", content: "S"), ChatMessage(role: "user", content: "Q"),
                             ChatMessage(role: "assistant", content: "", toolCalls: [call]), ChatMessage(role: "tool", content: "42", toolCallID: "c1")],
                            tools: [#"{"function":{"name":"f"},"type":"function"}"#])
        #expect(text.contains("<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions"))
        #expect(text.contains("{\"function\":{\"name\":\"f\"},\"type\":\"function\"}\n\nQ<|eot_id|>"))
        #expect(text.contains("<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"f\", \"parameters\": {\"x\": 1}}<|eot_id|>"))
        #expect(text.contains("<|start_header_id|>ipython<|end_header_id|>\n\n42<|eot_id|>"))
        #expect(t.parseToolCalls(#" {"name": "f", "parameters": {"x": 2}}"#, names: ["f"])?.calls.first?.arguments == #"{"x": 2}"#)
        #expect(t.parseToolCalls("The answer is 42", names: ["f"]) == nil)
    }
}
