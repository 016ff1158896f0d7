import AMPDAPI
import AMPDEngine
import Foundation
import Testing
@testable import AMPDGateway

@Suite("Tools in the gateway")
struct ToolUseTests {
    func tools(_ json: String) throws -> ToolUse {
        var r = try FieldReader(try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)))
        return try ToolUse(&r)
    }

    let weather = #"{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["C","F"]},"days":{"type":"integer"}},"required":["city","unit"]}}}"#

    @Test("tool_choice decides what the answer is constrained to: nothing (auto, none), one call to any (required), one to a name with its schema's arguments")
    func choices() throws {
        let t = ChatTemplate.chatML(defaultSystem: nil)
        let other = #"{"type":"function","function":{"name":"other"}}"#
        #expect(try tools(#"{"tools":[\#(weather)]}"#).grammar(t) == nil)
        #expect(try tools(#"{"tools":[\#(weather)]}"#).active)
        #expect(try !tools(#"{"tools":[\#(weather)],"tool_choice":"none"}"#).active)
        let named = try tools(#"{"tools":[\#(weather),\#(other)],"tool_choice":{"type":"function","function":{"name":"get_weather"}}}"#).grammar(t)
        #expect(named == t.toolCallGrammar(names: ["get_weather"], arguments: [.literal("{\"city\": "), .jsonString, .literal(", \"unit\": "),
                                                                              .oneOf(["\"C\"", "\"F\""]), .literal("}")]))
        #expect(try tools(#"{"tools":[\#(weather),\#(other)],"tool_choice":"required"}"#).grammar(t) == t.toolCallGrammar(names: ["get_weather", "other"]))
        // A function without parameters takes an empty object.
        #expect(try tools(#"{"tools":[\#(other)],"tool_choice":"required"}"#).grammar(t) == t.toolCallGrammar(names: ["other"], arguments: [.literal("{}")]))
        // A schema outside the subset: any object; strict is then refused by name.
        let nested = #"{"type":"function","function":{"name":"n","strict":true,"parameters":{"type":"object","properties":{"a":{"type":"array"}}}}}"#
        #expect(throws: OpenAIError.self) { try tools(#"{"tools":[\#(nested)],"tool_choice":"required"}"#) }
        #expect(ToolUse.argumentGrammar(try JSONDecoder().decode(JSONValue.self, from: Data(#"{"type":"object","properties":{"a":{"type":"array"}}}"#.utf8))) == nil)
    }

    @Test("a streamed answer's content flows until a call may begin; the call is held, parsed and returned; text that was no call is released")
    func stream() throws {
        let template = ChatTemplate.chatML(defaultSystem: nil)
        let shape = AnswerShape(chat: true, tools: try tools(#"{"tools":[\#(weather)]}"#), template: template, logprobs: nil)
        var s = ToolCallStream(shape)
        var out = ""
        for piece in ["Checking", " now.\n<tool", "_call>\n{\"name\": \"get_weather\", ", "\"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"] {
            out += s.feed(piece)
        }
        #expect(out == "Checking now.\n")
        let (held, calls) = s.finish()
        #expect(held.isEmpty && calls.map(\.name) == ["get_weather"] && calls[0].arguments == #"{"city": "Oslo"}"#)
        var plain = ToolCallStream(shape)
        #expect(plain.feed("a <tool") == "a ")
        #expect(plain.feed("box> b") == "<toolbox> b")
        var broken = ToolCallStream(shape)
        _ = broken.feed("<tool_call>\n{\"name\": \"nope\"}")
        #expect(broken.finish() == ("<tool_call>\n{\"name\": \"nope\"}", []))
        // Llama 3: an answer that opens with `{` is held whole.
        var llama = ToolCallStream(AnswerShape(chat: true, tools: shape.tools, template: .llama3, logprobs: nil))
        #expect(llama.feed("  ") == "" && llama.feed("{\"name\": \"get_weather\", \"parameters\": {}}") == "")
        #expect(llama.finish().calls.count == 1)
        var talk = ToolCallStream(AnswerShape(chat: true, tools: shape.tools, template: .llama3, logprobs: nil))
        #expect(talk.feed(" It") == " It" && talk.feed(" {is}") == " {is}")
        // parallel_tool_calls: false keeps the first call.
        let one = AnswerShape(chat: true, tools: try tools(#"{"tools":[\#(weather)],"parallel_tool_calls":false}"#), template: template, logprobs: nil)
        let call = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"
        #expect(one.toolCalls(in: call + "\n" + call)?.calls.count == 1)
        #expect(shape.toolCalls(in: call + "\n" + call)?.calls.count == 2)
    }
}
