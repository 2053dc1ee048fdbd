# A research assistant that remembers across chats, reads and cites the
# documents in its workspace, delegates to a subagent and writes
# spreadsheets. Offline: the model replays cassette.json; swap the llm plugin
# for a real provider to ask anything (see examples/nvidia).
#
#   nemoclave run examples/research-assistant --var prompt="Remember that my favourite colour is teal."
#   nemoclave run examples/research-assistant --var prompt="What is my favourite colour?"
#   nemoclave run examples/research-assistant --var prompt="What does the handbook say about on-call?"
#   nemoclave run examples/research-assistant --var prompt="Ask the researcher what is in the workspace."
#   nemoclave run examples/research-assistant --var prompt="Make a spreadsheet of the sales figures."
nemoclave {
  required_version = ">= 0.1"
}

variable "prompt" {
  type        = string
  default     = "What does the handbook say about on-call?"
  description = "What the agent is asked; empty starts an interactive chat."
}

plugin "llm" "replay" {
  source = "builtin/llm-replay"
  config {
    cassette = "${path.blueprint}/cassette.json"
  }
}

plugin "embeddings" "local" {
  source = "builtin/embeddings-hash"
  config {
    dimensions = 384
  }
}

plugin "memory" "long_term" {
  source = "builtin/memory-sqlite"
  config {
    embeddings = plugin.embeddings.local
  }
}

plugin "retrieval" "docs" {
  source = "builtin/retrieval-sqlite"
  config {
    embeddings = plugin.embeddings.local
  }
}

plugin "dataproc" "docs" {
  source = "builtin/dataproc-docs"
}

plugin "tools" "files" {
  source = "builtin/tools-files"
  config {
    root = "${path.blueprint}/workspace"
  }
}

inference {
  default = "default"
  model "default" {
    provider = plugin.llm.replay
    model    = "replay"
  }
}

policy "research" {
  presets = ["pypi", "github"]
  filesystem {
    read_only  = ["/usr", "/lib", "/lib64", "/bin", "/etc"]
    read_write = ["/workspace", "/tmp"]
    protected  = [".git/hooks", ".git/config"]
  }
  unknown_hosts = "deny"
}

sandbox "research" {
  driver    = "local"
  policy    = policy.research
  workspace = "./workspace"
  resources {
    cpus   = 1
    memory = "2GiB"
    pids   = 512
  }
}

agent "assistant" {
  sandbox   = sandbox.research
  command   = var.prompt == "" ? ["nemoclave", "agent"] : ["nemoclave", "agent", "-p", var.prompt]
  memory    = plugin.memory.long_term
  retrieval = plugin.retrieval.docs
  tools     = [plugin.tools.files]

  subagent "researcher" {
    description = "Looks through the workspace files and reports what it finds."
    model       = "default"
    tools       = [plugin.tools.files]
  }
}
