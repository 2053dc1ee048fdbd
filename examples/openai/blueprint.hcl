# An assistant on the OpenAI API, with a cheaper model as fallback. Store
# the key with the host as OPENAI_API_KEY; the sandbox never sees it.
nemoclave {
  required_version = ">= 0.1"
}

plugin "llm" "openai" {
  source = "builtin/llm-openai"
  config {
    api_key = credential("OPENAI_API_KEY")
  }
}

plugin "tools" "files" {
  source = "builtin/tools-files"
}

plugin "tools" "http" {
  source = "builtin/tools-http"
  config {
    max_bytes = 524288
  }
}

inference {
  default = "smart"
  model "smart" {
    provider = plugin.llm.openai
    model    = "gpt-4.1"
    fallback = ["fast"]
    price {
      input_per_million  = 2
      output_per_million = 8
    }
  }
  model "fast" {
    provider = plugin.llm.openai
    model    = "gpt-4.1-mini"
    price {
      input_per_million  = 0.4
      output_per_million = 1.6
    }
  }
  budget {
    cost_per_day_usd = 20
  }
}

policy "assistant" {
  presets = ["pypi", "npm", "github"]
  filesystem {
    read_only  = ["/usr", "/lib", "/lib64", "/bin", "/etc"]
    read_write = ["/workspace", "/tmp"]
  }
  network "docs" {
    endpoint {
      host    = "docs.python.org"
      inspect = true
      allow {
        methods = ["GET", "HEAD"]
        paths   = ["/3/**"]
      }
    }
  }
  unknown_hosts = "deny"
}

sandbox "assistant" {
  policy    = policy.assistant
  workspace = "./workspace"
}

agent "assistant" {
  sandbox = sandbox.assistant
  command = ["nemoclave", "agent"]
  tools   = [plugin.tools.files, plugin.tools.http]
  subagent "reviewer" {
    description = "Reviews changes with the faster model."
    model       = "fast"
    tools       = [plugin.tools.files]
  }
}
