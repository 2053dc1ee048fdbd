# An assistant on Amazon Bedrock with no key anywhere: the daemon's
# workload identity (EKS Pod Identity, IRSA or an instance role) signs every
# call, and reaches only the llm-bedrock plugin. The role needs
# bedrock:InvokeModel and bedrock:InvokeModelWithResponseStream on these
# models (docs/inference.md, "Amazon Bedrock").
nemoclave {
  required_version = ">= 0.1"
}

plugin "llm" "bedrock" {
  source = "builtin/llm-bedrock"
  config {
    region = "us-east-1"
    # A cross-region inference profile and an on-demand model id.
    models = ["us.anthropic.claude-sonnet-4-20250514-v1:0", "amazon.nova-lite-v1:0"]
  }
}

plugin "tools" "files" {
  source = "builtin/tools-files"
}

inference {
  default = "claude"
  model "claude" {
    provider   = plugin.llm.bedrock
    model      = "us.anthropic.claude-sonnet-4-20250514-v1:0"
    parameters = { max_tokens = 8192 }
    fallback   = ["nova"]
  }
  model "nova" {
    provider = plugin.llm.bedrock
    model    = "amazon.nova-lite-v1:0"
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
  sandbox = sandbox.assistant
  command = ["nemoclave", "agent"]
  tools   = [plugin.tools.files]
}
