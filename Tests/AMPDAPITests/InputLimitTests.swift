import Foundation
import Testing
@testable import AMPDAPI

@Suite("Input limits")
struct InputLimitTests {
    func error(_ text: String) -> InvalidObjectError? {
        do {
            _ = try DocumentReader.read(Data(text.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test("a YAML alias bomb is refused before it expands; anchors are named by line and column")
    func aliasBomb() throws {
        var bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].enumerated() {
            let prev = i == 0 ? "a" : ["b", "c", "d", "e", "f", "g", "h"][i - 1]
            bomb += "\(name): &\(name) [" + Array(repeating: "*\(prev)", count: 9).joined(separator: ",") + "]\n"
        }
        let e = try #require(error(bomb))
        #expect(e.causes.first?.message.contains("anchors are not accepted (line 1, column 4)") == true, "\(e)")
        #expect(error("x: 1\ny: *x\n")?.causes.first?.message.contains("aliases are not accepted (line 2") == true)
        // Not anchors: inside quotes, plain text, comments, block scalars.
        for ok in ["a: \"&x *y\"\n", "a: 'it''s *x'\n", "a: 2 * 3 & 4\n", "a: 1 # &x *y\n", "a: |\n  *not an alias\n  &nor an anchor\nb: 2\n",
                   "a: [b, \"*c\"]\n", "a: x*y&z\n"] {
            #expect(DocumentReader.anchorOrAlias(in: ok) == nil, "\(ok)")
        }
        #expect(DocumentReader.anchorOrAlias(in: "- &x 1\n- *x\n") != nil)
        #expect(DocumentReader.anchorOrAlias(in: "{a: &x 1, b: *x}\n") != nil)
    }

    @Test("nesting and size are bounded, naming the path")
    func bounds() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(error("a: " + deep + "\n")?.causes.first?.message.contains("nested more than 64") == true)
        let wide = "a: [" + Array(repeating: "1", count: 100_001).joined(separator: ",") + "]\n"
        #expect(error(wide)?.causes.first?.message.contains("more than 100000 values") == true)
    }

    @Test("duplicate JSON keys are refused with their path; the same key in two objects is fine")
    func duplicates() {
        #expect(JSONDuplicateKeys.first(in: Data(#"{"a":1,"a":2}"#.utf8)) == "a")
        #expect(JSONDuplicateKeys.first(in: Data(#"{"spec":{"decode":{"replicas":1,"x":"}\"","replicas":2}}}"#.utf8)) == "spec.decode.replicas")
        #expect(JSONDuplicateKeys.first(in: Data(#"[{"a":1},{"a":2}]"#.utf8)) == nil)
        #expect(JSONDuplicateKeys.first(in: Data(#"{"a":{"b":1},"c":{"b":2}}"#.utf8)) == nil)
        #expect(JSONDuplicateKeys.first(in: Data(#"{"items":[{"n":1,"n":2}]}"#.utf8)) == "items[0].n")
        #expect(error(#"{"apiVersion":"x","apiVersion":"y"}"#)?.causes.first?.field == "apiVersion")
    }

    @Test("a fractional number where an integer belongs names the field")
    func fractionalInteger() throws {
        let v = patched(try tree(validManifest), "spec.decode.replicas", .double(1.5))
        let e = try #require(admissionError(v))
        #expect(e.causes.map(\.description).contains("spec.decode.replicas: expected an integer, got 1.5"), "\(e)")
    }
}
