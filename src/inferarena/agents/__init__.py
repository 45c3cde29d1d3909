"""Multi-agent workflows, measured like any other variant: `inferarena agents`.

A workflow (YAML, `config.WorkflowConfig`) is a set of agents, who sees whose messages, a number of
rounds and an aggregator (`workflow.run_task` runs one task through it). Each agent runs on a
generative variant the arena can build (`llama_cpp/q4_1`) or an OpenAI-compatible endpoint
(`chat`). Every message can pass through a gate before the others read it (`gate.Gate`,
AgentDropoutV2's rectify-or-reject): verifiers (`verifiers`, registered in `registry.VERIFIERS`; code
runs in `sandbox`) and an LLM auditor with failure indicators mined from the baseline's failures and
retrieved with MiniLM (`auditor`, `embed`) return pass, rectify with feedback, or reject. The arms
(no gate, static dropout, reject-only, rectify-or-reject) run on the same tasks (`tasks`) and seeds;
`measure` is the worker side (development phase, one arm), `run` the driver that stores each arm as a
variant of kind `workflow` (scenario `workflow`), so `show`, `report` and `compare` read it like any run.
"""
