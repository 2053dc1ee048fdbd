nemoclave {
  required_version = ">= 0.1, < 1.0"
  required_plugins = {
    wordcount = { source = "example.com/acme/tools-wordcount", version = ">= 1.0" }
  }
}

variable "model" {
  type        = string
  default     = "nvidia/nemotron-3-super-120b-a12b"
  description = "Provider model id."
  validation {
    condition     = length(var.model) > 3
    error_message = "model must be a real model id."
  }
}

variable "region" {
  type    = string
  default = env("TEST_REGION", "us")
}

variable "from_env" {
  type    = string
  default = "unset"
}

variable "limits" {
  type = object({
    cpus   = number
    memory = optional(string, "1GiB")
  })
  default = { cpus = 2 }
}

variable "token_hint" {
  type      = string
  default   = "not-a-secret-but-marked"
  sensitive = true
}

locals {
  base_url = "https://integrate.api.nvidia.com/v1"
  hosts    = [for h in ["a", "b"] : "${h}.example.com"]
  greeting = upper(format("hi %s", var.region))
}

plugin "llm" "nim" {
  source = "builtin/llm-openai"
  config {
    base_url = local.base_url
    api_key  = credential("NVIDIA_API_KEY")
    headers  = { "X-Region" = var.region }
    timeout  = "90s"
  }
}

plugin "llm" "claude" {
  source = "builtin/llm-anthropic"
  config {
    api_key = credential("ANTHROPIC_API_KEY")
  }
}

plugin "llm" "nested" {
  source = "./plugins/nested"
  config {
    name   = "ok"
    secret = var.token_hint
    token  = credential("NESTED_TOKEN")
    retry {
      max = 3
    }
    route {
      path = "/a"
    }
    route {
      path = "/b"
    }
    index "docs" {
      dims = 4
    }
  }
}

plugin "embeddings" "local" {
  source = "builtin/embeddings-hash"
  config {
    dimensions = 128
  }
}

plugin "memory" "default" {
  source = "builtin/memory-sqlite"
  config {
    embeddings = plugin.embeddings.local
  }
}

plugin "retrieval" "docs" {
  source  = "builtin/retrieval-sqlite"
  version = ">= 0.1"
  config {
    path       = "${path.blueprint}/docs.db"
    embeddings = plugin.embeddings.local
  }
}

plugin "tools" "files" {
  source = "builtin/tools-files"
}

plugin "tools" "fs" {
  source  = "mcp"
  command = ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/workspace"]
  config {
    env = { LOG_LEVEL = "info" }
  }
}

plugin "tools" "remote" {
  source = "mcp"
  url    = "https://mcp.example.com/mcp"
  config {
    bearer_token = credential("REMOTE_MCP_TOKEN")
  }
}

plugin "tools" "wordcount" {
  source = "example.com/acme/tools-wordcount"
}

plugin "dataproc" "docs" {
  source = "builtin/dataproc-docs"
}

inference {
  default = "smart"
  model "smart" {
    provider   = plugin.llm.nim
    model      = var.model
    parameters = { temperature = 0.2, max_tokens = 4096 }
    fallback   = ["claude", "local"]
    timeouts {
      connect    = "5s"
      first_byte = "30s"
      total      = "5m"
    }
    price {
      input_per_million  = 0.5
      output_per_million = 1.5
    }
  }
  model "claude" {
    provider = plugin.llm.claude
    model    = "claude-sonnet-4-5"
    price {
      input_per_million  = 3
      output_per_million = 15
    }
  }
  model "local" {
    provider = plugin.llm.nested
    model    = "tiny"
    fallback = ["claude"]
    price {
      input_per_million  = 0
      output_per_million = 0
    }
  }
  budget {
    tokens_per_day   = 2000000
    tokens_per_month = 40000000
    cost_per_day_usd = 25.5
  }
  rate_limit {
    requests_per_minute = 60
    tokens_per_minute   = 200000
    concurrent          = 4
  }
}

policy "assistant" {
  presets = ["pypi", "npm", "github"]
  filesystem {
    read_only  = ["/usr", "/etc"]
    read_write = ["/workspace", "/tmp"]
    protected  = [".git/hooks", ".bashrc"]
  }
  network "api" {
    endpoint {
      host    = "api.example.com"
      ports   = [443, 8443]
      inspect = true
      allow {
        methods = ["get", "HEAD"]
        paths   = ["/v1/**", "/status"]
        query   = { format = ["json"], page = ["*"] }
      }
      deny {
        paths = ["/v1/admin/**"]
      }
    }
    endpoint {
      host          = "10.0.0.5"
      port          = 8080
      allow_private = true
      allow_opaque  = true
    }
    endpoint {
      host = "*.cdn.example.com"
    }
  }
  unknown_hosts = "ask"
  landlock {
    min_abi     = 3
    best_effort = false
  }
  process {
    max_open_files   = 1024
    max_processes    = 256
    max_file_size_mb = 512
    cpu_seconds      = 3600
  }
}

policy "defaults" {
}

sandbox "assistant" {
  driver    = "local"
  policy    = policy.assistant
  workspace = "./workspace"
  resources {
    cpus   = var.limits.cpus
    memory = var.limits.memory
    pids   = 512
  }
  environment = {
    GREETING = local.greeting
    FROM_ENV = var.from_env
  }
}

sandbox "cluster" {
  driver = "kubernetes"
  policy = policy.defaults
  kubernetes {
    namespace     = "agents"
    runtime_class = "gvisor"
    storage_class = "fast"
    storage       = "10Gi"
    image         = "ghcr.io/nemoclave/agent:0.1"
    node_selector = { pool = "agents" }
  }
}

agent "assistant" {
  sandbox   = sandbox.assistant
  command   = ["nemoclave", "agent"]
  model     = "smart"
  memory    = plugin.memory.default
  retrieval = plugin.retrieval.docs
  tools     = [plugin.tools.files, plugin.tools.fs, plugin.tools.remote]
  subagent "researcher" {
    description = "Reads the docs."
    model       = "claude"
    tools       = [plugin.tools.files]
    retrieval   = plugin.retrieval.docs
  }
  subagent "helper" {
  }
}

agent "batch" {
  sandbox = sandbox.cluster
  command = ["python", "-m", "batch"]
}
