# The offline quickstart: no network, no credentials. The model replays
# recorded answers from cassette.json, embeddings are hashed locally, and
# the sandbox may reach nothing but PyPI.
nemoclave {
  required_version = ">= 0.1"
}

variable "prompt" {
  type        = string
  default     = "What files are in my workspace?"
  description = "What the agent is asked; empty starts an interactive chat."
}

plugin "llm" "replay" {
  source = "builtin/llm-replay"
  config {
    cassette = "${path.blueprint}/cassette.json"
    mode     = "replay"
  }
}

plugin "embeddings" "local" {
  source = "builtin/embeddings-hash"
  config {
    dimensions = 256
  }
}

plugin "memory" "default" {
  source = "builtin/memory-sqlite"
  config {
    embeddings = plugin.embeddings.local
  }
}

# Tools plugins run on the gateway side, so root is the host directory that
# the sandbox sees as /workspace.
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

policy "quickstart" {
  presets = ["pypi"]
  filesystem {
    read_only  = ["/usr", "/lib", "/lib64", "/bin", "/etc"]
    read_write = ["/workspace", "/tmp"]
    protected  = [".git/hooks"]
  }
  unknown_hosts = "deny"
}

sandbox "quickstart" {
  driver    = "local"
  policy    = policy.quickstart
  workspace = "./workspace"
  resources {
    cpus   = 1
    memory = "2GiB"
    pids   = 512
  }
}

agent "assistant" {
  sandbox = sandbox.quickstart
  command = var.prompt == "" ? ["nemoclave", "agent"] : ["nemoclave", "agent", "-p", var.prompt]
  memory  = plugin.memory.default
  tools   = [plugin.tools.files]
}
