# The quickstart stack with an agent that answers one prompt and then keeps
# its sandbox running, so the operator commands can be checked against it.
variable "cassette" {
  type = string
}

variable "prompt" {
  type    = string
  default = "What files are in my workspace?"
}

plugin "llm" "replay" {
  source = "builtin/llm-replay"
  config {
    cassette = var.cassette
    mode     = "replay"
  }
}

# Never called: it is here so the gateway holds a real credential that must
# not reach the sandbox (SECURITY-TESTS N19).
plugin "llm" "remote" {
  source = "builtin/llm-openai"
  config {
    base_url = "http://127.0.0.1:9/v1"
    api_key  = credential("E2E_PROVIDER_KEY")
  }
}

plugin "embeddings" "local" {
  source = "builtin/embeddings-hash"
}

plugin "memory" "default" {
  source = "builtin/memory-sqlite"
  config {
    embeddings = plugin.embeddings.local
  }
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
  model "remote" {
    provider = plugin.llm.remote
    model    = "never-called"
  }
}

policy "e2e" {
  presets = ["pypi"]
  filesystem {
    read_only  = ["/usr", "/lib", "/lib64", "/bin", "/etc"]
    read_write = ["/workspace", "/tmp"]
  }
  unknown_hosts = "deny"
}

sandbox "e2e" {
  driver    = "local"
  policy    = policy.e2e
  workspace = "./workspace"
  environment = {
    PROMPT = var.prompt
  }
  resources {
    memory = "1GiB"
    pids   = 256
  }
}

agent "assistant" {
  sandbox = sandbox.e2e
  command = ["/bin/sh", "-c", "\"$NEMOCLAVE_BIN\" agent -p \"$PROMPT\" && exec sleep 600"]
  memory  = plugin.memory.default
  tools   = [plugin.tools.files]
}
