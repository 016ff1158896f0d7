/// Splits text into the words that byte-level BPE merges within, following
/// the pre-tokenizer the GGUF file names in `tokenizer.ggml.pre`. Implemented
/// by hand over Unicode general categories (no regex engine), matching the
/// semantics of the regular expressions those tokenizers were trained with.
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// GPT-2 after first isolating every digit (`\p{N}`): SmolLM, StarCoder, Refact.
    case digitsThenGPT2
    /// Llama 3: case-insensitive contractions, `[^\r\n\p{L}\p{N}]?\p{L}+`, `\p{N}{1,3}`,
    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*`, `\s*[\r\n]+`, `\s+(?!\S)`, `\s+`.
    case llama3
    /// Qwen 2: as Llama 3 with single digits.
    case qwen2

    /// The pre-tokenizer for a `tokenizer.ggml.pre` value.
    public init(ggufName: String) throws(EngineError) {
        switch ggufName {
        case "default", "gpt2", "gpt-2": self = .gpt2
        case "smollm", "starcoder", "refact", "codeshell", "command-r", "exaone", "minerva": self = .digitsThenGPT2
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral", "tekken": self = .llama3
        case "qwen2", "deepseek-r1-qwen", "megrez", "hunyuan": self = .qwen2
        default:
            throw .unsupportedModel("pre-tokenizer '\(ggufName)' (tokenizer.ggml.pre) is not supported by the native engine (supported: gpt2, smollm, starcoder, llama3, qwen2 and their aliases)")
        }
    }

    struct Flags {
        var letter = false, number = false, whitespace = false, known = false
    }

    @inline(__always) static func flags(_ s: Unicode.Scalar) -> Flags {
        let p = s.properties
        var f = Flags()
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: f.letter = true
        case .decimalNumber, .letterNumber, .otherNumber: f.number = true
        case .unassigned: break
        default: break
        }
        f.whitespace = p.isWhitespace
        f.known = p.generalCategory != .unassigned || f.whitespace
        return f
    }

    /// The words of `text`, as ranges of its Unicode scalars.
    public func split(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var words: [Range<Int>] = []
        switch self {
        case .gpt2:
            Self.gpt2(scalars, 0..<scalars.count, into: &words)
        case .digitsThenGPT2:
            var start = 0
            for i in 0..<scalars.count where Self.flags(scalars[i]).number {
                if start < i { Self.gpt2(scalars, start..<i, into: &words) }
                words.append(i..<i + 1)
                start = i + 1
            }
            if start < scalars.count { Self.gpt2(scalars, start..<scalars.count, into: &words) }
        case .llama3:
            Self.llama3(scalars, maxDigits: 3, into: &words)
        case .qwen2:
            Self.llama3(scalars, maxDigits: 1, into: &words)
        }
        return words.map { r in
            var s = String.UnicodeScalarView()
            s.append(contentsOf: scalars[r])
            return String(s)
        }
    }

    static func gpt2(_ c: [Unicode.Scalar], _ range: Range<Int>, into words: inout [Range<Int>]) {
        let end = range.upperBound
        func at(_ i: Int) -> Flags { i < end ? flags(c[i]) : Flags() }
        var pos = range.lowerBound
        while pos < end {
            let start = pos
            let cpt = c[pos]
            if cpt == "'", pos + 1 < end {
                let n = c[pos + 1]
                if n == "s" || n == "t" || n == "m" || n == "d" { words.append(pos..<pos + 2); pos += 2; continue }
                if pos + 2 < end {
                    let nn = c[pos + 2]
                    if (n == "r" && nn == "e") || (n == "v" && nn == "e") || (n == "l" && nn == "l") {
                        words.append(pos..<pos + 3); pos += 3; continue
                    }
                }
            }
            let lead = cpt == " " ? at(pos + 1) : at(pos)
            if lead.letter || lead.number {
                if cpt == " " { pos += 1 }
                let wantLetter = lead.letter
                while pos < end, wantLetter ? at(pos).letter : at(pos).number { pos += 1 }
                words.append(start..<pos); continue
            }
            if lead.known, !lead.whitespace {
                if cpt == " " { pos += 1 }
                while pos < end { let f = at(pos); if f.whitespace || f.letter || f.number || !f.known { break }; pos += 1 }
                words.append(start..<pos); continue
            }
            var spaces = 0
            while pos + spaces < end, at(pos + spaces).whitespace { spaces += 1 }
            if spaces > 1, pos + spaces < end {
                pos += spaces - 1
                words.append(start..<pos); continue
            }
            if spaces > 0 {
                pos += spaces
                words.append(start..<pos); continue
            }
            pos += 1
            words.append(start..<pos)
        }
    }

    static func llama3(_ c: [Unicode.Scalar], maxDigits: Int, into words: inout [Range<Int>]) {
        let end = c.count
        func at(_ i: Int) -> Flags { i < end ? flags(c[i]) : Flags() }
        func lower(_ i: Int) -> Unicode.Scalar? {
            guard i < end else { return nil }
            let v = c[i].value
            return (65...90).contains(v) ? Unicode.Scalar(v + 32) : c[i]
        }
        func isNewline(_ i: Int) -> Bool { i < end && (c[i] == "\r" || c[i] == "\n") }
        var pos = 0
        while pos < end {
            let start = pos
            if c[pos] == "'", pos + 1 < end {
                let n = lower(pos + 1)
                if n == "s" || n == "t" || n == "m" || n == "d" { words.append(pos..<pos + 2); pos += 2; continue }
                if pos + 2 < end {
                    let nn = lower(pos + 2)
                    if (n == "r" && nn == "e") || (n == "v" && nn == "e") || (n == "l" && nn == "l") {
                        words.append(pos..<pos + 3); pos += 3; continue
                    }
                }
            }
            let f = at(pos)
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !isNewline(pos), !f.letter, !f.number, at(pos + 1).letter {
                pos += 1
            }
            if at(pos).letter {
                while at(pos).letter { pos += 1 }
                words.append(start..<pos); continue
            }
            pos = start
            // \p{N}{1,maxDigits}
            if f.number {
                var n = 0
                while n < maxDigits, at(pos).number { pos += 1; n += 1 }
                words.append(start..<pos); continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let lead = c[pos] == " " ? at(pos + 1) : f
            if lead.known, !lead.whitespace, !lead.letter, !lead.number {
                if c[pos] == " " { pos += 1 }
                while pos < end { let g = at(pos); if g.whitespace || g.letter || g.number || !g.known { break }; pos += 1 }
                while isNewline(pos) { pos += 1 }
                words.append(start..<pos); continue
            }
            // \s*[\r\n]+ , \s+(?!\S) , \s+
            var spaces = 0
            var lastNewline = -1
            while at(pos + spaces).whitespace {
                if isNewline(pos + spaces) { lastNewline = pos + spaces }
                spaces += 1
            }
            if lastNewline >= 0 {
                pos = lastNewline + 1
                words.append(start..<pos); continue
            }
            if spaces > 1, pos + spaces < end {
                pos += spaces - 1
                words.append(start..<pos); continue
            }
            if spaces > 0 {
                pos += spaces
                words.append(start..<pos); continue
            }
            pos += 1
            words.append(start..<pos)
        }
    }
}
