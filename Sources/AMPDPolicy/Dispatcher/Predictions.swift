/// The latency predictions every routing policy shares, from the cost model
/// and the cluster view.
public struct Predictions: Sendable {
    public let cost: CostModel

    public init(cost: CostModel) { self.cost = cost }

    public func crossNode(_ a: WorkerView, _ b: WorkerView) -> Bool { a.node != b.node }

    /// Compute seconds of a prefill on `worker`: the profile, scaled by what was observed there.
    public func prefillSeconds(_ job: PrefillJob, on worker: WorkerView) -> Double {
        cost.prefillSeconds(history: job.history, new: job.new, tp: worker.tp) * worker.prefillScale
    }

    /// Local: wait for the owner's prefill queue, then compute; no transfer.
    public func local(_ job: PrefillJob, owner: WorkerView, now: Double) -> DispatchDecision.Option {
        let compute = prefillSeconds(job, on: owner)
        let ttft = owner.queueWait(now: now) + compute
        // The owner's batch stalls for the whole prefill: one token of every
        // running sequence is late by `compute`, raising their mean ITL by
        // compute / remaining tokens.
        let base = owner.windowedITL ?? cost.decodeStepSeconds(batch: max(1, owner.decodeBatch), context: owner.decodeContext, tp: owner.tp) * owner.decodeScale
        let itl = owner.decodeBatch > 0 ? base + compute / max(1, owner.meanRemainingDecode) : base
        return .init(target: .local(worker: owner.id), ttft: ttft, ownerITL: itl, kvBytes: 0)
    }

    /// Remote with the paper's Algorithm 1 cost: compute + both transfers +
    /// the queue, no link queueing and no overlap.
    public func remotePaper(_ job: PrefillJob, owner: WorkerView, worker: WorkerView, now: Double) -> DispatchDecision.Option {
        let x = crossNode(owner, worker)
        let ttft = prefillSeconds(job, on: worker)
            + cost.kvTransferSeconds(tokens: job.history, crossNode: x, tp: worker.tp)
            + cost.kvTransferSeconds(tokens: job.new, crossNode: x, tp: worker.tp)
            + worker.queuedSeconds
        return .init(target: .remote(worker: worker.id), ttft: ttft, ownerITL: owner.windowedITL ?? 0,
                     kvBytes: cost.kvBytes(tokens: job.history + job.new))
    }

    /// Remote as it will really unfold: the history read queues on the owner's
    /// link and overlaps the worker's queue wait (it is read lazily, at
    /// dequeue); then compute; then the new KV goes back.
    public func remote(_ job: PrefillJob, owner: WorkerView, worker: WorkerView, now: Double) -> DispatchDecision.Option {
        let x = crossNode(owner, worker)
        let read = cost.kvTransferSeconds(tokens: job.history, crossNode: x, tp: worker.tp)
        let start = max(now + worker.queueWait(now: now), max(now, owner.linkFreeAt) + read)
        let ttft = start - now + prefillSeconds(job, on: worker)
            + cost.kvTransferSeconds(tokens: job.new, crossNode: x, tp: worker.tp)
        return .init(target: .remote(worker: worker.id), ttft: ttft, ownerITL: owner.windowedITL ?? 0,
                     kvBytes: cost.kvBytes(tokens: job.history + job.new))
    }
}
