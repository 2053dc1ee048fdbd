# An assistant on NVIDIA hosted endpoints (build.nvidia.com). The API key
# never enters the sandbox: store it with the host (`nemoclave provider`)
# as NVIDIA_API_KEY and the gateway injects it into each model call.
nemoclave {
  required_version = ">= 0.1"
}

variable "model" {
  type        = string
  default     = "nvidia/nemotron-3-super-120b-a12b"
  description = "The NIM model id to route the default alias to."
}

plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    base_url = "https://integrate.api.nvidia.com/v1"
    api_key  = credential("NVIDIA_API_KEY")
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
}

inference {
  default = "smart"
  model "smart" {
    provider   = plugin.llm.nim
    model      = var.model
    parameters = { temperature = 0.6, max_tokens = 4096 }
    timeouts {
      first_byte = "60s"
      total      = "10m"
    }
  }
  budget {
    tokens_per_day = 2000000
  }
  rate_limit {
    requests_per_minute = 30
  }
}

policy "assistant" {
  presets = ["pypi", "github", "huggingface"]
  filesystem {
    read_only  = ["/usr", "/lib", "/lib64", "/bin", "/etc"]
    read_write = ["/workspace", "/tmp"]
    protected  = [".git/hooks"]
  }
  unknown_hosts = "ask"
}

sandbox "assistant" {
  driver    = "local"
  policy    = policy.assistant
  workspace = "./workspace"
  resources {
    cpus   = 2
    memory = "4GiB"
    pids   = 1024
  }
}

agent "assistant" {
  sandbox = sandbox.assistant
  command = ["nemoclave", "agent"]
  memory  = plugin.memory.default
  tools   = [plugin.tools.files]
}
