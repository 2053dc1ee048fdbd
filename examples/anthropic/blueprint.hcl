# An assistant on the Anthropic API. Store the key with the host as
# ANTHROPIC_API_KEY; the gateway injects it, the sandbox never sees it.
nemoclave {
  required_version = ">= 0.1"
}

plugin "llm" "anthropic" {
  source = "builtin/llm-anthropic"
  config {
    api_key = credential("ANTHROPIC_API_KEY")
  }
}

plugin "embeddings" "local" {
  source = "builtin/embeddings-hash"
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
}

inference {
  default = "claude"
  model "claude" {
    provider   = plugin.llm.anthropic
    model      = "claude-sonnet-4-5"
    parameters = { max_tokens = 8192 }
  }
  rate_limit {
    requests_per_minute = 50
    concurrent          = 4
  }
}

policy "assistant" {
  presets = ["pypi", "github"]
  filesystem {
    read_only  = ["/usr", "/lib", "/lib64", "/bin", "/etc"]
    read_write = ["/workspace", "/tmp"]
    protected  = [".git/hooks", ".bashrc"]
  }
  landlock {
    min_abi = 3
  }
  unknown_hosts = "ask"
}

sandbox "assistant" {
  policy    = policy.assistant
  workspace = "./workspace"
}

agent "assistant" {
  sandbox   = sandbox.assistant
  command   = ["nemoclave", "agent"]
  retrieval = plugin.retrieval.docs
  tools     = [plugin.tools.files]
}
