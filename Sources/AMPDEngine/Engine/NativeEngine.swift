import Foundation

/// Configuration of a native engine instance.
public struct NativeEngineOptions: Sendable {
    public var blockTokens: Int = 16
    /// KV capacity in tokens (rounded up to whole blocks).
    public var kvCapacityTokens: Int = 16_384
    /// Most tokens one step computes (decode tokens first, then prefill chunks).
    public var stepTokenBudget: Int = 256
    /// Kernel threads (default: all cores).
    public var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// The first sequence id this engine hands out: an engine that replaces another under the
    /// same name starts elsewhere, so that a stale id never reaches a new sequence.
    public var firstSequenceID: UInt64 = 1

    public init() {}
}

/// The native CPU engine: continuous batching over a paged KV cache with
/// prefix sharing. Each step batches every decoding sequence's next token with
/// chunks of waiting prefills (up to the step budget), runs one forward pass,
/// then samples for the sequences that reached the end of their input.
public actor NativeEngine: InferenceEngine {
    nonisolated public let model: LlamaModel
    nonisolated public let tokenizer: BPETokenizer
    nonisolated public let chatTemplate: ChatTemplate?
    nonisolated public let options: NativeEngineOptions
    nonisolated public let fingerprint: String
    let storage: KVStorage
    var blocks: KVBlockManager
    var sequences: [SequenceID: Sequence] = [:]
    var nextID: SequenceID = 1
    var loopRunning = false
    var counters = (prefill: 0, decode: 0, steps: 0, evictedSequences: 0)

    struct Sequence {
        var tokens: [Int32]
        var computed: Int
        var blockTable: [Int32]
        /// Chained prefix hashes of the full computed blocks, in order (kept, never recomputed).
        var blockHashes: [UInt64] = []
        /// Set while a request is generating on this sequence.
        var active: Active?
        /// When a kept-alive round finished: an idle session's KV, which the engine may
        /// drop (oldest first) when a running request needs blocks. Nil while in use, and
        /// for sequences waiting for their export or their first round after an import.
        var idleSince: ContinuousClock.Instant? = nil
    }

    struct Active {
        var request: GenerationRequest
        var sampler: Sampler
        var stops: Set<Int32>
        var continuation: AsyncThrowingStream<GenerationEvent, any Error>.Continuation
        var promptTokens: Int
        var cachedTokens: Int
        var generated = 0
        var submitted: ContinuousClock.Instant
        var firstTokenAt: ContinuousClock.Instant?
        var lastTokenAt: ContinuousClock.Instant?
        var cancelled = false
    }

    public init(modelPath: String, options: NativeEngineOptions = NativeEngineOptions()) throws(EngineError) {
        let gguf: GGUFFile
        do { gguf = try GGUFFile(path: modelPath) } catch { throw .invalidModel(error) }
        try self.init(gguf: gguf, options: options)
    }

    public init(gguf: GGUFFile, options: NativeEngineOptions = NativeEngineOptions()) throws(EngineError) {
        ParallelFor.threads = options.threads
        model = try LlamaModel(gguf: gguf)
        tokenizer = try BPETokenizer(gguf: gguf)
        chatTemplate = try? ChatTemplate(gguf: gguf)
        self.options = options
        guard options.blockTokens > 0, options.kvCapacityTokens > 0, options.stepTokenBudget > 0 else {
            throw .invalidRequest("block size, KV capacity and step budget must be positive")
        }
        let blockCount = (options.kvCapacityTokens + options.blockTokens - 1) / options.blockTokens
        storage = KVStorage(layers: model.config.layers, blockTokens: options.blockTokens, kvDim: model.config.kvDim, blockCount: blockCount)
        blocks = KVBlockManager(blockCount: blockCount, blockTokens: options.blockTokens)
        nextID = max(1, options.firstSequenceID)
        fingerprint = Self.fingerprint(gguf: gguf, config: model.config)
    }

    /// Identifies the model's weights and geometry: equal fingerprints mean KV is interchangeable.
    static func fingerprint(gguf: GGUFFile, config: LlamaConfig) -> String {
        var desc = "\(config.architecture)|\(config.layers)|\(config.embedding)|\(config.heads)|\(config.kvHeads)|\(config.headDim)|\(config.vocabSize)|\(config.ropeBase)"
        for name in gguf.tensorOrder {
            let t = gguf.tensors[name]!
            desc += "|\(name):\(t.type):\(t.dims)"
        }
        var bytes = Array(desc.utf8)
        if let t = gguf.tensors["token_embd.weight"] {
            let n = min(4096, t.byteCount)
            bytes += Array(UnsafeRawBufferPointer(start: gguf.data(of: t), count: n))
        }
        return String(format: "%016llx", Checksum64.of(bytes[...]))
    }

    // MARK: tokens

    public func encode(_ text: String) -> [Int32] { tokenizer.encode(text) }

    // MARK: InferenceEngine

    public func generate(_ request: GenerationRequest) throws(EngineError) -> AsyncThrowingStream<GenerationEvent, any Error> {
        try request.sampling.validate()
        guard request.maxTokens >= 1 || request.prefillOnly else { throw .invalidRequest("max_tokens must be at least 1; got \(request.maxTokens)") }
        let vocab = Int32(model.config.vocabSize)
        if let bad = request.tokens.firstIndex(where: { $0 < 0 || $0 >= vocab }) {
            throw .invalidRequest("token \(request.tokens[bad]) at index \(bad) is outside the vocabulary (0..<\(vocab))")
        }
        var seq: Sequence
        let id: SequenceID
        var cached = 0
        if let existing = request.sequence {
            guard let s = sequences[existing] else { throw .unknownSequence(existing) }
            guard s.active == nil else { throw .sequenceBusy(existing) }
            seq = s
            seq.idleSince = nil
            id = existing
            seq.tokens += request.tokens
            cached = seq.computed
        } else {
            guard !request.tokens.isEmpty else { throw .invalidRequest("a new sequence needs at least one token") }
            seq = Sequence(tokens: request.tokens, computed: 0, blockTable: [], active: nil)
            id = nextID
            nextID += 1
            // Share cached full blocks of the prefix, leaving at least one token to compute.
            let shareable = (request.tokens.count - 1) / options.blockTokens
            let hashes = PrefixHash.chain(Array(request.tokens[0..<(shareable * options.blockTokens)]), blockTokens: options.blockTokens)
            seq.blockTable = blocks.acquirePrefix(hashes)
            seq.blockHashes = Array(hashes.prefix(seq.blockTable.count))
            seq.computed = seq.blockTable.count * options.blockTokens
            cached = seq.computed
        }
        let limit = model.config.contextLength
        let maxTotal = seq.tokens.count + (request.prefillOnly ? 1 : request.maxTokens)
        guard seq.tokens.count + 1 <= limit else {
            if request.sequence == nil { blocks.release(seq.blockTable) } else { sequences[id]!.tokens.removeLast(request.tokens.count) }
            throw .contextTooLong(tokens: maxTotal, limit: limit)
        }
        let (stream, continuation) = AsyncThrowingStream<GenerationEvent, any Error>.makeStream()
        seq.active = Active(request: request, sampler: Sampler(request.sampling),
                            stops: request.stopTokens ?? tokenizer.stopIDs, continuation: continuation,
                            promptTokens: request.tokens.count, cachedTokens: cached, submitted: .now)
        sequences[id] = seq
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination {
                Task { await self?.cancel(id) }
            }
        }
        startLoop()
        return stream
    }

    func cancel(_ id: SequenceID) {
        guard sequences[id]?.active != nil else { return }
        sequences[id]!.active!.cancelled = true
        startLoop()
    }

    public func release(_ sequence: SequenceID) {
        guard let s = sequences.removeValue(forKey: sequence) else { return }
        s.active?.continuation.finish(throwing: EngineError.unknownSequence(sequence))
        blocks.release(s.blockTable)
    }

    public func stats() -> EngineStats {
        let running = sequences.values.filter { $0.active != nil && $0.computed >= $0.tokens.count - 1 }.count
        let active = sequences.values.filter { $0.active != nil }.count
        return EngineStats(
            runningSequences: running, waitingSequences: active - running, liveSequences: sequences.count,
            kvBlocksTotal: blocks.blockCount, kvBlocksUsed: blocks.usedBlocks, kvBlocksCached: blocks.cachedBlocks,
            kvBlocksFree: blocks.availableBlocks, prefixCacheHitBlocks: blocks.hits, evictedBlocks: blocks.evictions,
            prefillTokens: counters.prefill, decodeTokens: counters.decode, steps: counters.steps,
            evictedIdleSequences: counters.evictedSequences)
    }

    /// How many leading tokens of a live sequence have KV.
    public func computedTokens(of sequence: SequenceID) throws(EngineError) -> Int {
        guard let s = sequences[sequence] else { throw .unknownSequence(sequence) }
        return s.computed
    }

    /// Cuts a live, idle sequence back to its first `tokens` tokens, so that a different
    /// continuation can follow (a retried, edited or branched conversation). Returns how many
    /// tokens it keeps, with their KV: `tokens`, or fewer — never more than were computed, and
    /// a cut inside a full block (one the prefix cache may share with other sequences) moves to
    /// that block's start, since new tokens would overwrite it. The caller sends the rest again.
    public func truncate(_ sequence: SequenceID, to tokens: Int) throws(EngineError) -> Int {
        guard var s = sequences[sequence] else { throw .unknownSequence(sequence) }
        guard s.active == nil else { throw .sequenceBusy(sequence) }
        guard tokens >= 0 else { throw .invalidRequest("cannot truncate to \(tokens) tokens") }
        let B = options.blockTokens
        var keep = min(tokens, s.computed)
        if keep % B != 0 && keep / B < s.blockHashes.count { keep = keep / B * B }
        let blocksKept = (keep + B - 1) / B
        if blocksKept < s.blockTable.count { blocks.release(Array(s.blockTable[blocksKept...])) }
        s.blockTable = Array(s.blockTable.prefix(blocksKept))
        s.blockHashes = Array(s.blockHashes.prefix(keep / B))
        s.computed = keep
        s.tokens = Array(s.tokens.prefix(keep))
        s.idleSince = .now
        sequences[sequence] = s
        return keep
    }

    /// Tokens of a live sequence (history including sampled, not yet computed tokens).
    public func tokens(of sequence: SequenceID) throws(EngineError) -> [Int32] {
        guard let s = sequences[sequence] else { throw .unknownSequence(sequence) }
        return s.tokens
    }

    // MARK: export / import

    public func exportKV(_ sequence: SequenceID) throws(EngineError) -> [UInt8] {
        try exportKV(sequence, fromToken: 0)
    }

    /// Exports the blocks from the one holding token `start` on (the whole sequence for 0);
    /// the receiver must already hold the earlier ones (`importKV(_:into:)`).
    public func exportKV(_ sequence: SequenceID, fromToken start: Int) throws(EngineError) -> [UInt8] {
        guard let s = sequences[sequence] else { throw .unknownSequence(sequence) }
        guard s.active == nil else { throw .sequenceBusy(sequence) }
        let c = model.config
        let B = options.blockTokens
        let usedBlocks = (s.computed + B - 1) / B
        let firstBlock = min(max(0, start) / B, max(0, usedBlocks - 1))
        let fullHashes = s.blockHashes
        let header = KVExportHeader(
            modelFingerprint: fingerprint, architecture: c.architecture, layers: c.layers, kvHeads: c.kvHeads,
            headDim: c.headDim, dtype: "f16", blockTokens: B, tokens: s.tokens,
            computedTokens: s.computed, blockHashes: fullHashes.map { String($0, radix: 16) }, blockCount: usedBlocks - firstBlock,
            startToken: firstBlock > 0 ? firstBlock * B : nil)
        do {
            return try KVExportFormat.encode(header: header) { out in
                for b in s.blockTable[firstBlock..<usedBlocks] {
                    for l in 0..<c.layers {
                        out.append(contentsOf: storage.blockBytes(layer: l, block: Int(b), values: false))
                        out.append(contentsOf: storage.blockBytes(layer: l, block: Int(b), values: true))
                    }
                }
            }
        } catch {
            throw .invalidRequest("cannot encode export header: \(error)")
        }
    }

    public func importKV(_ bytes: [UInt8]) throws(EngineError) -> SequenceID {
        try importKV(bytes, into: nil)
    }

    /// Imports an export as a new sequence, or, for an incremental export, onto the live idle
    /// sequence `into`, whose tokens must begin with the export's tokens up to its start and
    /// whose KV must cover them: its blocks from the start on are replaced by the export's.
    public func importKV(_ bytes: [UInt8], into target: SequenceID?) throws(EngineError) -> SequenceID {
        let (h, payload) = try KVExportFormat.decode(bytes)
        let start = h.startToken ?? 0
        var base: Sequence?
        var done = false
        defer {
            // A failed import leaves the target as it was: idle, so evictable again.
            if !done, let target, base != nil, sequences[target] != nil { sequences[target]!.idleSince = .now }
        }
        if start > 0 {
            guard let target else { throw .invalidKVExport("an incremental export (from token \(start)) needs the sequence it extends") }
            guard let t = sequences[target] else { throw .unknownSequence(target) }
            guard t.active == nil else { throw .sequenceBusy(target) }
            guard start % options.blockTokens == 0, t.computed >= start, h.tokens.count >= start,
                  Array(t.tokens.prefix(start)) == Array(h.tokens.prefix(start)) else {
                throw .invalidKVExport("the export extends a different history: its first \(start) tokens are not sequence \(target)'s computed ones")
            }
            base = t
            sequences[target]!.idleSince = nil   // in use now: not a candidate for makeRoom
        }
        let c = model.config
        guard h.modelFingerprint == fingerprint else {
            throw .invalidKVExport("model fingerprint \(h.modelFingerprint) differs from this engine's \(fingerprint)")
        }
        guard h.architecture == c.architecture, h.layers == c.layers, h.kvHeads == c.kvHeads, h.headDim == c.headDim else {
            throw .invalidKVExport("geometry \(h.layers) layers × \(h.kvHeads) KV heads × \(h.headDim) differs from this engine's \(c.layers) × \(c.kvHeads) × \(c.headDim)")
        }
        guard h.dtype == "f16" else { throw .invalidKVExport("dtype '\(h.dtype)'; this engine stores f16") }
        guard h.blockTokens == options.blockTokens else {
            throw .invalidKVExport("block size \(h.blockTokens) tokens; this engine uses \(options.blockTokens)")
        }
        guard h.computedTokens >= 1, h.computedTokens <= h.tokens.count, h.tokens.count < c.contextLength,
              h.blockCount == (h.computedTokens + h.blockTokens - 1) / h.blockTokens - start / h.blockTokens else {
            throw .invalidKVExport("inconsistent counts: \(h.tokens.count) tokens, \(h.computedTokens) computed, \(h.blockCount) blocks")
        }
        let vocab = Int32(c.vocabSize)
        guard h.tokens.allSatisfy({ $0 >= 0 && $0 < vocab }) else { throw .invalidKVExport("a token id is outside the vocabulary") }
        let perLayer = storage.blockTokens * storage.kvDim * MemoryLayout<Float16>.size
        guard payload.count == h.blockCount * c.layers * 2 * perLayer else {
            throw .invalidKVExport("payload is \(payload.count) bytes; \(h.blockCount) blocks need \(h.blockCount * c.layers * 2 * perLayer)")
        }
        let fullHashes = PrefixHash.chain(Array(h.tokens[0..<h.computedTokens]), blockTokens: h.blockTokens)
        guard fullHashes.map({ String($0, radix: 16) }) == h.blockHashes else {
            throw .invalidKVExport("block hashes do not match the tokens")
        }
        makeRoom(h.blockCount)
        try blocks.reserveCheck(h.blockCount)
        let firstBlock = start / h.blockTokens
        var table: [Int32] = []
        var offset = payload.lowerBound
        for i in 0..<h.blockCount {
            let b = try blocks.allocate()
            table.append(b)
            bytes.withUnsafeBytes { raw in
                for l in 0..<c.layers {
                    storage.blockBytes(layer: l, block: Int(b), values: false).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<offset + perLayer]))
                    offset += perLayer
                    storage.blockBytes(layer: l, block: Int(b), values: true).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<offset + perLayer]))
                    offset += perLayer
                }
            }
            if firstBlock + i < fullHashes.count { blocks.register(b, hash: fullHashes[firstBlock + i]) }
        }
        if let target, var t = base {
            // Keep the blocks before the start; the export's replace the rest.
            blocks.release(Array(t.blockTable[firstBlock...]))
            t.blockTable = Array(t.blockTable.prefix(firstBlock)) + table
            t.tokens = h.tokens
            t.computed = h.computedTokens
            t.blockHashes = fullHashes
            t.idleSince = nil
            sequences[target] = t
            done = true
            return target
        }
        let id = nextID
        nextID += 1
        sequences[id] = Sequence(tokens: h.tokens, computed: h.computedTokens, blockTable: table, blockHashes: fullHashes, active: nil)
        return id
    }

    // MARK: the loop

    func startLoop() {
        guard !loopRunning else { return }
        loopRunning = true
        Task { await self.runLoop() }
    }

    func runLoop() async {
        while step() {
            await Task.yield()
        }
        loopRunning = false
    }

    /// One scheduling step and forward pass. Returns false when there is no work.
    func step() -> Bool {
        // Finish cancelled requests first.
        for (id, s) in sequences where s.active?.cancelled == true {
            finish(id, reason: .cancelled)
        }
        let actives = sequences.filter { $0.value.active != nil }.keys.sorted()
        guard !actives.isEmpty else { return false }
        var budget = options.stepTokenBudget
        var items: [ForwardItem] = []
        var owners: [SequenceID] = []
        // Decode tokens first (one pending token each), then prefill chunks, oldest first.
        let decoding = actives.filter { let s = sequences[$0]!; return s.tokens.count - s.computed == 1 }
        let prefilling = actives.filter { let s = sequences[$0]!; return s.tokens.count - s.computed > 1 }
        for id in decoding + prefilling where budget > 0 {
            var s = sequences[id]!
            let remaining = s.tokens.count - s.computed
            let n = min(remaining, budget)
            do {
                try ensureBlocks(&s, upTo: s.computed + n)
            } catch {
                sequences[id] = s
                if items.isEmpty { fail(id, error) }
                continue
            }
            sequences[id] = s
            items.append(ForwardItem(tokens: Array(s.tokens[s.computed..<(s.computed + n)]), startPosition: s.computed,
                                     blockTable: s.blockTable, wantLogits: n == remaining))
            owners.append(id)
            budget -= n
        }
        guard !items.isEmpty else { return !sequences.values.allSatisfy { $0.active == nil } }
        let logits = model.forward(items, kv: storage)
        counters.steps += 1
        var li = 0
        let now = ContinuousClock.now
        for (item, id) in zip(items, owners) {
            var s = sequences[id]!
            let before = s.computed
            s.computed += item.tokens.count
            if item.tokens.count == 1 && item.wantLogits && before == s.tokens.count - 1 && s.active?.generated ?? 0 > 0 {
                counters.decode += 1
            } else {
                counters.prefill += item.tokens.count
            }
            registerFullBlocks(&s)
            sequences[id] = s
            guard item.wantLogits else { continue }
            let next = sequences[id]!.active!.sampler.sample(logits[li])
            li += 1
            emit(id, token: next, at: now)
        }
        return true
    }

    func ensureBlocks(_ s: inout Sequence, upTo tokens: Int) throws(EngineError) {
        let needed = (tokens + options.blockTokens - 1) / options.blockTokens - s.blockTable.count
        guard needed > 0 else { return }
        makeRoom(needed)
        try blocks.reserveCheck(needed)
        for _ in 0..<needed { s.blockTable.append(try blocks.allocate()) }
    }

    /// Drops idle sessions' sequences, least recently used first, until `needed` blocks are
    /// free or evictable: a session's KV kept between rounds is a cache, not a reservation,
    /// so running requests never fail while idle ones hold memory. Their full blocks stay
    /// in the prefix cache (a returning session may still hit them); a round on a dropped
    /// sequence gets `unknownSequence`, and its caller recomputes from the tokens it kept.
    func makeRoom(_ needed: Int) {
        guard needed > blocks.availableBlocks else { return }
        let idle = sequences.filter { $0.value.active == nil && $0.value.idleSince != nil }
            .sorted { ($0.value.idleSince!, $0.key) < ($1.value.idleSince!, $1.key) }
        for (id, s) in idle {
            if needed <= blocks.availableBlocks { break }
            sequences[id] = nil
            blocks.release(s.blockTable)
            counters.evictedSequences += 1
        }
    }

    /// Hashes and registers the blocks that became full, chaining from the last known hash.
    func registerFullBlocks(_ s: inout Sequence) {
        let B = options.blockTokens
        let full = s.computed / B
        var parent = s.blockHashes.last ?? PrefixHash.root
        for i in s.blockHashes.count..<max(s.blockHashes.count, full) {
            parent = PrefixHash.block(parent: parent, tokens: s.tokens[(i * B)..<((i + 1) * B)])
            s.blockHashes.append(parent)
            blocks.register(s.blockTable[i], hash: parent)
        }
    }

    func emit(_ id: SequenceID, token: Int32, at now: ContinuousClock.Instant) {
        var a = sequences[id]!.active!
        a.generated += 1
        if a.firstTokenAt == nil { a.firstTokenAt = now }
        a.lastTokenAt = now
        sequences[id]!.active = a
        a.continuation.yield(.token(token))
        if a.stops.contains(token) {
            finish(id, reason: .stop)
            return
        }
        sequences[id]!.tokens.append(token)
        if a.request.prefillOnly {
            finish(id, reason: .prefilled)
        } else if a.generated >= a.request.maxTokens || sequences[id]!.tokens.count >= model.config.contextLength {
            finish(id, reason: .length)
        }
    }

    func finish(_ id: SequenceID, reason: FinishReason) {
        guard let a = sequences[id]?.active else { return }
        sequences[id]!.active = nil
        let ttft = a.firstTokenAt.map { seconds(a.submitted, $0) } ?? 0
        let tpot = a.generated > 1 ? seconds(a.firstTokenAt!, a.lastTokenAt!) / Double(a.generated - 1) : 0
        a.continuation.yield(.finished(GenerationSummary(
            sequence: id, reason: reason, promptTokens: a.promptTokens, cachedTokens: a.cachedTokens,
            generatedTokens: a.generated, timeToFirstToken: ttft, timePerOutputToken: tpot)))
        a.continuation.finish()
        // A prefill-only sequence stays for its export; the caller releases it.
        if !(a.request.keepAlive || a.request.prefillOnly) || reason == .cancelled {
            let s = sequences.removeValue(forKey: id)!
            blocks.release(s.blockTable)
        } else if !a.request.prefillOnly {
            sequences[id]!.idleSince = ContinuousClock.now
        }
    }

    func fail(_ id: SequenceID, _ error: any Error) {
        guard let s = sequences.removeValue(forKey: id) else { return }
        s.active?.continuation.finish(throwing: error)
        blocks.release(s.blockTable)
    }

    func seconds(_ a: ContinuousClock.Instant, _ b: ContinuousClock.Instant) -> Double {
        let d = b - a
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
