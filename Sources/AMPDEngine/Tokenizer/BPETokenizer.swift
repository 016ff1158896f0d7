/// Byte-level BPE tokenizer built from a GGUF file's `tokenizer.ggml.*`
/// metadata: vocabulary, token types, merges, pre-tokenizer, special tokens.
public struct BPETokenizer: Sendable {
    public enum TokenType: Int32, Sendable { case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    public let vocab: [String]
    public let types: [TokenType]
    public let preTokenizer: PreTokenizer
    public let bosID: Int32?
    public let eosID: Int32?
    public let addBOS: Bool
    /// Token ids that end a generation: EOS, EOT and `<|im_end|>`-style end tokens.
    public let stopIDs: Set<Int32>
    let ids: [String: Int32]
    /// (left id << 32 | right id) → (rank, merged id).
    let merges: [UInt64: (rank: Int32, id: Int32)]
    /// Control and user-defined tokens matched verbatim in text, longest first.
    let specials: [(text: [UInt8], id: Int32)]
    let byteIDs: [Int32]

    public init(gguf: GGUFFile) throws(EngineError) {
        do {
            let model = try gguf.string("tokenizer.ggml.model")
            guard model == "gpt2" else {
                throw EngineError.unsupportedModel("tokenizer model '\(model)' (tokenizer.ggml.model) is not supported: the native engine implements byte-level BPE ('gpt2')")
            }
            let tokens = try gguf.array("tokenizer.ggml.tokens")
            var vocab: [String] = []
            vocab.reserveCapacity(tokens.count)
            for (i, t) in tokens.enumerated() {
                guard let s = t.stringValue else { throw EngineError.tokenizer("tokenizer.ggml.tokens[\(i)] is not a string") }
                vocab.append(s)
            }
            self.vocab = vocab
            if let rawTypes = gguf.metadata["tokenizer.ggml.token_type"], case .array(let a) = rawTypes, a.count == vocab.count {
                types = a.map { TokenType(rawValue: Int32($0.intValue ?? 1)) ?? .normal }
            } else {
                types = Array(repeating: .normal, count: vocab.count)
            }
            var ids: [String: Int32] = [:]
            ids.reserveCapacity(vocab.count)
            for (i, s) in vocab.enumerated() where ids[s] == nil { ids[s] = Int32(i) }
            self.ids = ids

            var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
            let rawMerges = try gguf.array("tokenizer.ggml.merges")
            merges.reserveCapacity(rawMerges.count)
            for (rank, m) in rawMerges.enumerated() {
                guard let s = m.stringValue else { throw EngineError.tokenizer("tokenizer.ggml.merges[\(rank)] is not a string") }
                guard let space = s.firstIndex(of: " ", after: s.startIndex) else {
                    throw EngineError.tokenizer("tokenizer.ggml.merges[\(rank)] '\(s)' is not two tokens separated by a space")
                }
                let a = String(s[..<space]), b = String(s[s.index(after: space)...])
                guard let ia = ids[a], let ib = ids[b], let iab = ids[a + b] else { continue }
                let key = UInt64(UInt32(ia)) << 32 | UInt64(UInt32(ib))
                if merges[key] == nil { merges[key] = (Int32(rank), iab) }
            }
            self.merges = merges

            preTokenizer = try PreTokenizer(ggufName: (gguf.metadata["tokenizer.ggml.pre"]?.stringValue) ?? "default")
            bosID = gguf.metadata["tokenizer.ggml.bos_token_id"]?.intValue.map(Int32.init)
            eosID = gguf.metadata["tokenizer.ggml.eos_token_id"]?.intValue.map(Int32.init)
            addBOS = gguf.metadata["tokenizer.ggml.add_bos_token"]?.boolValue ?? false

            var stops = Set<Int32>()
            if let e = eosID { stops.insert(e) }
            if let e = gguf.metadata["tokenizer.ggml.eot_token_id"]?.intValue { stops.insert(Int32(e)) }
            for name in ["<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "<end_of_turn>"] {
                if let id = ids[name], types[Int(id)] == .control || name == "<|im_end|>" { stops.insert(id) }
            }
            stopIDs = stops

            var specials: [(text: [UInt8], id: Int32)] = []
            for (i, t) in types.enumerated() where t == .control || t == .userDefined {
                if !vocab[i].isEmpty { specials.append((Array(vocab[i].utf8), Int32(i))) }
            }
            specials.sort { $0.text.count > $1.text.count }
            self.specials = specials

            var byteIDs = [Int32](repeating: -1, count: 256)
            for b in 0..<256 {
                if let id = ids[String(ByteLevel.byteToScalar[b])] { byteIDs[b] = id }
            }
            self.byteIDs = byteIDs
        } catch let e as GGUFError {
            throw .invalidModel(e)
        } catch let e as EngineError {
            throw e
        } catch {
            throw .tokenizer("\(error)")
        }
    }

    public var vocabularySize: Int { vocab.count }

    public func id(of token: String) -> Int32? { ids[token] }

    /// Token ids of `text`. With `parseSpecial`, control and user-defined
    /// tokens written in the text (`<|im_start|>`) become their ids, as
    /// llama.cpp's `special=true`; otherwise they are tokenized as plain text.
    public func encode(_ text: String, addBOS: Bool = false, parseSpecial: Bool = true) -> [Int32] {
        var out: [Int32] = []
        if addBOS, let b = bosID { out.append(b) }
        let bytes = Array(text.utf8)
        var start = 0
        var i = 0
        if parseSpecial, !specials.isEmpty {
            while i < bytes.count {
                if let match = specials.first(where: { sp in
                    sp.text.count <= bytes.count - i && bytes[i..<i + sp.text.count].elementsEqual(sp.text)
                }) {
                    if start < i { encodePlain(bytes[start..<i], into: &out) }
                    out.append(match.id)
                    i += match.text.count
                    start = i
                    continue
                }
                i += 1
            }
        }
        if start < bytes.count { encodePlain(bytes[start...], into: &out) }
        return out
    }

    func encodePlain(_ bytes: ArraySlice<UInt8>, into out: inout [Int32]) {
        let text = String(decoding: bytes, as: UTF8.self)
        for word in preTokenizer.split(text) { bpe(Array(word.utf8), into: &out) }
    }

    /// Merges the byte symbols of one word by rank until no merge applies.
    func bpe(_ bytes: [UInt8], into out: inout [Int32]) {
        // Llama 3 vocabularies take a word that is itself a token whole.
        if preTokenizer == .llama3, let whole = ids[String(String.UnicodeScalarView(ByteLevel.encode(bytes)))] {
            out.append(whole)
            return
        }
        var symbols = bytes.map { byteIDs[Int($0)] }
        if symbols.contains(-1) {
            // A byte without a token: emit what is representable (never happens with byte-level vocabularies).
            out.append(contentsOf: symbols.filter { $0 >= 0 })
            return
        }
        while symbols.count > 1 {
            var best = Int32.max, bestAt = -1, bestID: Int32 = 0
            for j in 0..<symbols.count - 1 {
                let key = UInt64(UInt32(symbols[j])) << 32 | UInt64(UInt32(symbols[j + 1]))
                if let m = merges[key], m.rank < best { best = m.rank; bestAt = j; bestID = m.id }
            }
            if bestAt < 0 { break }
            // Merge every occurrence of the best pair, left to right.
            let left = symbols[bestAt], right = symbols[bestAt + 1]
            var merged: [Int32] = []
            merged.reserveCapacity(symbols.count)
            var j = 0
            while j < symbols.count {
                if j + 1 < symbols.count, symbols[j] == left, symbols[j + 1] == right {
                    merged.append(bestID); j += 2
                } else {
                    merged.append(symbols[j]); j += 1
                }
            }
            symbols = merged
        }
        out.append(contentsOf: symbols)
    }

    /// The bytes a token stands for; control tokens give their text only if `special`.
    public func bytes(of id: Int32, special: Bool = false) -> [UInt8] {
        guard id >= 0, Int(id) < vocab.count else { return [] }
        switch types[Int(id)] {
        case .control: return special ? Array(vocab[Int(id)].utf8) : []
        case .userDefined: return Array(vocab[Int(id)].utf8)
        default: return ByteLevel.decode(vocab[Int(id)])
        }
    }

    /// Text of a token sequence (invalid UTF-8 at the edges is repaired with U+FFFD).
    public func decode(_ ids: [Int32], special: Bool = false) -> String {
        String(decoding: ids.flatMap { bytes(of: $0, special: special) }, as: UTF8.self)
    }
}

extension String {
    fileprivate func firstIndex(of c: Character, after start: Index) -> Index? {
        // A merge's halves are non-empty, so the separator is after the first character.
        guard start < endIndex else { return nil }
        return self[index(after: start)...].firstIndex(of: c)
    }
}
