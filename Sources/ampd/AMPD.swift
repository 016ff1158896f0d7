import ArgumentParser

/// `ampd`: the one executable. Subcommands only; the logic lives in the modules.
@main
struct AMPD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ampd",
        abstract: "Multi-round LLM serving with prefill/decode disaggregation.",
        subcommands: [
            UpCommand.self, ControllerCommand.self, AgentCommand.self, GatewayCommand.self, ApplyCommand.self, GetCommand.self, DescribeCommand.self,
            DeleteCommand.self, ScaleCommand.self, DecisionsCommand.self, OpenAPICommand.self, KubeconfigCommand.self, CRDCommand.self,
            GenerateCommand.self, EngineBenchCommand.self, ControllerBenchCommand.self, SimCommand.self, PlanCommand.self, PolicyBenchCommand.self, LoadgenCommand.self, KVPoolBenchCommand.self,
        ])
}
